import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { SCHEDULERS } from '../../src/lb/sched/index.js';
import { MaglevHashing } from '../../src/lb/sched/mh.js';
import type { SchedDest, SchedService } from '../../src/lb/sched/types.js';
import { client, destParams, tableWith, tcp } from './helpers.js';

const ALL = Object.keys(SCHEDULERS);

function counts(picks: (string | null)[]): Map<string | null, number> {
  const m = new Map<string | null, number>();
  for (const p of picks) m.set(p, (m.get(p) ?? 0) + 1);
  return m;
}

test('registry holds every IPVS scheduler', () => {
  assert.deepEqual(
    [...ALL].sort(),
    ['dh', 'fo', 'lblc', 'lblcr', 'lc', 'mh', 'nq', 'ovf', 'rr', 'sed', 'sh', 'twos', 'wlc', 'wrr'].sort(),
  );
});

test('rr walks the list (newest first), skipping weight 0 and OVERLOAD', () => {
  const { table, key } = tableWith('rr', [1, 0, 1, 1], { dest: { uThreshold: 0 } });
  const picks = Array.from({ length: 6 }, (_, i) => table.open(key, client(i))?.dest.address ?? null);
  // list order: .4 .3 .2(weight 0) .1
  assert.deepEqual(picks, ['198.18.1.4', '198.18.1.3', '198.18.1.1', '198.18.1.4', '198.18.1.3', '198.18.1.1']);
  table.dispose();
});

test('rr: deleting the last-picked dest continues from its predecessor', () => {
  const { table, key } = tableWith('rr', [1, 1, 1]);
  assert.equal(table.open(key, client(1))?.dest.address, '198.18.1.3');
  assert.equal(table.open(key, client(2))?.dest.address, '198.18.1.2');
  assert.ok(table.apply({ op: 'del-dest', key, dest: { address: '198.18.1.2', port: 80 } }).ok);
  assert.equal(table.open(key, client(3))?.dest.address, '198.18.1.1');
  table.dispose();
});

test('wrr: IPVS interleaved sequence for weights 4,3,2', () => {
  // added 2,3,4 so the list reads 4,3,2 (a, b, c). ip_vs_wrr_dest_changed keeps cw across
  // adds: after the first add (w 2, gcd 2) cw = mw = 1, so the first pass is cw = 1, then 4, 3, 2.
  const { table, key } = tableWith('wrr', [2, 3, 4]);
  const name: Record<string, string> = { '198.18.1.3': 'a', '198.18.1.2': 'b', '198.18.1.1': 'c' };
  const seq = Array.from({ length: 9 }, (_, i) => name[table.open(key, client(i))!.dest.address]).join('');
  assert.equal(seq, 'abcaababc');
  table.dispose();
  // a service built with all weights at once starts at cw = max weight
  const fresh = tableWith('wrr', [2, 3, 4]);
  fresh.table.apply({ op: 'edit-service', key: fresh.key, params: { scheduler: 'rr', schedFlags: [], ops: false } });
  fresh.table.apply({ op: 'edit-service', key: fresh.key, params: { scheduler: 'wrr', schedFlags: [], ops: false } });
  const seq2 = Array.from({ length: 9 }, (_, i) => name[fresh.table.open(fresh.key, client(i))!.dest.address]).join('');
  assert.equal(seq2, 'aababcabc');
  fresh.table.dispose();
});

test('wrr: over a full cycle each server is picked exactly weight/gcd times (property)', () => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: 12 }), { minLength: 1, maxLength: 6 }), (weights) => {
      const { table, key, addrs } = tableWith('wrr', weights);
      const live = weights.filter((w) => w > 0);
      if (live.length === 0) {
        assert.equal(table.open(key, client(0)), null);
        table.dispose();
        return;
      }
      const g = live.reduce((a, b) => {
        while (b) [a, b] = [b, a % b];
        return a;
      });
      const cycle = live.reduce((a, b) => a + b, 0) / g;
      for (let round = 0; round < 2; round++) {
        const c = counts(Array.from({ length: cycle }, (_, i) => table.open(key, client(i))!.dest.address));
        for (const [i, w] of weights.entries()) assert.equal(c.get(addrs[i]) ?? 0, w / g);
      }
      table.dispose();
    }),
    { numRuns: 200 },
  );
});

test('no scheduler ever picks a weight-0 or overloaded dest (property)', () => {
  fc.assert(
    fc.property(
      fc.constantFrom(...ALL),
      fc.array(fc.record({ w: fc.integer({ min: 0, max: 5 }), u: fc.integer({ min: 0, max: 3 }) }), {
        minLength: 1,
        maxLength: 6,
      }),
      fc.subarray(['sh-fallback', 'mh-fallback', 'sh-port', 'mh-port']),
      fc.array(fc.nat(5000), { minLength: 1, maxLength: 40 }),
      (name, dests, flags, clients) => {
        const { table, key, addrs } = tableWith(
          name,
          dests.map((d) => d.w),
          { params: { schedFlags: flags } },
        );
        addrs.forEach((address, i) => {
          const params = destParams({ weight: dests[i].w, uThreshold: dests[i].u });
          assert.ok(table.apply({ op: 'edit-dest', key, dest: { address, port: 80 }, params }).ok);
        });
        for (const c of clients) {
          const before = new Map(table.snapshot().services[0].dests.map((d) => [d.address, d]));
          const h = table.open(key, client(c, 1000 + (c % 50)));
          if (!h) continue;
          const d = before.get(h.dest.address)!;
          assert.ok(d.weight > 0, `${name} picked weight 0`);
          // IPVS quirk kept: lblc reuses its cached server without looking at the OVERLOAD flag
          if (name !== 'lblc') assert.ok(!d.overloaded, `${name} picked an overloaded dest`);
          if (c % 3 === 0) h.setState('ESTABLISHED');
        }
        table.dispose();
      },
    ),
    { numRuns: 200 },
  );
});

test('OVERLOAD set at the upper threshold, cleared below 3/4 of it (or below lower)', () => {
  const { table, key } = tableWith('wlc', [1, 1], { dest: { uThreshold: 4 } });
  const handles = Array.from({ length: 8 }, (_, i) => table.open(key, client(i))!);
  const dests = () => table.snapshot().services[0].dests;
  assert.ok(dests().every((d) => d.overloaded && d.inactConns === 4));
  assert.equal(table.open(key, client(99)), null, 'all overloaded: no destination');
  const first = handles.filter((h) => h.dest.address === '198.18.1.2');
  first[0].close();
  assert.equal(dests()[0].overloaded, true, '3 of 4: 3*4 < 12 is false');
  first[1].close();
  assert.equal(dests()[0].overloaded, false, '2 of 4: below 3/4');
  // with a lower threshold of 1: only cleared when the count drops below 1
  table.apply({
    op: 'edit-dest',
    key,
    dest: { address: '198.18.1.1', port: 80 },
    params: destParams({ uThreshold: 4, lThreshold: 1 }),
  });
  const second = handles.filter((h) => h.dest.address === '198.18.1.1');
  assert.equal(dests()[1].overloaded, true);
  for (const h of second.slice(0, 3)) h.close();
  assert.equal(dests()[1].overloaded, true);
  second[3].close();
  assert.equal(dests()[1].overloaded, false);
  table.dispose();
});

test('edit-dest raising the upper threshold clears OVERLOAD (__ip_vs_update_dest)', () => {
  const { table, key } = tableWith('rr', [1], { dest: { uThreshold: 1 } });
  assert.ok(table.open(key, client(1)));
  assert.equal(table.open(key, client(2)), null);
  table.apply({
    op: 'edit-dest',
    key,
    dest: { address: '198.18.1.1', port: 80 },
    params: destParams({ uThreshold: 5 }),
  });
  assert.ok(table.open(key, client(3)));
  table.dispose();
});

test('lc/wlc/sed distribute by weight for equal loads', () => {
  for (const name of ['wlc', 'sed']) {
    const { table, key, addrs } = tableWith(name, [1, 3]);
    for (let i = 0; i < 400; i++) table.open(key, client(i))!.setState('ESTABLISHED');
    const d = new Map(table.snapshot().services[0].dests.map((x) => [x.address, x.activeConns]));
    assert.equal(d.get(addrs[0]), 100, name);
    assert.equal(d.get(addrs[1]), 300, name);
    table.dispose();
  }
});

test('fo sends everything to the highest weight; ovf overflows past weight', () => {
  const fo = tableWith('fo', [5, 10, 1]);
  for (let i = 0; i < 20; i++) assert.equal(fo.table.open(fo.key, client(i))!.dest.address, '198.18.1.2');
  fo.table.dispose();
  const ovf = tableWith('ovf', [2, 3]);
  const picks = Array.from({ length: 6 }, (_, i) => {
    const h = ovf.table.open(ovf.key, client(i));
    h?.setState('ESTABLISHED');
    return h?.dest.address ?? null;
  });
  // weight 3 takes active 0..3 (4 conns), then weight 2 takes 0..2 (3 conns)
  assert.deepEqual(picks, ['198.18.1.2', '198.18.1.2', '198.18.1.2', '198.18.1.2', '198.18.1.1', '198.18.1.1']);
  ovf.table.dispose();
});

test('nq prefers an idle server in list order', () => {
  const { table, key } = tableWith('nq', [1, 5, 1]);
  const a = table.open(key, client(1))!;
  a.setState('ESTABLISHED');
  assert.equal(a.dest.address, '198.18.1.3');
  const b = table.open(key, client(2))!;
  b.setState('ESTABLISHED');
  assert.equal(b.dest.address, '198.18.1.2');
  assert.equal(table.open(key, client(3))!.dest.address, '198.18.1.1');
  table.dispose();
});

for (const [name, flag] of [
  ['sh', 'sh-fallback'],
  ['mh', 'mh-fallback'],
  ['dh', ''],
] as const) {
  test(`${name}: same key -> same server; unavailable -> null${flag ? `, or another with ${flag}` : ''}`, () => {
    const { table, key } = tableWith(name, [1, 1, 1]);
    const first = new Map<number, string>();
    for (let i = 0; i < 50; i++) first.set(i, table.open(key, client(i, 1000 + i))!.dest.address);
    for (let i = 0; i < 50; i++) assert.equal(table.open(key, client(i, 2000 + i))!.dest.address, first.get(i));
    const victim = first.get(0)!;
    table.apply({ op: 'edit-dest', key, dest: { address: victim, port: 80 }, params: destParams({ weight: 0 }) });
    assert.equal(table.open(key, client(0)), null);
    if (flag) {
      table.apply({ op: 'edit-service', key, params: { scheduler: name, schedFlags: [flag], ops: false } });
      const h = table.open(key, client(0));
      assert.ok(h && h.dest.address !== victim);
    }
    table.dispose();
  });
}

test('sh: buckets are weight-proportional; sh-port spreads one address over servers', () => {
  const { table, key } = tableWith('sh', [3, 1]);
  const picks = counts(Array.from({ length: 4000 }, (_, i) => table.open(key, client(i))!.dest.address));
  const share = (picks.get('198.18.1.1') ?? 0) / 4000;
  assert.ok(share > 0.65 && share < 0.85, `share ${share}`);
  table.apply({ op: 'edit-service', key, params: { scheduler: 'sh', schedFlags: ['sh-port'], ops: false } });
  const one = counts(Array.from({ length: 200 }, (_, i) => table.open(key, client(7, 1024 + i))!.dest.address));
  assert.equal(one.size, 2);
  table.dispose();
});

function fakeService(weights: number[]): { svc: SchedService & { dests: SchedDest[] }; dests: SchedDest[] } {
  const dests: SchedDest[] = weights.map((w, i) => ({
    id: `d${i}`,
    address: `198.18.${i >> 8}.${i & 255}`,
    port: 80,
    family: 4,
    addrFold: (0xc6120000 + i) >>> 0,
    seq: weights.length - i,
    weight: w,
    lastWeight: w,
    activeConns: 0,
    inactConns: 0,
    overloaded: false,
    heapPos: new Int32Array(2).fill(-1),
  }));
  return { svc: { dests, flags: new Set(), family: 4 }, dests };
}

test('mh: lookup slots are weight-proportional (4093 entries)', () => {
  const { svc, dests } = fakeService([1, 2, 3, 4]);
  const mh = new MaglevHashing();
  mh.destsChanged(svc, { kind: 'add', dest: dests[0] });
  const share = mh.slotShare();
  assert.equal(
    [...share.values()].reduce((a, b) => a + b, 0),
    4093,
  );
  dests.forEach((d, i) => {
    const expected = (4093 * (i + 1)) / 10;
    assert.ok(Math.abs(share.get(d)! - expected) <= 4, `${d.id}: ${share.get(d)} vs ${expected}`);
  });
});

test('mh: removing one of N servers remaps only about 1/N of keys', () => {
  const n = 10;
  const { svc, dests } = fakeService(Array(n).fill(1));
  const mh = new MaglevHashing();
  mh.destsChanged(svc, { kind: 'add', dest: dests[0] });
  const keys = Array.from({ length: 20000 }, (_, i) => ({
    addrFold: (0x0a000000 + i * 7919) >>> 0,
    port: 0,
    dstFold: 0,
  }));
  const before = keys.map((k) => mh.pick(svc, k));
  const removed = dests[3];
  const after = { ...svc, dests: dests.filter((d) => d !== removed) };
  mh.destsChanged(after, { kind: 'del', dest: removed, index: 3 });
  let moved = 0;
  let movedOthers = 0;
  keys.forEach((k, i) => {
    const now = mh.pick(after, k);
    if (now !== before[i]) {
      moved++;
      if (before[i] !== removed) movedOthers++;
    }
  });
  const frac = moved / keys.length;
  assert.ok(frac > 0.07 && frac < 0.16, `moved ${frac}`);
  assert.ok(movedOthers / keys.length < 0.05, `collateral ${movedOthers / keys.length}`);
});

test('mh: a quiesced server keeps its slots (last_weight) and comes back to the same keys', () => {
  const { table, key } = tableWith('mh', [1, 1, 1, 1]);
  const before = Array.from({ length: 300 }, (_, i) => table.open(key, client(i))!.dest.address);
  table.apply({ op: 'edit-dest', key, dest: { address: '198.18.1.2', port: 80 }, params: destParams({ weight: 0 }) });
  const during = Array.from({ length: 300 }, (_, i) => table.open(key, client(i))?.dest.address ?? null);
  for (const [i, b] of before.entries()) assert.equal(during[i], b === '198.18.1.2' ? null : b);
  table.apply({ op: 'edit-dest', key, dest: { address: '198.18.1.2', port: 80 }, params: destParams({ weight: 1 }) });
  const again = Array.from({ length: 300 }, (_, i) => table.open(key, client(i))!.dest.address);
  assert.deepEqual(again, before);
  table.dispose();
});

test('dh hashes the destination (virtual) address: one service -> one server', () => {
  const { table, key } = tableWith('dh', [1, 1, 1]);
  const picks = counts(Array.from({ length: 100 }, (_, i) => table.open(key, client(i))!.dest.address));
  assert.equal(picks.size, 1);
  table.dispose();
});

test('lblc sticks to the cached server until it is overloaded in the lblc sense', () => {
  const { table, key } = tableWith('lblc', [2, 2]);
  const first = table.open(key, client(1))!;
  first.setState('ESTABLISHED');
  const picks = Array.from({ length: 2 }, (_, i) => {
    const h = table.open(key, client(10 + i))!;
    h.setState('ESTABLISHED');
    return h.dest.address;
  });
  assert.deepEqual(picks, [first.dest.address, first.dest.address]);
  // now 3 active > weight 2 while the other has 0*2 < 2: move on and re-cache
  const moved = table.open(key, client(20))!;
  assert.notEqual(moved.dest.address, first.dest.address);
  assert.equal(table.open(key, client(21))!.dest.address, moved.dest.address);
  table.dispose();
});

test('lblcr grows the set when its members are overloaded', () => {
  const { table, key } = tableWith('lblcr', [1, 1, 1]);
  const seen = new Set<string>();
  for (let i = 0; i < 9; i++) {
    const h = table.open(key, client(i))!;
    h.setState('ESTABLISHED');
    seen.add(h.dest.address);
  }
  assert.equal(seen.size, 3);
  table.dispose();
});

test('twos: weight-proportional draws, never weight 0', () => {
  const { table, key } = tableWith('twos', [1, 0, 3]);
  const picks = counts(
    Array.from({ length: 4000 }, (_, i) => {
      const h = table.open(key, client(i))!;
      h.close(); // equal loads: the draw decides
      return h.dest.address;
    }),
  );
  assert.equal(picks.get('198.18.1.2'), undefined);
  const share3 = (picks.get('198.18.1.3') ?? 0) / 4000;
  assert.ok(share3 > 0.68 && share3 < 0.82, `share ${share3}`);
  table.dispose();
});

test('edit-service can switch scheduler; flags alias (flag-1 = sh-fallback)', () => {
  const { table, key } = tableWith('rr', [1, 1]);
  assert.ok(table.apply({ op: 'edit-service', key, params: { scheduler: 'wrr', schedFlags: [], ops: false } }).ok);
  assert.ok(table.open(key, client(1)));
  assert.ok(
    table.apply({ op: 'edit-service', key, params: { scheduler: 'sh', schedFlags: ['flag-1'], ops: false } }).ok,
  );
  const victim = table.open(key, client(5))!.dest.address;
  table.apply({ op: 'edit-dest', key, dest: { address: victim, port: 80 }, params: destParams({ weight: 0 }) });
  assert.notEqual(table.open(key, client(5))?.dest.address ?? null, null);
  assert.equal(table.open(tcp('198.18.0.1', 1), client(1)), null);
  table.dispose();
});

test('sh/dh bucket choice matches the kernel formulas (computed here with BigInt)', async () => {
  const { SourceHashing } = await import('../../src/lb/sched/sh.js');
  const { DestinationHashing } = await import('../../src/lb/sched/dh.js');
  const { svc, dests } = fakeService([2, 1]);
  const sh = new SourceHashing();
  sh.destsChanged(svc);
  const dh = new DestinationHashing();
  dh.destsChanged(svc);
  for (const fold of [0, 1, 0x0a000001, 0xc0a80101, 0xffffffff, 0x12345678]) {
    for (const port of [0, 80, 65535]) {
      // ip_vs_sh_hashkey: hash_32(port + addr, 8) = ((port + addr) * 0x61C88647 mod 2^32) >> 24
      const shBucket = Number(((BigInt((port + fold) >>> 0) * 0x61c88647n) & 0xffffffffn) >> 24n);
      const expected = shBucket % 3 === 2 ? dests[1] : dests[0]; // weights 2,1: d0 d0 d1 d0 d0 d1 ...
      const flagged = { ...svc, flags: new Set(['sh-port']) };
      assert.equal(sh.pick(flagged, { addrFold: fold, port, dstFold: 0 }), expected);
    }
    // ip_vs_dh_hashkey: (addr * 2654435761) & 255, buckets round-robin over the list
    const dhBucket = Number((BigInt(fold) * 2654435761n) & 255n);
    assert.equal(dh.pick(svc, { addrFold: 0, port: 0, dstFold: fold }), dests[dhBucket % 2]);
  }
});

test('mh: large weight ratios are shifted down as the kernel does (rshift)', () => {
  // weights 1 and 1000: max/gcd = 1000, fls(1000) = 10 > 6 bits -> rshift 4 -> turns 62 and 1
  const { svc, dests } = fakeService([1, 1000]);
  const mh = new MaglevHashing();
  mh.destsChanged(svc);
  const share = mh.slotShare();
  const expectedSmall = 4093 / 63;
  assert.ok(Math.abs(share.get(dests[0])! - expectedSmall) < 3, `small ${share.get(dests[0])}`);
  assert.equal(share.get(dests[0])! + share.get(dests[1])!, 4093);
});
