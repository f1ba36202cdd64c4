import assert from 'node:assert/strict';
import { test } from 'node:test';
import { withReplicaCounters } from '../../src/lb/merge.js';
import { LbTable } from '../../src/lb/table.js';
import type { TableOp } from '../../src/lb/types.js';
import { FakeClock } from '../../src/util/clock.js';
import { destParams, svcParams, tcp } from './helpers.js';

const key = tcp('198.18.0.100', 80);
const a = { address: '198.18.1.1', port: 80 };
const b = { address: '198.18.1.2', port: 80 };
const ops: TableOp[] = [
  { op: 'add-service', key, params: svcParams({ scheduler: 'rr' }) },
  { op: 'add-dest', key, dest: a, params: destParams({ weight: 3, uThreshold: 2 }) },
  { op: 'add-dest', key, dest: b, params: destParams({ weight: 1 }) },
];

function replica(opens: number): LbTable {
  const t = new LbTable({ clock: new FakeClock() });
  assert.deepEqual(t.applyAll(ops), []);
  for (let i = 0; i < opens; i++) {
    const h = t.open(key, { address: '203.0.113.7', port: 1000 + i });
    assert.ok(h);
    h.setState('ESTABLISHED');
    h.countIn(2, 100);
    h.countOut(3, 1000);
  }
  return t;
}

test('the primary table with the replicas’ counters summed: Active, stats, overload', () => {
  const primary = new LbTable({ clock: new FakeClock() });
  assert.deepEqual(
    primary.applyAll([...ops, { op: 'edit-dest', key, dest: b, params: destParams({ weight: 5 }) }]),
    [],
  );
  const r1 = replica(4);
  const r2 = replica(2);
  const merged = withReplicaCounters(primary.snapshot(), [r1.snapshot(), r2.snapshot()]);
  const svc = merged.services[0]!;
  const of = (t: LbTable, addr: string) => t.snapshot().services[0]!.dests.find((d) => d.address === addr)!;
  const byAddr = new Map(svc.dests.map((d) => [d.address, d]));
  for (const addr of [a.address, b.address]) {
    const m = byAddr.get(addr)!;
    assert.equal(m.activeConns, of(r1, addr).activeConns + of(r2, addr).activeConns);
    assert.equal(m.stats.outPkts, of(r1, addr).stats.outPkts + of(r2, addr).stats.outPkts);
    assert.equal(m.overloaded, of(r1, addr).overloaded || of(r2, addr).overloaded);
  }
  assert.equal(byAddr.get(a.address)!.activeConns + byAddr.get(b.address)!.activeConns, 6);
  assert.equal(byAddr.get(a.address)!.overloaded, true, 'a replica holds u_threshold (2) connections on a');
  assert.equal(byAddr.get(b.address)!.weight, 5, 'parameters come from the primary');
  assert.equal(svc.stats.conns, 6);
  assert.equal(svc.stats.inBytes, 600);
  assert.equal(primary.snapshot().services[0]!.dests[0]!.activeConns, 0, 'the primary itself is untouched');
  for (const t of [primary, r1, r2]) t.dispose();
});

test('no replicas yet: every counter is zero, the structure is the primary’s', () => {
  const primary = replica(2);
  const merged = withReplicaCounters(primary.snapshot(), []);
  assert.equal(merged.services.length, 1);
  assert.deepEqual(
    merged.services[0]!.dests.map((d) => d.activeConns + d.inactConns + d.stats.conns),
    [0, 0],
  );
  primary.dispose();
});
