/**
 * The whole director's table when connections live in several proxy workers: the primary table
 * is the authority for services, real servers and their parameters; each worker's replica holds
 * the connections it forwarded. Counters (ActiveConn, InActConn, persistent templates, stats,
 * rates, no-destination refusals) are the sum over the replicas, as ipvsadm would show them for
 * one kernel table; OVERLOAD is shown when any replica has it.
 */
import type { DestSnapshot, Rates, ServiceSnapshot, Stats, TableSnapshot } from './types.js';

const ZERO_STATS: Stats = { conns: 0, inPkts: 0, outPkts: 0, inBytes: 0, outBytes: 0 };
const ZERO_RATES: Rates = { cps: 0, inPps: 0, outPps: 0, inBps: 0, outBps: 0 };

/** Field-wise sum of two counter records of the same shape (Stats, Rates). */
function add<T extends object>(a: T, b: T): T {
  const out = { ...a } as Record<string, number>;
  for (const [k, v] of Object.entries(b)) out[k] = (out[k] ?? 0) + (v as number);
  return out as T;
}

/** `primary` with every counter replaced by the sum of the replicas' counters. */
export function withReplicaCounters(primary: TableSnapshot, replicas: readonly TableSnapshot[]): TableSnapshot {
  const services = new Map<string, ServiceSnapshot[]>();
  for (const r of replicas)
    for (const s of r.services) {
      const list = services.get(s.id);
      if (list) list.push(s);
      else services.set(s.id, [s]);
    }
  return {
    ...primary,
    services: primary.services.map((s) => {
      const copies = services.get(s.id) ?? [];
      const dests = new Map<string, DestSnapshot[]>();
      for (const c of copies)
        for (const d of c.dests) {
          const list = dests.get(d.id);
          if (list) list.push(d);
          else dests.set(d.id, [d]);
        }
      const noDest = copies.reduce((n, c) => n + (c.noDest ?? 0), 0);
      return {
        ...s,
        stats: copies.reduce((a, c) => add(a, c.stats), ZERO_STATS),
        rates: copies.reduce((a, c) => add(a, c.rates), ZERO_RATES),
        ...(s.noDest !== undefined || noDest ? { noDest } : {}),
        dests: s.dests.map((d) => {
          const ds = dests.get(d.id) ?? [];
          return {
            ...d,
            activeConns: ds.reduce((n, x) => n + x.activeConns, 0),
            inactConns: ds.reduce((n, x) => n + x.inactConns, 0),
            persistConns: ds.reduce((n, x) => n + x.persistConns, 0),
            // each replica sees the whole director's load (setPeerLoad), so any of them may flag it
            overloaded: d.overloaded || ds.some((x) => x.overloaded),
            stats: ds.reduce((a, x) => add(a, x.stats), ZERO_STATS),
            rates: ds.reduce((a, x) => add(a, x.rates), ZERO_RATES),
          };
        }),
      };
    }),
  };
}
