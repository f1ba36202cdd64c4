/**
 * lblc / lblcr: locality-based least connection (ip_vs_lblc.c, ip_vs_lblcr.c), keyed by the
 * destination (virtual) address the client asked for. lblc keeps one server per key and reuses
 * it unless it is unavailable or "overloaded" (more active connections than its weight while some
 * other server has less than half its weight in use); lblcr keeps a set per key and grows it
 * with the wlc choice when every member is overloaded. Cached entries are dropped when their
 * server leaves; the kernel's idle garbage collection is replaced by that (keys map 1:1 to VIPs).
 */
import { eligible, overhead, type SchedDest, type Scheduler } from './scheduler.js';

function wlc(ds: readonly SchedDest[]): SchedDest | null {
  let best: SchedDest | null = null;
  for (const d of ds)
    if (eligible(d) && (best === null || overhead(d) * best.weight < overhead(best) * d.weight)) best = d;
  return best;
}

function overloaded(d: SchedDest, all: readonly SchedDest[]): boolean {
  if (d.activeConns <= d.weight) return false;
  return all.some((o) => o !== d && eligible(o) && o.activeConns * 2 < o.weight);
}

export function createLblc(): Scheduler {
  const cache = new Map<string, SchedDest>();
  return {
    name: 'lblc',
    update(dests) {
      for (const [k, d] of cache) if (!dests.includes(d)) cache.delete(k);
    },
    pick(ds, input) {
      const key = input.vip.address;
      const cached = cache.get(key);
      if (cached && eligible(cached) && !overloaded(cached, ds)) return cached;
      const d = wlc(ds);
      if (d) cache.set(key, d);
      return d;
    },
  };
}

export function createLblcr(): Scheduler {
  const sets = new Map<string, SchedDest[]>();
  return {
    name: 'lblcr',
    update(dests) {
      for (const [k, s] of sets)
        sets.set(
          k,
          s.filter((d) => dests.includes(d)),
        );
    },
    pick(ds, input) {
      const key = input.vip.address;
      const set = sets.get(key) ?? [];
      const member = wlc(set);
      if (member && !overloaded(member, ds)) return member;
      const d = wlc(ds);
      if (!d) return member;
      if (!set.includes(d)) set.push(d);
      sets.set(key, set);
      return d;
    },
  };
}
