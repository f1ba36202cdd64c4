/**
 * lblcr: locality-based least connection with replication (ip_vs_lblcr.c). A cache maps
 * a destination (virtual) address to a SET of servers; the least loaded member
 * (overhead/weight) is used unless it is lblc-overloaded, in which case wlc picks a
 * server that joins the set. When a set of more than one member has not changed for the
 * expiration time, its most loaded member is dropped.
 */
import { lblcOverloaded } from './lblc.js';
import {
  connOverhead,
  type DestChange,
  type SchedClient,
  type SchedContext,
  type SchedDest,
  type SchedService,
  type Scheduler,
} from './types.js';
import { WeightedLeastConnection } from './wlc.js';

export const LBLCR_EXPIRATION_MS = 24 * 60 * 60 * 1000;
const GC_INTERVAL_MS = 60 * 1000;

interface DestSet {
  /** newest member first (the kernel inserts at the head) */
  members: SchedDest[];
  lastMod: number;
  lastUse: number;
}

function setMin(set: DestSet): SchedDest | null {
  let least: SchedDest | null = null;
  for (const d of set.members) {
    if (d.overloaded || d.weight <= 0) continue;
    if (!least || connOverhead(least) * d.weight > connOverhead(d) * least.weight) least = d;
  }
  return least;
}

function setMax(set: DestSet): SchedDest | null {
  let most: SchedDest | null = null;
  for (const d of set.members) {
    if (d.weight <= 0) continue;
    if (!most || connOverhead(most) * d.weight < connOverhead(d) * most.weight) most = d;
  }
  return most;
}

export class LocalityLeastConnectionReplicated implements Scheduler {
  readonly name = 'lblcr';
  private readonly cache = new Map<number, DestSet>();
  private readonly wlc = new WeightedLeastConnection();
  private lastGc = 0;

  constructor(
    private readonly ctx: SchedContext,
    private readonly expirationMs = LBLCR_EXPIRATION_MS,
  ) {}

  pick(svc: SchedService, client: SchedClient): SchedDest | null {
    const now = this.ctx.now();
    this.gc(now);
    const set = this.cache.get(client.dstFold);
    if (set) {
      set.lastUse = now;
      const least = setMin(set);
      if (set.members.length > 1 && now - set.lastMod > this.expirationMs) {
        const most = setMax(set);
        if (most) {
          set.members = set.members.filter((d) => d !== most);
          set.lastMod = now;
        }
      }
      if (least && !lblcOverloaded(least, svc)) return least;
      const d = this.wlc.pick(svc, client);
      if (!d) return null;
      if (!set.members.includes(d)) {
        set.members.unshift(d);
        set.lastMod = now;
      }
      return d;
    }
    const d = this.wlc.pick(svc, client);
    if (!d) return null;
    this.cache.set(client.dstFold, { members: [d], lastMod: now, lastUse: now });
    return d;
  }
  destsChanged(svc: SchedService, change: DestChange): void {
    this.wlc.destsChanged(svc, change);
    if (change.kind === 'del') {
      for (const [k, s] of this.cache) {
        s.members = s.members.filter((d) => d !== change.dest);
        if (s.members.length === 0) this.cache.delete(k);
      }
    }
  }
  loadChanged(svc: SchedService, dest: SchedDest): void {
    this.wlc.loadChanged(svc, dest);
  }
  private gc(now: number): void {
    if (now - this.lastGc < GC_INTERVAL_MS) return;
    this.lastGc = now;
    for (const [k, s] of this.cache) if (now - s.lastUse > this.expirationMs) this.cache.delete(k);
  }
}

export const createLocalityLeastConnectionReplicated = (ctx: SchedContext): LocalityLeastConnectionReplicated =>
  new LocalityLeastConnectionReplicated(ctx);
