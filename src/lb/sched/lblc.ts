/**
 * lblc: locality-based least connection (ip_vs_lblc.c). A cache maps a destination
 * (virtual) address to a server; the cached server is reused unless it is gone, has
 * weight 0, or is "overloaded" in lblc's sense (ActiveConn > weight while some server
 * has ActiveConn*2 < weight); otherwise wlc picks and the cache is updated. Entries idle
 * longer than the expiration (24 h, sysctl lblc_expiration) are dropped.
 */
import type { DestChange, SchedClient, SchedContext, SchedDest, SchedService, Scheduler } from './types.js';
import { WeightedLeastConnection } from './wlc.js';

export const LBLC_EXPIRATION_MS = 24 * 60 * 60 * 1000;
const GC_INTERVAL_MS = 60 * 1000;

/** lblc/lblcr's overload test: busy beyond its weight while a half-idle server exists. */
export function lblcOverloaded(dest: SchedDest, svc: SchedService): boolean {
  if (dest.activeConns > dest.weight) {
    for (const d of svc.dests) if (d.activeConns * 2 < d.weight) return true;
  }
  return false;
}

interface CacheEntry {
  dest: SchedDest;
  lastUse: number;
}

export class LocalityLeastConnection implements Scheduler {
  readonly name = 'lblc';
  private readonly cache = new Map<number, CacheEntry>();
  private readonly wlc = new WeightedLeastConnection();
  private lastGc = 0;

  constructor(
    private readonly ctx: SchedContext,
    private readonly expirationMs = LBLC_EXPIRATION_MS,
  ) {}

  pick(svc: SchedService, client: SchedClient): SchedDest | null {
    const now = this.ctx.now();
    this.gc(now);
    const en = this.cache.get(client.dstFold);
    if (en) {
      en.lastUse = now;
      if (en.dest.weight > 0 && !lblcOverloaded(en.dest, svc)) return en.dest;
    }
    const d = this.wlc.pick(svc, client);
    if (!d) return null;
    if (en) en.dest = d;
    else this.cache.set(client.dstFold, { dest: d, lastUse: now });
    return d;
  }
  destsChanged(svc: SchedService, change: DestChange): void {
    this.wlc.destsChanged(svc, change);
    if (change.kind === 'del') for (const [k, e] of this.cache) if (e.dest === change.dest) this.cache.delete(k);
  }
  loadChanged(svc: SchedService, dest: SchedDest): void {
    this.wlc.loadChanged(svc, dest);
  }
  private gc(now: number): void {
    if (now - this.lastGc < GC_INTERVAL_MS) return;
    this.lastGc = now;
    for (const [k, e] of this.cache) if (now - e.lastUse > this.expirationMs) this.cache.delete(k);
  }
}

export const createLocalityLeastConnection = (ctx: SchedContext): LocalityLeastConnection =>
  new LocalityLeastConnection(ctx);
