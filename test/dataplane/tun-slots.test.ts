import assert from 'node:assert/strict';
import { test } from 'node:test';
import { flowHash } from '../../src/dataplane/tun/hash.js';
import { KV_HASH_DADDR, KV_HASH_SADDR, KV_HASH_SPORT, svcKey, svcVal } from '../../src/dataplane/tun/layout.js';
import { changedSlots, MH_SLOTS, planSlots, SH_SLOTS, type TunDestInput } from '../../src/dataplane/tun/slots.js';

const dest = (i: number, weight = 1, lastWeight?: number): TunDestInput => ({
  id: `198.18.1.${10 + i}:80`,
  address: `198.18.1.${10 + i}`,
  port: 80,
  family: 4,
  weight,
  ...(lastWeight !== undefined ? { lastWeight } : {}),
});
const ids = (dests: readonly TunDestInput[], slots: Int32Array) =>
  Array.from(slots, (i) => (i < 0 ? null : dests[i].id));

test('mh: one of ten real servers leaving moves its own slots and at most 1.3/N of the table', () => {
  const ten = Array.from({ length: 10 }, (_, i) => dest(i + 1));
  const before = ids(ten, planSlots({ family: 4, scheduler: 'mh', schedFlags: [], dests: ten }).real);
  const nine = ten.filter((_, i) => i !== 4);
  const after = ids(nine, planSlots({ family: 4, scheduler: 'mh', schedFlags: [], dests: nine }).real);
  assert.equal(before.length, MH_SLOTS);
  let moved = 0;
  for (let i = 0; i < MH_SLOTS; i++) {
    if (before[i] === ten[4].id) assert.notEqual(after[i], ten[4].id);
    if (before[i] !== after[i]) moved++;
  }
  const own = before.filter((d) => d === ten[4].id).length;
  assert.ok(moved >= own);
  assert.ok(moved <= (1.3 / 10) * MH_SLOTS, `moved ${moved} of ${MH_SLOTS}`);
  assert.ok(after.every((d) => d !== null));
});

test('mh: directors whose lists are in different orders (health history) build the same table', () => {
  const ds = [dest(1, 1), dest(2, 3), dest(3, 2), dest(4, 1, 2), dest(5, 1)];
  const reversed = [...ds].reverse();
  const a = planSlots({ family: 4, scheduler: 'mh', schedFlags: [], dests: ds });
  const b = planSlots({ family: 4, scheduler: 'mh', schedFlags: [], dests: reversed });
  assert.deepEqual(ids(reversed, b.real), ids(ds, a.real));
  assert.deepEqual(ids(reversed, b.realSyn), ids(ds, a.realSyn));
});

test('weights set the share of slots (wrr as a weighted hash) and rr is announced as a hash', () => {
  const ds = [dest(1, 1), dest(2, 3), dest(3, 2)];
  const p = planSlots({ family: 4, scheduler: 'wrr', schedFlags: [], dests: ds });
  const share = [0, 0, 0];
  for (const i of p.real) share[i]++;
  assert.ok(Math.abs(share[0] / MH_SLOTS - 1 / 6) < 0.02, String(share));
  assert.ok(Math.abs(share[1] / MH_SLOTS - 3 / 6) < 0.02, String(share));
  assert.equal(p.hashFlags, KV_HASH_SADDR | KV_HASH_SPORT);
  assert.match(p.notes.join(), /wrr runs as a weighted per-flow hash/);
  assert.equal(planSlots({ family: 4, scheduler: 'mh', schedFlags: [], dests: ds }).notes.length, 0);
});

test('scheduler flags and persistence choose the hashed fields', () => {
  const ds = [dest(1), dest(2)];
  assert.equal(planSlots({ family: 4, scheduler: 'mh', schedFlags: [], dests: ds }).hashFlags, KV_HASH_SADDR);
  assert.equal(
    planSlots({ family: 4, scheduler: 'mh', schedFlags: ['mh-port'], dests: ds }).hashFlags,
    KV_HASH_SADDR | KV_HASH_SPORT,
  );
  const sh = planSlots({ family: 4, scheduler: 'sh', schedFlags: ['sh-port'], dests: ds });
  assert.equal(sh.size, SH_SLOTS);
  assert.equal(sh.hashFlags, KV_HASH_SADDR | KV_HASH_SPORT);
  assert.equal(planSlots({ family: 4, scheduler: 'dh', schedFlags: [], dests: ds }).hashFlags, KV_HASH_DADDR);
  const pers = planSlots({
    family: 4,
    scheduler: 'rr',
    schedFlags: [],
    persistentTimeout: 300,
    persistentPrefixLen: 24,
    dests: ds,
  });
  assert.equal(pers.hashFlags, KV_HASH_SADDR);
  assert.equal(pers.prefix, 24);
});

test('a quiesced server (weight 0) keeps its slots for established flows, new connections avoid it', () => {
  const ds = [dest(1), dest(2), dest(3, 0, 1)];
  const p = planSlots({ family: 4, scheduler: 'mh', schedFlags: [], dests: ds });
  const live = planSlots({ family: 4, scheduler: 'mh', schedFlags: [], dests: [dest(1), dest(2), dest(3)] });
  assert.deepEqual(Array.from(p.real), Array.from(live.real));
  assert.ok(!p.realSyn.includes(2));
  assert.ok(p.realSyn.every((i) => i === 0 || i === 1));
  // no quiesced server: one table for both
  assert.equal(live.real, live.realSyn);
  // every server at weight 0 (and never weighted): nothing for new connections
  const none = planSlots({ family: 4, scheduler: 'mh', schedFlags: [], dests: [dest(1, 0)] });
  assert.ok(none.realSyn.every((i) => i === -1));
});

test('changedSlots lists exactly the differing slots', () => {
  const a = { real: [1, 2, 3, 4], realSyn: [1, 2, 3, 4] };
  const b = { real: [1, 9, 3, 4], realSyn: [1, 2, 3, 7] };
  assert.deepEqual(changedSlots(a, b), [1, 3]);
});

test('map keys and values have the C layout (tun_common.h)', () => {
  const k = svcKey(4, 6, 80, '198.18.0.100');
  assert.equal(k.length, 20);
  assert.deepEqual(Array.from(k.subarray(0, 8)), [4, 6, 0, 80, 198, 18, 0, 100]);
  const k6 = svcKey(6, 17, 53, '2001:2::100');
  assert.deepEqual(Array.from(k6.subarray(4, 6)), [0x20, 0x01]);
  assert.deepEqual(Array.from(k6.subarray(18, 20)), [0x01, 0x00]);
  const v = svcVal({ base: 4096, nslots: 4093, flags: 3, prefix: 32 });
  assert.deepEqual(Array.from(v), [0, 16, 0, 0, 0xfd, 0x0f, 0, 0, 3, 0, 0, 0, 32, 0, 0, 0]);
});

test('flow hash: deterministic, depends only on the fields the flags name, masks the prefix', () => {
  const f = { family: 4 as const, saddr: '198.18.0.10', sport: 40000, daddr: '198.18.0.100' };
  assert.equal(flowHash(f, KV_HASH_SADDR, 32), flowHash({ ...f, sport: 1 }, KV_HASH_SADDR, 32));
  assert.notEqual(
    flowHash(f, KV_HASH_SADDR | KV_HASH_SPORT, 32),
    flowHash({ ...f, sport: 1 }, KV_HASH_SADDR | KV_HASH_SPORT, 32),
  );
  assert.equal(flowHash(f, KV_HASH_SADDR, 24), flowHash({ ...f, saddr: '198.18.0.99' }, KV_HASH_SADDR, 24));
  assert.notEqual(flowHash(f, KV_HASH_SADDR, 32), flowHash({ ...f, saddr: '198.18.0.99' }, KV_HASH_SADDR, 32));
  const g = { family: 6 as const, saddr: '2001:2::10', sport: 1, daddr: '2001:2::100' };
  assert.equal(flowHash(g, KV_HASH_SADDR, 64), flowHash({ ...g, saddr: '2001:2::ffff' }, KV_HASH_SADDR, 64));
});
