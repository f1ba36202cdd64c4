import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { SCHEDULERS } from '../../src/lb/sched/index.js';
import type { SchedDest } from '../../src/lb/sched/scheduler.js';

function dest(i: number, weight: number, extra: Partial<SchedDest> = {}): SchedDest {
  return {
    id: `10.0.0.${i}:80`,
    address: `10.0.0.${i}`,
    port: 80,
    weight,
    lastWeight: weight,
    activeConns: 0,
    inactConns: 0,
    persistConns: 0,
    overloaded: false,
    available: true,
    ...extra,
  };
}

const input = (n: number, port = 1000) => ({
  client: { address: `192.0.2.${n % 250}`, port },
  vip: { address: '198.18.0.100', port: 80 },
});

function picks(name: string, dests: SchedDest[], count: number, flags: string[] = []): Map<string, number> {
  const s = SCHEDULERS[name]({ flags, random: mulberry(7) });
  s.update(dests);
  const out = new Map<string, number>();
  for (let i = 0; i < count; i++) {
    const d = s.pick(dests, input(i, 1000 + i));
    const k = d?.address ?? 'none';
    out.set(k, (out.get(k) ?? 0) + 1);
  }
  return out;
}

function mulberry(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('rr cycles through eligible servers in list order, skipping weight 0 and overloaded', () => {
  const ds = [dest(1, 1), dest(2, 0), dest(3, 5), dest(4, 1, { overloaded: true })];
  const s = SCHEDULERS.rr({ flags: [] });
  s.update(ds);
  assert.deepEqual(
    Array.from({ length: 4 }, () => s.pick(ds, input(1))?.address),
    ['10.0.0.1', '10.0.0.3', '10.0.0.1', '10.0.0.3'],
  );
});

test('wrr interleaves exactly as IPVS: weights 4,3,2 give the classic sequence', () => {
  const ds = [dest(1, 4), dest(2, 3), dest(3, 2)];
  const s = SCHEDULERS.wrr({ flags: [] });
  s.update(ds);
  const seq = Array.from({ length: 9 }, () => s.pick(ds, input(1))!.address.slice(-1)).join('');
  // cw=4: a; cw=3: a b; cw=2: a b c; cw=1: a b c
  assert.equal(seq, '112123123');
});

test('wrr proportions over full cycles equal the weights (property)', () => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: 20 }), { minLength: 1, maxLength: 8 }), (weights) => {
      const ds = weights.map((w, i) => dest(i + 1, w));
      const total = weights.reduce((a, b) => a + b, 0);
      const s = SCHEDULERS.wrr({ flags: [] });
      s.update(ds);
      const got = new Map<string, number>();
      const g = weights.reduce((a, b) => {
        let x = a;
        let y = b;
        while (y) [x, y] = [y, x % y];
        return x;
      }, 0);
      const cycle = g ? total / g : 0;
      for (let i = 0; i < cycle * 3; i++) {
        const d = s.pick(ds, input(i));
        assert.ok(d && d.weight > 0);
        got.set(d.address, (got.get(d.address) ?? 0) + 1);
      }
      if (total === 0) assert.equal(s.pick(ds, input(0)), null);
      for (const d of ds) assert.equal(got.get(d.address) ?? 0, (d.weight / g) * 3 || 0);
    }),
  );
});

test('lc and wlc pick by overhead (active x 256 + inactive), wlc relative to weight', () => {
  const ds = [
    dest(1, 1, { activeConns: 2 }),
    dest(2, 1, { activeConns: 1, inactConns: 300 }),
    dest(3, 4, { activeConns: 3 }),
  ];
  // overheads: 512, 556, 768
  assert.equal(SCHEDULERS.lc({ flags: [] }).pick(ds, input(1))?.address, '10.0.0.1');
  // per weight: 512, 556, 192
  assert.equal(SCHEDULERS.wlc({ flags: [] }).pick(ds, input(1))?.address, '10.0.0.3');
});

test('sed and nq: nq prefers an idle server, sed (active+1)/weight', () => {
  const ds = [dest(1, 5, { activeConns: 4 }), dest(2, 1, { activeConns: 0 }), dest(3, 10, { activeConns: 9 })];
  // sed: 5/5=1, 1/1=1, 10/10=1 -> first minimum
  assert.equal(SCHEDULERS.sed({ flags: [] }).pick(ds, input(1))?.address, '10.0.0.1');
  assert.equal(SCHEDULERS.nq({ flags: [] }).pick(ds, input(1))?.address, '10.0.0.2');
});

test('fo picks the highest weight; ovf overflows once active connections reach the weight', () => {
  const ds = [dest(1, 5), dest(2, 10), dest(3, 7)];
  assert.equal(SCHEDULERS.fo({ flags: [] }).pick(ds, input(1))?.address, '10.0.0.2');
  ds[1].activeConns = 10;
  assert.equal(SCHEDULERS.ovf({ flags: [] }).pick(ds, input(1))?.address, '10.0.0.3');
});

test('no scheduler ever picks a weight-0 or overloaded server (property)', () => {
  fc.assert(
    fc.property(
      fc.constantFrom(...Object.keys(SCHEDULERS)),
      fc.array(fc.record({ w: fc.integer({ min: 0, max: 5 }), over: fc.boolean(), act: fc.nat(50) }), {
        minLength: 1,
        maxLength: 6,
      }),
      (name, specs) => {
        const ds = specs.map((s, i) => dest(i + 1, s.w, { overloaded: s.over, activeConns: s.act }));
        const s = SCHEDULERS[name]({ flags: ['sh-fallback', 'mh-fallback'], random: mulberry(1) });
        s.update(ds);
        for (let i = 0; i < 50; i++) {
          const d = s.pick(ds, input(i, i));
          if (d) assert.ok(d.weight > 0 && !d.overloaded, `${name} picked ${d.address}`);
        }
      },
    ),
    { numRuns: 200 },
  );
});

test('sh: same client, same server; weight-proportional buckets; no fallback means no destination', () => {
  const ds = [dest(1, 1), dest(2, 3)];
  const m = picks('sh', ds, 4000);
  // 256 buckets split 1:3
  assert.ok(Math.abs((m.get('10.0.0.2') ?? 0) / 4000 - 0.75) < 0.08, JSON.stringify([...m]));
  const s = SCHEDULERS.sh({ flags: [] });
  s.update(ds);
  const first = s.pick(ds, input(42));
  assert.equal(s.pick(ds, input(42))?.id, first?.id);
  first!.overloaded = true;
  assert.equal(s.pick(ds, input(42)), null);
  const fb = SCHEDULERS.sh({ flags: ['sh-fallback'] });
  fb.update(ds);
  assert.ok(fb.pick(ds, input(42)) !== null);
});

test('dh hashes the destination address; an unavailable bucket owner gives no destination', () => {
  const ds = [dest(1, 1), dest(2, 1)];
  const s = SCHEDULERS.dh({ flags: [] });
  s.update(ds);
  const d = s.pick(ds, input(1))!;
  assert.equal(s.pick(ds, input(99))?.id, d.id);
  d.weight = 0;
  assert.equal(s.pick(ds, input(1)), null);
});

test('mh remaps only about 1/N of clients when one of N servers leaves', () => {
  const n = 10;
  const ds = Array.from({ length: n }, (_, i) => dest(i + 1, 1));
  const s = SCHEDULERS.mh({ flags: ['mh-port'] });
  s.update(ds);
  const before = Array.from({ length: 5000 }, (_, i) => s.pick(ds, input(i, i))!.address);
  const without = ds.filter((d) => d.address !== '10.0.0.4');
  s.update(without);
  let moved = 0;
  for (let i = 0; i < 5000; i++) {
    const after = s.pick(without, input(i, i))!.address;
    if (before[i] !== '10.0.0.4' && after !== before[i]) moved++;
  }
  // clients of the remaining servers should mostly stay put
  assert.ok(moved / 5000 < 0.05, `moved ${moved}`);
});

test('mh keeps the slots of a quiesced server: no destination without mh-fallback', () => {
  const ds = [dest(1, 1), dest(2, 1)];
  const s = SCHEDULERS.mh({ flags: [] });
  s.update(ds);
  const d = s.pick(ds, input(5))!;
  d.weight = 0;
  s.update(ds);
  assert.equal(s.pick(ds, input(5)), null);
  const fb = SCHEDULERS.mh({ flags: ['mh-fallback'] });
  fb.update(ds);
  assert.notEqual(fb.pick(ds, input(5)), null);
});

test('lblc sticks to a server per destination address until it is overloaded', () => {
  const ds = [dest(1, 2), dest(2, 2)];
  const s = SCHEDULERS.lblc({ flags: [] });
  s.update(ds);
  const first = s.pick(ds, input(1))!;
  first.activeConns = 1;
  assert.equal(s.pick(ds, input(2))?.id, first.id);
  first.activeConns = 5; // more than its weight while the other is idle
  assert.notEqual(s.pick(ds, input(3))?.id, first.id);
});

test('twos draws proportionally to weight and prefers the lighter of two', () => {
  const m = picks('twos', [dest(1, 1), dest(2, 9)], 2000);
  assert.ok((m.get('10.0.0.2') ?? 0) > 1500);
});
