/**
 * The "least" family from IPVS, each a comparison over eligible destinations in list order
 * (first minimum wins, as the kernel's scans do):
 * lc  (ip_vs_lc.c)  minimum overhead, weights ignored except 0;
 * wlc (ip_vs_wlc.c) minimum overhead/weight, compared by cross-multiplication;
 * sed (ip_vs_sed.c) minimum (activeConns+1)/weight;
 * nq  (ip_vs_nq.c)  first destination with no active connection, else as sed.
 */
import { eligible, overhead, type SchedDest, type Scheduler } from './scheduler.js';

function pickMin(dests: readonly SchedDest[], cost: (d: SchedDest) => number): SchedDest | null {
  let best: SchedDest | null = null;
  let bestCost = 0;
  for (const d of dests) {
    if (!eligible(d)) continue;
    const c = cost(d);
    if (best === null || c < bestCost) {
      best = d;
      bestCost = c;
    }
  }
  return best;
}

/** a/wa < b/wb without division, as the kernel compares (a*wb < b*wa). */
function pickWeightedMin(dests: readonly SchedDest[], load: (d: SchedDest) => number): SchedDest | null {
  let best: SchedDest | null = null;
  for (const d of dests) {
    if (!eligible(d)) continue;
    if (best === null || load(d) * best.weight < load(best) * d.weight) best = d;
  }
  return best;
}

export const createLc = (): Scheduler => ({ name: 'lc', update() {}, pick: (ds) => pickMin(ds, overhead) });
export const createWlc = (): Scheduler => ({ name: 'wlc', update() {}, pick: (ds) => pickWeightedMin(ds, overhead) });
export const createSed = (): Scheduler => ({
  name: 'sed',
  update() {},
  pick: (ds) => pickWeightedMin(ds, (d) => d.activeConns + 1),
});
export const createNq = (): Scheduler => ({
  name: 'nq',
  update() {},
  pick(ds) {
    for (const d of ds) if (eligible(d) && d.activeConns === 0) return d;
    return pickWeightedMin(ds, (d) => d.activeConns + 1);
  },
});

/** fo (ip_vs_fo.c): the eligible destination with the highest weight (first one on ties). */
export const createFo = (): Scheduler => ({
  name: 'fo',
  update() {},
  pick(ds) {
    let best: SchedDest | null = null;
    for (const d of ds) if (eligible(d) && (best === null || d.weight > best.weight)) best = d;
    return best;
  },
});

/** ovf (ip_vs_ovf.c): highest weight among destinations whose active connections are below their weight. */
export const createOvf = (): Scheduler => ({
  name: 'ovf',
  update() {},
  pick(ds) {
    let best: SchedDest | null = null;
    for (const d of ds) {
      if (eligible(d) && d.activeConns < d.weight && (best === null || d.weight > best.weight)) best = d;
    }
    return best;
  },
});

/** twos (ip_vs_twos.c): two weighted random draws, keep the one with lower overhead/weight. */
export function createTwos(random: () => number = Math.random): Scheduler {
  const draw = (ds: readonly SchedDest[], total: number): SchedDest | null => {
    let r = Math.floor(random() * total);
    for (const d of ds) {
      if (!eligible(d)) continue;
      if (r < d.weight) return d;
      r -= d.weight;
    }
    return null;
  };
  return {
    name: 'twos',
    update() {},
    pick(ds) {
      let total = 0;
      for (const d of ds) if (eligible(d)) total += d.weight;
      if (total === 0) return null;
      const a = draw(ds, total);
      const b = draw(ds, total);
      if (!a || !b) return a ?? b;
      return overhead(b) * a.weight < overhead(a) * b.weight ? b : a;
    },
  };
}
