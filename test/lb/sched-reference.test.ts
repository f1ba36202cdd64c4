/**
 * The O(log n) heap schedulers must choose exactly what IPVS's list scans choose.
 * Reference scans below restate ip_vs_lc.c, ip_vs_wlc.c, ip_vs_sed.c, ip_vs_nq.c,
 * ip_vs_fo.c and ip_vs_ovf.c over the IPVS list order; fast-check drives random
 * sequences of opens, state changes, closes and weight/threshold edits.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { DestSnapshot } from '../../src/lb/types.js';
import { client, destParams, tableWith } from './helpers.js';

type D = DestSnapshot;
const oh = (d: D) => d.activeConns * 256 + d.inactConns;
const avail = (d: D) => d.weight > 0 && !d.overloaded;

function scanMin(list: readonly D[], over: (d: D) => number): D | null {
  let least: D | null = null;
  for (const d of list) {
    if (!avail(d)) continue;
    if (!least || over(least) * d.weight > over(d) * least.weight) least = d;
  }
  return least;
}

const REFERENCE: Record<string, (list: readonly D[]) => D | null> = {
  lc: (list) => {
    let least: D | null = null;
    for (const d of list) if (avail(d) && (!least || oh(d) < oh(least))) least = d;
    return least;
  },
  wlc: (list) => scanMin(list, oh),
  sed: (list) => scanMin(list, (d) => d.activeConns + 1),
  nq: (list) => {
    for (const d of list) if (avail(d) && d.activeConns === 0) return d;
    return scanMin(list, (d) => d.activeConns + 1);
  },
  fo: (list) => {
    let h: D | null = null;
    for (const d of list) if (avail(d) && (!h || d.weight > h.weight)) h = d;
    return h;
  },
  ovf: (list) => {
    let h: D | null = null;
    for (const d of list) {
      if (!avail(d) || d.activeConns > d.weight) continue;
      if (!h || d.weight > h.weight) h = d;
    }
    return h;
  },
};

const actions = fc.array(
  fc.oneof(
    fc.record({ t: fc.constant('open' as const), est: fc.boolean() }),
    fc.record({ t: fc.constant('close' as const), i: fc.nat() }),
    fc.record({ t: fc.constant('flip' as const), i: fc.nat() }),
    fc.record({ t: fc.constant('weight' as const), d: fc.nat(5), w: fc.integer({ min: 0, max: 4 }) }),
    fc.record({ t: fc.constant('thresh' as const), d: fc.nat(5), u: fc.integer({ min: 0, max: 6 }) }),
  ),
  { maxLength: 120 },
);

for (const name of Object.keys(REFERENCE)) {
  test(`${name}: heap choice equals the IPVS list scan`, () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 1, maxLength: 6 }),
        actions,
        (weights, acts) => {
          const { table, key, addrs } = tableWith(name, weights);
          const handles: ReturnType<typeof table.open>[] = [];
          for (const a of acts) {
            const list = table.snapshot().services[0].dests;
            if (a.t === 'open') {
              const expected = REFERENCE[name](list);
              const h = table.open(key, client(handles.length));
              assert.equal(h?.dest.address ?? null, expected?.address ?? null);
              if (h) {
                if (a.est) h.setState('ESTABLISHED');
                handles.push(h);
              }
            } else if (a.t === 'close' && handles.length) handles[a.i % handles.length]?.close();
            else if (a.t === 'flip' && handles.length) {
              const h = handles[a.i % handles.length];
              h?.setState(h.idleTimeoutMs() === 900_000 ? 'FIN_WAIT' : 'ESTABLISHED');
            } else if (a.t === 'weight' || a.t === 'thresh') {
              const i = a.d % addrs.length;
              const cur = list.find((d) => d.address === addrs[i])!;
              const params =
                a.t === 'weight'
                  ? destParams({ weight: a.w, uThreshold: cur.uThreshold })
                  : destParams({ weight: cur.weight, uThreshold: a.u });
              const r = table.apply({ op: 'edit-dest', key, dest: { address: addrs[i], port: 80 }, params });
              assert.ok(r.ok);
            }
          }
          table.dispose();
        },
      ),
      { numRuns: 150 },
    );
  });
}
