/**
 * A TUN service's slot table, from its desired state (scheduler, flags, persistence, real servers and
 * weights). Pure. The tc program hashes each packet's flow fields into one of `size` slots; a slot
 * names the real server for packets of established flows and the one for new TCP connections (SYN).
 *
 * There are no connection counts at tc ingress, so every scheduler becomes a per-flow hash:
 * - mh: the Maglev table of src/lb/sched/mh.ts (4093 slots, built from last_weight as IPVS does, in
 *   identity order rather than list order so that every director builds the same one), on the
 *   source address (+ source port with mh-port). One of N servers leaving moves about 1/N flows.
 * - sh: IPVS's 256 source-hash buckets (src/lb/sched/sh.ts), source address (+ port with sh-port).
 * - dh: a Maglev table on the destination address (one server per VIP, as IPVS dh on a TUN VIP).
 * - rr, wrr and the connection-count schedulers ("rr-as-hash"): a weighted Maglev table on source
 *   address + port, so flows split in proportion to the weights; exact rr order and lc/wlc balance
 *   are not reproduced (a warning says so).
 * - persistence (persistence_timeout): the source address masked to the granularity only, so a
 *   client sticks to its server as long as the table does not change (no timeout is kept).
 * Quiescing (weight 0, IPVS last_weight): the server keeps its slots for established packets; new
 * TCP connections use a second table built without it, as the mh-fallback/sh-fallback walk would.
 */
import type { Family } from '../../config/model.js';
import { MaglevHashing } from '../../lb/sched/mh.js';
import { SourceHashing } from '../../lb/sched/sh.js';
import type { SchedDest, SchedService } from '../../lb/sched/types.js';
import { addressFold } from '../../util/address.js';
import { KV_HASH_DADDR, KV_HASH_SADDR, KV_HASH_SPORT } from './layout.js';

export interface TunDestInput {
  readonly id: string;
  readonly address: string;
  readonly port: number;
  readonly family: Family;
  readonly weight: number;
  /** latest non-zero weight (IPVS last_weight); defaults to weight */
  readonly lastWeight?: number;
}

export interface TunServiceInput {
  readonly family: Family;
  readonly scheduler: string;
  readonly schedFlags: readonly string[];
  readonly persistentTimeout?: number;
  readonly persistentPrefixLen?: number;
  /** in IPVS list order (head first) */
  readonly dests: readonly TunDestInput[];
}

export interface SlotPlan {
  readonly size: number;
  /** KV_HASH_* */
  readonly hashFlags: number;
  /** source prefix hashed */
  readonly prefix: number;
  /** per slot: index into the input dests, -1 = none (established packets) */
  readonly real: Int32Array;
  /** per slot: index into the input dests, -1 = none (new TCP connections) */
  readonly realSyn: Int32Array;
  /** what differs from IPVS for this service (shown as warnings) */
  readonly notes: readonly string[];
}

export const MH_SLOTS = 4093;
export const SH_SLOTS = 256;
const HASH_SCHEDULERS = new Set(['mh', 'sh', 'dh']);

function schedDest(d: TunDestInput, i: number, n: number, weight: number, lastWeight: number): SchedDest {
  return {
    id: d.id,
    address: d.address,
    port: d.port,
    family: d.family,
    addrFold: addressFold(d.address),
    seq: n - i,
    weight,
    lastWeight,
    activeConns: 0,
    inactConns: 0,
    overloaded: false,
    heapPos: new Int32Array(4).fill(-1),
  };
}

/** One table over `dests` (SchedDests whose id is the input index as text). */
function table(
  kind: 'mh' | 'sh',
  dests: SchedDest[],
  flags: ReadonlySet<string>,
  family: Family,
): (SchedDest | null)[] {
  const svc: SchedService = { dests, flags, family };
  if (kind === 'sh') {
    const s = new SourceHashing();
    s.destsChanged(svc);
    return [...s.bucketTable()];
  }
  const m = new MaglevHashing(MH_SLOTS);
  m.destsChanged(svc);
  return [...m.slotTable()];
}

export function planSlots(svc: TunServiceInput): SlotPlan {
  const notes: string[] = [];
  const flags = new Set(svc.schedFlags);
  const full = svc.family === 4 ? 32 : 128;
  let hashFlags: number;
  let kind: 'mh' | 'sh' = 'mh';
  let prefix = full;
  if (svc.persistentTimeout !== undefined) {
    hashFlags = KV_HASH_SADDR;
    prefix = Math.max(0, Math.min(full, svc.persistentPrefixLen ?? full));
    if (svc.scheduler === 'sh') kind = 'sh';
    notes.push(
      `persistence is kept by hashing the client address /${prefix} (no ${svc.persistentTimeout} s timeout: a client moves only when the table changes)`,
    );
  } else if (svc.scheduler === 'mh') {
    hashFlags = KV_HASH_SADDR | (flags.has('mh-port') ? KV_HASH_SPORT : 0);
  } else if (svc.scheduler === 'sh') {
    kind = 'sh';
    hashFlags = KV_HASH_SADDR | (flags.has('sh-port') ? KV_HASH_SPORT : 0);
  } else if (svc.scheduler === 'dh') {
    hashFlags = KV_HASH_DADDR;
  } else {
    hashFlags = KV_HASH_SADDR | KV_HASH_SPORT;
  }
  if (!HASH_SCHEDULERS.has(svc.scheduler)) {
    notes.push(
      `scheduler ${svc.scheduler} runs as a weighted per-flow hash (Maglev) in the kernel TUN plane: flows split by weight, not in ${svc.scheduler} order`,
    );
  }

  const n = svc.dests.length;
  const index = new Map<SchedDest, number>();
  const primary: SchedDest[] = [];
  const syn: SchedDest[] = [];
  svc.dests.forEach((d, i) => {
    const last = d.weight > 0 ? d.weight : (d.lastWeight ?? 0);
    const p = schedDest(d, i, n, kind === 'sh' ? Math.max(d.weight, last) : d.weight, last);
    index.set(p, i);
    if (last > 0) primary.push(p);
    if (d.weight > 0) {
      const s = schedDest(d, i, n, d.weight, d.weight);
      index.set(s, i);
      syn.push(s);
    }
  });
  const size = kind === 'sh' ? SH_SLOTS : MH_SLOTS;
  const toIndexes = (t: (SchedDest | null)[]): Int32Array => {
    const out = new Int32Array(size).fill(-1);
    if (t.length !== size) return out;
    for (let i = 0; i < size; i++) {
      const d = t[i];
      out[i] = d ? (index.get(d) ?? -1) : -1;
    }
    return out;
  };
  const real = primary.length ? toIndexes(table(kind, primary, flags, svc.family)) : new Int32Array(size).fill(-1);
  const quiesced = primary.length !== syn.length;
  const realSyn = !quiesced
    ? real
    : syn.length
      ? toIndexes(table(kind, syn, flags, svc.family))
      : new Int32Array(size).fill(-1);
  return { size, hashFlags, prefix, real, realSyn, notes };
}

/** Slots whose content differs between two plans of the same size (what a per-slot update rewrites). */
export function changedSlots(
  a: { real: ArrayLike<number>; realSyn: ArrayLike<number> },
  b: { real: ArrayLike<number>; realSyn: ArrayLike<number> },
): number[] {
  const out: number[] = [];
  const len = Math.max(a.real.length, b.real.length);
  for (let i = 0; i < len; i++) if (a.real[i] !== b.real[i] || a.realSyn[i] !== b.realSyn[i]) out.push(i);
  return out;
}
