/** rr/wrr with a position shared by several replicas of the table (the proxy workers' case). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { SharedPosition } from '../../src/lb/sched/types.js';
import { client, tableWith } from './helpers.js';

/** one cell per service, as the workers' shared file gives them */
function sharedCells(): (id: string) => SharedPosition {
  const cells = new Map<string, { v: number }>();
  return (id) => {
    let c = cells.get(id);
    if (!c) cells.set(id, (c = { v: 0 }));
    const cell = c;
    return {
      load: () => cell.v,
      compareExchange: (expected, next) => {
        const old = cell.v;
        if (old === expected) cell.v = next;
        return old;
      },
    };
  };
}

/** `n` picks, each by the replica `order(i)` names, as the kernel's hash spreads connections */
function picks(scheduler: string, weights: number[], replicas: number, n: number, order: (i: number) => number) {
  const positions = sharedCells();
  const tables = Array.from({ length: replicas }, () => tableWith(scheduler, weights, { positions }));
  const out = Array.from(
    { length: n },
    (_, i) => tables[order(i) % replicas]!.table.open(tables[0]!.key, client(i))?.dest.address ?? null,
  );
  for (const t of tables) t.table.dispose();
  return out;
}

test('rr and wrr: three replicas sharing the position make the one sequence of a single table, however picks are spread', () => {
  fc.assert(
    fc.property(
      fc.constantFrom('rr', 'wrr'),
      fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 1, maxLength: 5 }),
      fc.array(fc.nat(2), { minLength: 24, maxLength: 24 }),
      (scheduler, weights, spread) => {
        const one = picks(scheduler, weights, 1, 24, () => 0);
        const three = picks(scheduler, weights, 3, 24, (i) => spread[i]!);
        assert.deepEqual(three, one);
      },
    ),
  );
});

test('without a shared position the replicas each keep their own (the sequence breaks when spread)', () => {
  const key = tableWith('rr', [1]).key;
  const tables = [tableWith('rr', [1, 1, 1]).table, tableWith('rr', [1, 1, 1]).table];
  const seq = Array.from({ length: 2 }, (_, i) => tables[i % 2]!.open(key, client(i))?.dest.address);
  // each replica starts at the head: the first two picks are the same server
  assert.equal(seq[0], seq[1]);
  assert.deepEqual(
    picks('rr', [1, 1, 1], 2, 4, (i) => i % 2),
    ['198.18.1.3', '198.18.1.2', '198.18.1.1', '198.18.1.3'],
  );
  for (const t of tables) t.dispose();
});

test('rr shared: a removed last pick restarts the sequence at the head', () => {
  const positions = sharedCells();
  const a = tableWith('rr', [1, 1, 1], { positions });
  const b = tableWith('rr', [1, 1, 1], { positions });
  assert.equal(a.table.open(a.key, client(1))?.dest.address, '198.18.1.3');
  assert.equal(b.table.open(b.key, client(2))?.dest.address, '198.18.1.2');
  for (const t of [a, b]) t.table.apply({ op: 'del-dest', key: t.key, dest: { address: '198.18.1.2', port: 80 } });
  assert.equal(a.table.open(a.key, client(3))?.dest.address, '198.18.1.3');
  assert.equal(b.table.open(b.key, client(4))?.dest.address, '198.18.1.1');
  for (const t of [a, b]) t.table.dispose();
});
