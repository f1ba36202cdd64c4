/**
 * Schedulers as slot maps (kernel-plane-facts §3): a fixed number of slots, each naming a
 * destination, and a key that picks a slot per new connection (or per packet in DR):
 * - rr, wrr: `numgen inc` over one period of IPVS's own pick sequence (the table's scheduler
 *   objects produce it), so 6,000 connections at 1:3:2 split 1000/3000/2000 in IPVS order;
 * - sh, dh: `jhash` of the source (+port) / destination into IPVS's 256 buckets;
 * - mh: `jhash` into the Maglev lookup table of lb/sched/mh.ts (mhTableSize: 4093 slots up to 40
 *   destinations, more for larger pools; docs/scale-out.md);
 * - fo: every slot the highest-weight available destination (ip_vs_fo.c);
 * - lc, wlc, sed, nq, ovf, lblc, lblcr, twos: a period of slots proportional to the shares a
 *   control loop computes from connection counts (plane.ts rebuilds them each second).
 * Stateless DR has no conntrack: there the counting schedulers become a weighted Maglev table on a
 * hash of the flow (flowHashSlots).
 * Pure: no nft text here (render.ts), no I/O.
 */

import { SCHEDULERS } from '../../lb/sched/index.js';
import { MaglevHashing } from '../../lb/sched/mh.js';
import { SourceHashing } from '../../lb/sched/sh.js';
import { gcd, identityOrder, type SchedDest, type SchedService } from '../../lb/sched/types.js';
import { addressFold } from '../../util/address.js';

/** Largest period of a counter slot map; larger weight sums are scaled down (facts §3). */
export const MAX_COUNTER_SLOTS = 4096;
export const HASH_BUCKETS = 256;

/**
 * Maglev table sizes: IPVS's primes from its default (ip_vs_mh.c `primes[]`, CONFIG_IP_VS_MH_TAB_INDEX
 * 12 = 4093) to its largest (131071), then three more primes for pools past 1,310 servers.
 */
export const MH_TABLE_PRIMES: readonly number[] = [4093, 8191, 16381, 32749, 65521, 131071, 262139, 524287, 1048573];
/** The Maglev paper (NSDI '16, §3.4) keeps M >= 100 N so that shares stay within about 1%. */
export const MH_SLOTS_PER_DEST = 100;

/**
 * The Maglev table size for `dests` destinations (those in the service, up or quiesced): the smallest
 * listed prime with 100 slots per destination, at most 1048573. A function of the destination count
 * only, so directors with the same table agree; crossing a step rebuilds the whole table.
 */
export function mhTableSize(dests: number): number {
  for (const p of MH_TABLE_PRIMES) if (p >= dests * MH_SLOTS_PER_DEST) return p;
  return MH_TABLE_PRIMES[MH_TABLE_PRIMES.length - 1];
}

export type SlotKey =
  /** numgen inc: exact sequence per new connection */
  | 'counter'
  /** jhash of the source address (sh, mh) */
  | 'saddr'
  /** jhash of source address and port (sh-port, mh-port, and every counter scheduler in DR) */
  | 'saddr-sport'
  /** jhash of the destination (virtual) address (dh) */
  | 'daddr';

export interface SlotDest {
  /** identity: Maglev permutations hash it */
  readonly address: string;
  readonly port: number;
  readonly weight: number;
  /** latest non-zero weight (mh keeps a quiesced server's slots) */
  readonly lastWeight: number;
  readonly overloaded: boolean;
  /** ActiveConn / InActConn as last counted (the lc family's control loop) */
  readonly activeConns: number;
  readonly inactConns: number;
  /** estimated seconds a connection to it lasts (active / new connections per second), when known */
  readonly holdS?: number;
}

export interface SlotTable {
  readonly key: SlotKey;
  /** index into the dests given, or -1: no destination (the packet is dropped, as IPVS's ip_vs_leave) */
  readonly slots: readonly number[];
}

const available = (d: SlotDest): boolean => d.weight > 0 && !d.overloaded;

function schedService(dests: readonly SlotDest[], flags: ReadonlySet<string>): SchedService {
  const ds: SchedDest[] = dests.map((d, i) => ({
    id: String(i),
    address: d.address,
    port: d.port,
    family: d.address.includes(':') ? 6 : 4,
    addrFold: addressFold(d.address),
    seq: dests.length - i,
    weight: d.weight,
    lastWeight: d.lastWeight,
    activeConns: d.activeConns,
    inactConns: d.inactConns,
    overloaded: d.overloaded,
    heapPos: new Int32Array(4).fill(-1),
  }));
  return { dests: ds, flags, family: 4 };
}

/** One period of a round-robin scheduler's picks, driven through its own object (exact IPVS order). */
function pickSequence(name: 'rr' | 'wrr', dests: readonly SlotDest[], flags: ReadonlySet<string>): number[] {
  const live = dests.filter(available);
  if (live.length === 0) return [-1];
  let period = live.length;
  if (name === 'wrr') {
    const g = live.reduce((a, d) => gcd(a, d.weight), 0);
    period = live.reduce((a, d) => a + d.weight / g, 0);
  }
  if (period > MAX_COUNTER_SLOTS)
    return proportional(
      dests,
      dests.map((d) => (available(d) ? d.weight : 0)),
    );
  const svc = schedService(dests, flags);
  const sched = SCHEDULERS[name]({ random: () => 0, now: () => 0 });
  for (const d of svc.dests) sched.destsChanged(svc, { kind: 'add', dest: d });
  const out: number[] = [];
  for (let i = 0; i < period; i++) {
    const d = sched.pick(svc, { addrFold: 0, port: 0, dstFold: 0 });
    out.push(d ? Number(d.id) : -1);
  }
  return out;
}

/**
 * Slots in proportion to `shares` (>= 0), interleaved like wrr (largest remainder first), at most
 * MAX_COUNTER_SLOTS: the lc family's table and the scaled-down table of a huge wrr period.
 */
export function proportional(dests: readonly SlotDest[], shares: readonly number[]): number[] {
  const total = shares.reduce((a, b) => a + b, 0);
  if (total <= 0) return [-1];
  const n = Math.min(
    MAX_COUNTER_SLOTS,
    Math.max(1, Math.round(total <= MAX_COUNTER_SLOTS && Number.isInteger(total) ? total : MAX_COUNTER_SLOTS)),
  );
  const counts = shares.map((s) => Math.floor((s / total) * n));
  let left = n - counts.reduce((a, b) => a + b, 0);
  const byRemainder = shares
    .map((s, i) => ({ i, r: (s / total) * n - counts[i] }))
    .filter((x) => shares[x.i] > 0)
    .sort((a, b) => b.r - a.r || a.i - b.i);
  for (let k = 0; left > 0 && byRemainder.length > 0; k = (k + 1) % byRemainder.length, left--)
    counts[byRemainder[k].i]++;
  // interleave: slot j goes to the dest whose "next due" position is earliest (smooth weighted order)
  const out: number[] = [];
  const due = counts.map((c) => (c > 0 ? n / c / 2 : Number.POSITIVE_INFINITY));
  const step = counts.map((c) => (c > 0 ? n / c : Number.POSITIVE_INFINITY));
  for (let j = 0; j < n; j++) {
    let best = -1;
    for (let i = 0; i < dests.length; i++) if (counts[i] > 0 && (best < 0 || due[i] < due[best])) best = i;
    out.push(best);
    counts[best]--;
    due[best] = counts[best] > 0 ? due[best] + step[best] : Number.POSITIVE_INFINITY;
  }
  return out;
}

/** The lc family's shares: each available destination in proportion to w / (overhead + 1). */
export function loadShares(scheduler: string, dests: readonly SlotDest[]): number[] {
  const overhead = (d: SlotDest) => d.activeConns * 256 + d.inactConns;
  const live = dests.map(available);
  if (scheduler === 'ovf') {
    // ip_vs_ovf.c: the highest-weight server whose active connections stay below its weight
    let best = -1;
    dests.forEach((d, i) => {
      if (live[i] && d.activeConns < d.weight && (best < 0 || d.weight > dests[best].weight)) best = i;
    });
    return dests.map((_, i) => (i === best ? 1 : 0));
  }
  // lc, wlc with every available server's holding time known (Little's law: active = rate x hold):
  // new connections in proportion to w / hold, the split at which active counts settle in
  // proportion to weight, as the per-connection schedulers keep them. w / (active + 1) below
  // settles at active ~ sqrt(w) (bench/lc-balance.ts, docs/kernel-plane.md)
  if ((scheduler === 'lc' || scheduler === 'wlc') && dests.every((d, i) => !live[i] || (d.holdS ?? 0) > 0)) {
    const byHold = dests.map((d, i) =>
      live[i] ? (scheduler === 'lc' ? 1 : d.weight) / Math.max(1e-3, d.holdS ?? 1) : 0,
    );
    const total = byHold.reduce((a, b) => a + b, 0);
    if (total > 0) return byHold.map((r) => (r > 0 ? Math.max(1, Math.round((r / total) * 256)) : 0));
  }
  const raw = dests.map((d, i) => {
    if (!live[i]) return 0;
    const w = scheduler === 'lc' || (scheduler === 'nq' && d.activeConns === 0) ? 1 : d.weight;
    return w / (overhead(d) / 256 + 1);
  });
  const sum = raw.reduce((a, b) => a + b, 0);
  // scale to integers over about 256 slots (enough resolution, cheap to rewrite each second)
  return sum > 0 ? raw.map((r) => Math.round((r / sum) * 256)) : raw;
}

/** Schedulers that are a hash of the packet already (the rest count connections or take turns). */
const HASHED = new Set(['sh', 'dh', 'mh']);

/**
 * DR (no conntrack, every packet looked up): a counting scheduler becomes a weighted Maglev table
 * over the available servers, as the TUN plane does (tun/slots.ts). A modulus that followed the
 * weight sum would move nearly every flow when one server leaves; Maglev moves that server's flows
 * and about 0.1/N others, and it is built in identity order, so both directors of a pair agree
 * (stateless failover, docs/director-pair.md). fo keeps its one server (ties by identity order).
 */
function flowHashSlots(scheduler: string, dests: readonly SlotDest[]): number[] {
  if (scheduler === 'fo') {
    let best = -1;
    for (const d of identityOrder(schedService(dests, new Set()).dests)) {
      const i = Number(d.id);
      if (available(dests[i]) && (best < 0 || dests[i].weight > dests[best].weight)) best = i;
    }
    return [best];
  }
  const live = dests.map((d) => (available(d) ? d : { ...d, weight: 0, lastWeight: 0 }));
  if (!live.some((d) => d.weight > 0)) return [-1];
  // the size stays fixed (4093, as mh): a modulus that changed with the server count would move every flow
  const mh = new MaglevHashing();
  mh.destsChanged(schedService(live, new Set()));
  return mh.slotTable().map((d) => (d ? Number(d.id) : -1));
}

/** The slot table for `scheduler`; `stateless` = DR (no conntrack: counters become flow hashes). */
export function slotTable(
  scheduler: string,
  flags: ReadonlySet<string>,
  dests: readonly SlotDest[],
  stateless: boolean,
): SlotTable {
  const flowKey: SlotKey = stateless ? 'saddr-sport' : 'counter';
  if (stateless && !HASHED.has(scheduler)) return { key: flowKey, slots: flowHashSlots(scheduler, dests) };
  switch (scheduler) {
    case 'rr':
    case 'wrr':
      return { key: flowKey, slots: pickSequence(scheduler, dests, flags) };
    case 'sh': {
      const svc = schedService(dests, flags);
      const sh = new SourceHashing();
      sh.destsChanged(svc);
      return {
        key: flags.has('sh-port') ? 'saddr-sport' : 'saddr',
        slots: fallbackFill(
          sh.bucketTable().map((d) => (d ? Number(d.id) : -1)),
          dests,
          flags.has('sh-fallback'),
        ),
      };
    }
    case 'dh': {
      // buckets round-robin over the servers in identity order (lb/sched/dh.ts), so peers agree
      const order = identityOrder(schedService(dests, flags).dests).map((d) => Number(d.id));
      return {
        key: 'daddr',
        slots: Array.from({ length: HASH_BUCKETS }, (_, i) => {
          const di = order.length === 0 ? -1 : order[i % order.length];
          return di < 0 || !available(dests[di]) ? -1 : di;
        }),
      };
    }
    case 'mh': {
      // filled in identity order (lb/sched/mh.ts): every director with the same servers builds the same table
      const mh = new MaglevHashing(mhTableSize(dests.length));
      mh.destsChanged(schedService(dests, flags));
      return {
        key: flags.has('mh-port') ? 'saddr-sport' : 'saddr',
        slots: fallbackFill(mh.slotIndexes(), dests, flags.has('mh-fallback')),
      };
    }
    case 'fo': {
      let best = -1;
      dests.forEach((d, i) => {
        if (available(d) && (best < 0 || d.weight > dests[best].weight)) best = i;
      });
      return { key: flowKey, slots: [best] };
    }
    default:
      return { key: flowKey, slots: proportional(dests, loadShares(scheduler, dests)) };
  }
}

/**
 * Unavailable (weight 0 / OVERLOAD) servers keep their hash slots but get no new flows: the slot
 * is empty, or with the *-fallback flag it takes the next available slot's server (IPVS walks the
 * table from the hashed bucket; the next bucket is the same walk without a second hash).
 */
function fallbackFill(slots: ArrayLike<number>, dests: readonly SlotDest[], fallback: boolean): number[] {
  // availability per destination once, not per slot (a table may have a million slots)
  const ok = new Uint8Array(dests.length);
  dests.forEach((d, i) => {
    ok[i] = available(d) ? 1 : 0;
  });
  const n = slots.length;
  const out = new Array<number>(n);
  if (!fallback) {
    for (let j = 0; j < n; j++) out[j] = slots[j] >= 0 && ok[slots[j]] ? slots[j] : -1;
    return out;
  }
  // one backward pass: `next` is the nearest available slot after j, wrapping round to the first one
  let next = -1;
  for (let j = 0; j < n && next < 0; j++) if (slots[j] >= 0 && ok[slots[j]]) next = slots[j];
  for (let j = n - 1; j >= 0; j--) {
    const i = slots[j];
    if (i >= 0 && ok[i]) next = i;
    out[j] = next;
  }
  return out;
}
