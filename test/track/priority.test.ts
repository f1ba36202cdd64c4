import assert from 'node:assert/strict';
import { test } from 'node:test';
import { binaryContribution, fileContribution, parseTrackFileValue } from '../../src/track/contribution.js';
import { computePriority, type TrackedItem } from '../../src/track/priority.js';
import { initialScriptState, scriptUp, stepScript } from '../../src/track/script-state.js';

test('weight/reverse table for up/down trackers (keepalived.conf(5) BFD table)', () => {
  const rows: [number, boolean, boolean, number, boolean][] = [
    // weight, reverse, up, delta, fault
    [10, false, true, 10, false],
    [10, false, false, 0, false],
    [10, true, true, -10, false],
    [10, true, false, 0, false],
    [-10, false, true, 0, false],
    [-10, false, false, -10, false],
    [-10, true, true, 0, false],
    [-10, true, false, 10, false],
    [0, false, true, 0, false],
    [0, false, false, 0, true],
    [0, true, true, 0, true],
    [0, true, false, 0, false],
  ];
  for (const [w, r, up, delta, fault] of rows) {
    assert.deepEqual(binaryContribution(up, w, r), { delta, fault }, `weight ${w} reverse ${r} up ${up}`);
  }
});

test('track_file: weight 0 non-zero is failure, product added, below -253 is FAULT', () => {
  assert.deepEqual(fileContribution(0, 0, false), { delta: 0, fault: false });
  assert.deepEqual(fileContribution(3, 0, false), { delta: 0, fault: true });
  assert.deepEqual(fileContribution(0, 0, true), { delta: 0, fault: true });
  assert.deepEqual(fileContribution(5, 0, true), { delta: 0, fault: false });
  assert.deepEqual(fileContribution(5, 2, false), { delta: 10, fault: false });
  assert.deepEqual(fileContribution(5, 2, true), { delta: -10, fault: false });
  assert.deepEqual(fileContribution(-253, 1, false), { delta: -253, fault: false });
  assert.deepEqual(fileContribution(-254, 1, false), { delta: 0, fault: true });
  assert.deepEqual(fileContribution(300, 1, false), { delta: 253, fault: false });
  assert.equal(parseTrackFileValue(' 42\n'), 42);
  assert.equal(parseTrackFileValue('-7 junk'), -7);
  assert.equal(parseTrackFileValue('0x10'), 16);
  assert.equal(parseTrackFileValue('010'), 8);
  assert.equal(parseTrackFileValue('abc'), 0);
  assert.equal(parseTrackFileValue(''), 0);
  assert.equal(parseTrackFileValue('99999999999'), undefined);
});

const item = (delta: number, fault = false, name = 'x'): TrackedItem => ({
  kind: 'script',
  name,
  contribution: { delta, fault },
  blocksUntilKnown: false,
});

test('effective priority: clamped 1..254, owner 255 unchanged, faults win', () => {
  const cases: [number, TrackedItem[], number, boolean][] = [
    [100, [], 100, false],
    [100, [item(20), item(-5, false, 'y')], 115, false],
    [100, [item(200)], 254, false],
    [250, [item(10)], 254, false],
    [100, [item(-150)], 1, false],
    [255, [item(-100)], 255, false],
    [255, [item(10)], 255, false],
    [100, [item(0, true)], 100, true],
    [255, [item(0, true)], 255, true],
  ];
  for (const [base, items, effective, fault] of cases) {
    const r = computePriority(base, items);
    assert.equal(r.effective, effective, `base ${base}`);
    assert.equal(r.fault, fault);
  }
  const blocked = computePriority(100, [
    { kind: 'script', name: 's', contribution: undefined, blocksUntilKnown: true },
  ]);
  assert.equal(blocked.fault, true);
  assert.equal(blocked.initializing, true);
  assert.equal(computePriority(100, [item(0, true)]).initializing, undefined);
  assert.match(blocked.reason, /script s has no result yet/);
  assert.match(computePriority(100, [item(0, true, 'chk')]).reason, /script chk failed/);
});

test('script rise/fall counter follows vrrp_scheduler.c', () => {
  const rise = 2;
  const fall = 3;
  let s = initialScriptState(rise, false);
  assert.equal(scriptUp(s, rise), undefined);
  s = stepScript(s, true, rise, fall); // first success is enough
  assert.equal(scriptUp(s, rise), true);
  s = stepScript(s, false, rise, fall);
  s = stepScript(s, false, rise, fall);
  assert.equal(scriptUp(s, rise), true, 'two failures < fall');
  s = stepScript(s, false, rise, fall);
  assert.equal(scriptUp(s, rise), false, 'third failure = fall');
  s = stepScript(s, true, rise, fall);
  assert.equal(scriptUp(s, rise), false, 'one success < rise');
  s = stepScript(s, true, rise, fall);
  assert.equal(scriptUp(s, rise), true);
  // a fresh script's first failure fails it at once
  assert.equal(scriptUp(stepScript(initialScriptState(rise, false), false, rise, fall), rise), false);
  // init_fail: failed from the start, needs rise successes
  let f = initialScriptState(rise, true);
  assert.equal(scriptUp(f, rise), false);
  f = stepScript(f, true, rise, fall);
  assert.equal(scriptUp(f, rise), false);
  f = stepScript(f, true, rise, fall);
  assert.equal(scriptUp(f, rise), true);
});
