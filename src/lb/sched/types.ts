/**
 * The scheduler contract. A scheduler sees a service's destinations in IPVS list order
 * (new destinations are inserted at the head, as `__ip_vs_update_dest` does) and the
 * live load of each one; it returns a destination or null ("no destination available").
 */
import type { Family } from '../../config/model.js';
import { addressBytes } from '../../util/address.js';

/** A destination as schedulers see it. Owned and mutated by the table only. */
export interface SchedDest {
  readonly id: string;
  readonly address: string;
  readonly port: number;
  readonly family: Family;
  /** 32-bit fold of the address (IPv6: XOR of the four words) */
  readonly addrFold: number;
  /** insertion sequence: a larger value is nearer the list head */
  readonly seq: number;
  readonly weight: number;
  /** latest non-zero weight (IPVS last_weight; mh builds its table from it) */
  readonly lastWeight: number;
  readonly activeConns: number;
  readonly inactConns: number;
  readonly overloaded: boolean;
  /** positions in scheduler heaps (HEAP_SLOTS entries, -1 = absent); scratch owned by the scheduler */
  readonly heapPos: Int32Array;
}

export interface SchedService {
  /** in IPVS list order (head first) */
  readonly dests: readonly SchedDest[];
  readonly flags: ReadonlySet<string>;
  readonly family: Family;
}

/** What a scheduler may hash on. */
export interface SchedClient {
  /** source address fold */
  readonly addrFold: number;
  readonly port: number;
  /** destination (virtual) address fold: dh, lblc, lblcr */
  readonly dstFold: number;
}

export type DestChange =
  | { readonly kind: 'add'; readonly dest: SchedDest }
  /** `index` = where the dest was in the list before removal */
  | { readonly kind: 'del'; readonly dest: SchedDest; readonly index: number }
  | { readonly kind: 'upd'; readonly dest: SchedDest };

export interface Scheduler {
  readonly name: string;
  pick(svc: SchedService, client: SchedClient): SchedDest | null;
  /** A destination was added, removed or re-weighted (IPVS add_dest/del_dest/upd_dest). */
  destsChanged(svc: SchedService, change: DestChange): void;
  /** A destination's ActiveConn/InActConn or OVERLOAD changed. */
  loadChanged(svc: SchedService, dest: SchedDest): void;
}

/**
 * A 32-bit cell shared by the replicas of one service's scheduler (proxy workers, each with its
 * own table): rr and wrr keep their position there, so that all replicas make one sequence, as
 * the one IPVS table does (ip_vs_rr.c/ip_vs_wrr.c update sched_data under a lock). Atomic across
 * processes; 0 until a replica stores a position.
 */
export interface SharedPosition {
  load(): number;
  /** stores `next` if the cell holds `expected`; returns what it held */
  compareExchange(expected: number, next: number): number;
}

export interface SchedContext {
  /** uniform in [0, 1) */
  random(): number;
  /** monotonic ms */
  now(): number;
  /** the service's position shared with the other replicas (absent: this table's own) */
  readonly position?: SharedPosition;
}

/** a position update that keeps losing the race to other replicas gives up after this many tries */
export const POSITION_RETRIES = 16;

/** FNV-1a of a destination id, never 0 (0 is the cell's "list head"): names a pick in a shared cell. */
export function destTag(id: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  return h | 0 || 1;
}

export type SchedulerFactory = (ctx: SchedContext) => Scheduler;

/** IPVS's per-destination load: ActiveConn * 256 + InActConn (ip_vs_dest_conn_overhead). */
export function connOverhead(d: SchedDest): number {
  return d.activeConns * 256 + d.inactConns;
}

/** Eligible for a new connection in the common IPVS sense: weight > 0 and not OVERLOAD. */
export function isAvailable(d: SchedDest): boolean {
  return d.weight > 0 && !d.overloaded;
}

/** List-order tie-break: the dest nearer the list head wins. */
export function nearerHead(a: SchedDest, b: SchedDest): boolean {
  return a.seq > b.seq;
}

/**
 * The destinations in an order fixed by who they are (family, address, port), not by when they
 * joined. IPVS fills its sh and mh tables in list order, and the list order is history (a server
 * that failed and came back is re-added at the head), so two directors with the same servers could
 * map the same flow differently; the hash schedulers fill from this order instead, so a flow lands
 * on the same real server whichever director receives it (stateless failover, docs/director-pair.md).
 */
export function identityOrder(dests: readonly SchedDest[]): SchedDest[] {
  const keyed = dests.map((d) => ({ d, bytes: addressBytes(d.address) }));
  keyed.sort((x, y) => {
    if (x.d.family !== y.d.family) return x.d.family - y.d.family;
    for (let i = 0; i < x.bytes.length && i < y.bytes.length; i++)
      if (x.bytes[i] !== y.bytes[i]) return x.bytes[i] - y.bytes[i];
    return x.d.port - y.d.port;
  });
  return keyed.map((k) => k.d);
}

export function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}
