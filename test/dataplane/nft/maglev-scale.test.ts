/**
 * Active-active directors behind ECMP, simulated without a network (docs/scale-out.md): 100
 * directors and 10,000 real servers. Directors build their Maglev slot maps on their own, from the
 * destinations in the order their own health history left them, exactly as the kernel plane does
 * (slots.ts); the router spreads flows over the 100 directors by ECMP. A 1M-slot build costs about
 * 0.1 s (more on a loaded machine), so BUILT directors build here and all 100 in
 * bench/maglev-scale.ts (same helpers, with timings). Counted: which flows change
 * director (ECMP rehash: modulo N, hash-threshold, resilient) and which change real server (what
 * breaks a TCP flow through stateless DR or TUN directors).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mhTableSize } from '../../../src/dataplane/nft/slots.js';
import { addressMap, mix, moved, pool, rng, SERVERS, server, serverNo, shuffled } from './maglev-sim.js';

const DIRECTORS = 100;
/** directors that build their own table in this test (bench/maglev-scale.ts builds all of them) */
const BUILT = 8;
const FLOWS = 200_000;

/** Flows as (source address, source port) hashed twice: by the router (ECMP) and by the director (jhash). */
const flows = (() => {
  const r = rng(7);
  const ecmp = new Uint32Array(FLOWS);
  const slot = new Uint32Array(FLOWS);
  for (let i = 0; i < FLOWS; i++) {
    const saddr = Math.floor(r() * 2 ** 32);
    const sport = 1024 + Math.floor(r() * 64512);
    ecmp[i] = mix(saddr ^ Math.imul(sport, 0x9e3779b1), 0x1b873593);
    slot[i] = mix(saddr + sport, 0x2545f491);
  }
  return { ecmp, slot };
})();

/** ECMP models: which director of `n` a flow hash goes to. */
const modulo = (h: number, n: number) => h % n;
// Linux IPv4 multipath (fib_select_multipath): each next hop owns an equal range of the 31-bit hash
const hashThreshold = (h: number, n: number) => Math.floor(((h >>> 1) * n) / 2 ** 31);

/** Resilient hashing (Linux nexthop groups `type resilient`): buckets keep their director unless it leaves. */
class Resilient {
  readonly buckets: Int32Array;
  constructor(n: number, perDirector = 128) {
    this.buckets = Int32Array.from({ length: n * perDirector }, (_, i) => i % n);
  }
  pick(h: number): number {
    return this.buckets[h % this.buckets.length];
  }
  remove(d: number, live: number[]): void {
    let k = 0;
    for (let i = 0; i < this.buckets.length; i++) if (this.buckets[i] === d) this.buckets[i] = live[k++ % live.length];
  }
  add(d: number, n: number): void {
    // the newcomer takes an even share, a bucket from each director in turn
    const want = Math.floor(this.buckets.length / (n + 1));
    for (let i = 0, taken = 0; i < this.buckets.length && taken < want; i += n + 1, taken++) this.buckets[i] = d;
  }
}

function directorMoves(before: (i: number) => number, after: (i: number) => number): number {
  let n = 0;
  for (let i = 0; i < FLOWS; i++) if (before(flows.ecmp[i]) !== after(flows.ecmp[i])) n++;
  return n / FLOWS;
}

test(`Maglev table size for ${SERVERS} real servers: ${mhTableSize(SERVERS)} slots (IPVS default 4093 up to 40)`, () => {
  assert.equal(mhTableSize(3), 4093);
  assert.equal(mhTableSize(40), 4093);
  assert.equal(mhTableSize(41), 8191);
  assert.equal(mhTableSize(1310), 131071);
  assert.equal(mhTableSize(SERVERS), 1048573);
  const isPrime = (p: number) => {
    for (let k = 2; k * k <= p; k++) if (p % k === 0) return false;
    return true;
  };
  for (const p of [4093, 8191, 16381, 32749, 65521, 131071, 262139, 524287, 1048573]) assert.ok(isPrime(p), `${p}`);
  // equal weights: every round gives each server one slot, so shares differ by one slot at most
  const shares = new Map<number, number>();
  for (const a of addressMap(pool())) shares.set(a, (shares.get(a) ?? 0) + 1);
  const counts = [...shares.values()];
  assert.equal(shares.size, SERVERS);
  assert.ok(Math.max(...counts) - Math.min(...counts) <= 1, `${Math.min(...counts)}..${Math.max(...counts)}`);
});

test(`${BUILT} directors with their own list order (health history) build the same map`, () => {
  const servers = pool((i) => 1 + (i % 3));
  const reference = addressMap(servers);
  for (let d = 1; d < BUILT; d++) {
    const own = addressMap(shuffled(servers, d));
    assert.equal(moved(reference, own), 0, `director ${d}`);
  }
});

test('a director that has not resolved one MAC yet differs only on that server`s slots', () => {
  const servers = pool();
  const reference = addressMap(servers);
  // the plane quiesces an unresolved DR destination keeping its last weight (render.ts usableDests)
  const unresolved = servers.map((s, i) => (i === 42 ? { ...s, weight: 0 } : s));
  const own = addressMap(shuffled(unresolved, 3));
  const share = reference.filter((a) => a === serverNo(servers[42].address)).length / reference.length;
  assert.ok(Math.abs(moved(reference, own) - share) < 1e-12, `${moved(reference, own)} vs ${share}`);
});

test('a director lost or added: flows change director by the ECMP rehash, none changes real server', () => {
  const n = DIRECTORS;
  const live = Array.from({ length: n - 1 }, (_, i) => i);
  const resilient = new Resilient(n);
  const before = [...resilient.buckets];
  resilient.remove(n - 1, live);
  const afterRemove = [...resilient.buckets];
  const lost = {
    modulo: directorMoves(
      (h) => modulo(h, n),
      (h) => modulo(h, n - 1),
    ),
    hashThreshold: directorMoves(
      (h) => hashThreshold(h, n),
      (h) => hashThreshold(h, n - 1),
    ),
    resilient: directorMoves(
      (h) => before[h % before.length],
      (h) => afterRemove[h % afterRemove.length],
    ),
  };
  const grown = new Resilient(n);
  const beforeAdd = [...grown.buckets];
  grown.add(n, n);
  const added = {
    modulo: directorMoves(
      (h) => modulo(h, n),
      (h) => modulo(h, n + 1),
    ),
    hashThreshold: directorMoves(
      (h) => hashThreshold(h, n),
      (h) => hashThreshold(h, n + 1),
    ),
    resilient: directorMoves(
      (h) => beforeAdd[h % beforeAdd.length],
      (h) => grown.pick(h),
    ),
  };
  console.log(`# director lost of ${n}: flows changing director ${JSON.stringify(lost)}`);
  console.log(`# director added to ${n}: flows changing director ${JSON.stringify(added)}`);
  assert.ok(lost.modulo > 0.9 && added.modulo > 0.9);
  assert.ok(lost.hashThreshold > 0.2 && lost.hashThreshold < 0.55);
  assert.ok(Math.abs(lost.resilient - 1 / n) < 0.003, `${lost.resilient}`);
  assert.ok(Math.abs(added.resilient - 1 / (n + 1)) < 0.003, `${added.resilient}`);
  // Whichever director a flow reaches, it picks from the same map: the real server never changes.
  const maps = [addressMap(pool()), addressMap(shuffled(pool(), 99))];
  let changed = 0;
  for (let i = 0; i < FLOWS; i++) {
    const s = flows.slot[i] % maps[0].length;
    if (maps[hashThreshold(flows.ecmp[i], n) % 2][s] !== maps[hashThreshold(flows.ecmp[i], n - 1) % 2][s]) changed++;
  }
  assert.equal(changed, 0);
});

test('a real server removed, quiesced or re-weighted on every director: about 1/M of flows move', () => {
  const servers = pool();
  const reference = addressMap(servers);
  const share = 1 / SERVERS;
  // removed (keepalived without inhibit_on_failure takes it out of the table): Maglev rebuilds
  const removed = moved(reference, addressMap(servers.filter((_, i) => i !== 500)));
  // quiesced (inhibit_on_failure or weight 0): its slots go to the next available slot's server
  const quiesced = moved(reference, addressMap(servers.map((s, i) => (i === 500 ? { ...s, weight: 0 } : s))));
  // ten removed at once
  const tenRemoved = moved(reference, addressMap(servers.filter((_, i) => i % 1000 !== 7)));
  // one weight 1 -> 2: it takes about one more share from the others
  const doubled = moved(reference, addressMap(servers.map((s, i) => (i === 500 ? server(501, 2) : s))));
  console.log(
    `# M = ${reference.length} slots, ${SERVERS} servers (1/M = ${share}): removed ${removed}, quiesced ${quiesced}, ten removed ${tenRemoved}, one weight 1->2 ${doubled}`,
  );
  assert.ok(Math.abs(quiesced - share) < share * 0.1, `quiesced ${quiesced}`);
  assert.ok(removed >= share * 0.9 && removed < share * 30, `removed ${removed}`);
  assert.ok(tenRemoved >= 10 * share * 0.9 && tenRemoved < 10 * share * 30, `ten removed ${tenRemoved}`);
  assert.ok(doubled >= share * 0.9 && doubled < share * 30, `doubled ${doubled}`);
});
