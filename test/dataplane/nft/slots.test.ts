import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_COUNTER_SLOTS, type SlotDest, slotTable } from '../../../src/dataplane/nft/slots.js';

let n = 0;
const d = (weight: number, extra: Partial<SlotDest> = {}): SlotDest => ({
  address: `198.18.1.${++n}`,
  port: 80,
  weight,
  lastWeight: weight,
  overloaded: false,
  activeConns: 0,
  inactConns: 0,
  ...extra,
});
const none = new Set<string>();
const count = (slots: readonly number[]) =>
  slots.reduce((m, i) => m.set(i, (m.get(i) ?? 0) + 1), new Map<number, number>());

test('wrr 1:3:2: one period of IPVS picks, in IPVS order (heaviest first, interleaved)', () => {
  // list order head first: the dest added last is index 0
  const t = slotTable('wrr', none, [d(1), d(3), d(2)], false);
  assert.equal(t.key, 'counter');
  assert.deepEqual(t.slots, [1, 1, 2, 0, 1, 2]);
  // 6,000 connections over `numgen inc mod 6` = 1000 periods: exactly 1000/3000/2000
  const per = count(t.slots);
  assert.deepEqual([per.get(0)! * 1000, per.get(1)! * 1000, per.get(2)! * 1000], [1000, 3000, 2000]);
});

test('rr: list order; weight 0 and OVERLOAD leave the slots, nothing left is -1', () => {
  assert.deepEqual(slotTable('rr', none, [d(1), d(5), d(1)], false).slots, [0, 1, 2]);
  assert.deepEqual(slotTable('rr', none, [d(1), d(0), d(1, { overloaded: true })], false).slots, [0]);
  assert.deepEqual(slotTable('rr', none, [d(0)], false).slots, [-1]);
});

test('DR has no conntrack: counter schedulers become a flow hash', () => {
  assert.equal(slotTable('rr', none, [d(1)], true).key, 'saddr-sport');
  assert.equal(slotTable('sh', new Set(['sh-port']), [d(1)], true).key, 'saddr-sport');
  assert.equal(slotTable('dh', none, [d(1)], false).key, 'daddr');
});

test('huge wrr periods are scaled to at most 4096 slots, still proportional', () => {
  const t = slotTable('wrr', none, [d(65535), d(1), d(30000)], false);
  assert.ok(t.slots.length <= MAX_COUNTER_SLOTS);
  const per = count(t.slots);
  assert.ok(Math.abs(per.get(0)! / per.get(2)! - 65535 / 30000) < 0.01);
});

test('mh: Maglev table of 4093 slots; one of N=10 leaving moves at most 1.3/N of the flows', () => {
  const ten = Array.from({ length: 10 }, () => d(1));
  const before = slotTable('mh', none, ten, false);
  assert.equal(before.slots.length, 4093);
  // remove the dest at list index 4: indexes above shift down by one
  const after = slotTable('mh', none, [...ten.slice(0, 4), ...ten.slice(5)], false);
  let moved = 0;
  for (let i = 0; i < before.slots.length; i++) {
    const was = before.slots[i];
    const now = after.slots[i];
    const same = was === 4 ? false : now === (was > 4 ? was - 1 : was);
    if (!same) moved++;
  }
  const share = moved / before.slots.length;
  assert.ok(share >= 0.1 && share <= 1.3 / 10, `moved ${share}`);
});

test('sh: 256 buckets by weight; quiesced servers keep no bucket unless sh-fallback gives them away', () => {
  const t = slotTable('sh', none, [d(1), d(0), d(2)], false);
  assert.equal(t.slots.length, 256);
  assert.ok(t.slots.includes(-1));
  const f = slotTable('sh', new Set(['sh-fallback']), [d(1), d(0), d(2)], false);
  assert.ok(!f.slots.includes(-1) && !f.slots.includes(1));
});

test('fo: every slot on the highest-weight available server; lc family: shares fall with connections', () => {
  assert.deepEqual(slotTable('fo', none, [d(1), d(5), d(3)], false).slots, [1]);
  const idle = count(slotTable('wlc', none, [d(1), d(1)], false).slots);
  assert.equal(idle.get(0), idle.get(1));
  const busy = count(slotTable('wlc', none, [d(1, { activeConns: 10 }), d(1)], false).slots);
  assert.ok((busy.get(1) ?? 0) > 5 * (busy.get(0) ?? 0), JSON.stringify([...busy]));
  // ovf: the heaviest server until its active connections reach its weight
  assert.deepEqual(slotTable('ovf', none, [d(2, { activeConns: 2 }), d(1)], false).slots, [1]);
});

test("lc, wlc with holding times: new connections by w / hold (Little's law); without all of them, by counts", () => {
  // lc: a server holding connections 5x as long gets a fifth of the new ones
  const lc = count(
    slotTable('lc', none, [d(1, { holdS: 0.2 }), d(1, { holdS: 0.2 }), d(1, { holdS: 1 })], false).slots,
  );
  assert.ok(Math.abs((lc.get(0) ?? 0) / (lc.get(2) ?? 1) - 5) < 0.2, JSON.stringify([...lc]));
  // wlc 1:2:3, equal holding: 1:2:3 of the new connections, whatever the counts (the counts follow)
  const wlc = count(
    slotTable(
      'wlc',
      none,
      [
        d(1, { holdS: 0.5, activeConns: 90 }),
        d(2, { holdS: 0.5, activeConns: 170 }),
        d(3, { holdS: 0.5, activeConns: 200 }),
      ],
      false,
    ).slots,
  );
  assert.ok(Math.abs((wlc.get(2) ?? 0) / (wlc.get(0) ?? 1) - 3) < 0.1, JSON.stringify([...wlc]));
  // one available server without an estimate: the count law (the busy server gets fewer)
  const mixed = count(
    slotTable('wlc', none, [d(1, { holdS: 0.5, activeConns: 0 }), d(1, { activeConns: 100 })], false).slots,
  );
  assert.ok((mixed.get(0) ?? 0) > 10 * (mixed.get(1) ?? 0), JSON.stringify([...mixed]));
  // a quiesced server needs no estimate and gets nothing
  const q = count(slotTable('lc', none, [d(1, { holdS: 1 }), d(0)], false).slots);
  assert.deepEqual([...q.keys()], [0]);
});
