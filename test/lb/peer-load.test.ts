import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LbTable } from '../../src/lb/table.js';
import { FakeClock } from '../../src/util/clock.js';
import { destParams, svcParams, tcp } from './helpers.js';

const key = tcp('198.18.0.100', 80);
const a = { address: '198.18.1.1', port: 80 };
const b = { address: '198.18.1.2', port: 80 };

function table(scheduler: string, uThreshold = 0): LbTable {
  const t = new LbTable({ clock: new FakeClock() });
  assert.deepEqual(
    t.applyAll([
      { op: 'add-service', key, params: svcParams({ scheduler }) },
      { op: 'add-dest', key, dest: a, params: destParams({ weight: 1, uThreshold }) },
      { op: 'add-dest', key, dest: b, params: destParams({ weight: 1, uThreshold }) },
    ]),
    [],
  );
  return t;
}

function openEstablished(t: LbTable, n: number): string[] {
  const picked: string[] = [];
  for (let i = 0; i < n; i++) {
    const h = t.open(key, { address: '203.0.113.9', port: 40000 + i });
    assert.ok(h);
    h.setState('ESTABLISHED');
    picked.push(h.dest.address);
  }
  return picked;
}

for (const scheduler of ['lc', 'wlc', 'sed', 'nq']) {
  test(`${scheduler}: connections held by other workers steer new ones away, and the snapshot keeps its own counts`, () => {
    const t = table(scheduler);
    t.setPeerLoad(key, a, 4, 0);
    assert.deepEqual(openEstablished(t, 4), Array(4).fill(b.address));
    const dests = t.snapshot().services[0]!.dests;
    assert.deepEqual(
      dests.map((d) => [d.address, d.activeConns]),
      [
        [b.address, 4],
        [a.address, 0],
      ],
    );
    // the other workers' connections ended: a is the least loaded again
    t.setPeerLoad(key, a, 0, 0);
    assert.deepEqual(openEstablished(t, 2), [a.address, a.address]);
    t.dispose();
  });
}

test('peer load counts towards the upper threshold (OVERLOAD), and its end clears it', () => {
  const t = table('wlc', 3);
  t.setPeerLoad(key, a, 3, 0);
  assert.equal(t.snapshot().services[0]!.dests.find((d) => d.address === a.address)?.overloaded, true);
  assert.deepEqual(openEstablished(t, 3), Array(3).fill(b.address));
  t.setPeerLoad(key, a, 0, 0);
  assert.equal(t.snapshot().services[0]!.dests.find((d) => d.address === a.address)?.overloaded, false);
  t.dispose();
});

test('peer load for an unknown service or real server is ignored', () => {
  const t = table('wlc');
  t.setPeerLoad(tcp('198.18.0.200', 80), a, 9, 9);
  t.setPeerLoad(key, { address: '198.18.9.9', port: 80 }, 9, 9);
  assert.deepEqual(openEstablished(t, 2).sort(), [a.address, b.address]);
  t.dispose();
});

test('a real server removed while only other workers hold connections to it comes back with no load', () => {
  const t = table('lc');
  t.setPeerLoad(key, a, 4, 0);
  assert.deepEqual(openEstablished(t, 1), [b.address]);
  // without local connections a is freed at once, not trashed with the peers' 4 (and revived with them)
  assert.equal(t.apply({ op: 'del-dest', key, dest: a }).ok, true);
  assert.equal(t.apply({ op: 'add-dest', key, dest: a, params: destParams({ weight: 1 }) }).ok, true);
  assert.deepEqual(openEstablished(t, 1), [a.address]);
  t.dispose();
});
