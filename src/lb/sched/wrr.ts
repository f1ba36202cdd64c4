/**
 * wrr: interleaved weighted round robin (ip_vs_wrr.c). The current weight `cw` starts at the
 * maximum weight and steps down by the gcd of all weights on each pass; a destination is picked
 * when its weight >= cw. Over one full cycle each destination is picked weight/gcd times.
 */
import { gcd, type Scheduler } from './scheduler.js';

export function createWrr(): Scheduler {
  let index = -1;
  let cw = 0;
  let maxWeight = 0;
  let step = 1;
  return {
    name: 'wrr',
    update(dests) {
      maxWeight = 0;
      let g = 0;
      for (const d of dests) {
        if (d.weight > 0) {
          maxWeight = Math.max(maxWeight, d.weight);
          g = gcd(g, d.weight);
        }
      }
      step = g || 1;
      // IPVS restarts the cycle when weights change
      index = -1;
      cw = 0;
    },
    pick(dests) {
      const n = dests.length;
      if (n === 0 || maxWeight === 0) return null;
      // at most one full cycle: n positions x (maxWeight/step) weight levels
      const limit = n * (Math.floor(maxWeight / step) + 1);
      for (let k = 0; k < limit; k++) {
        index = (index + 1) % n;
        if (index === 0) {
          cw -= step;
          if (cw <= 0) cw = maxWeight;
        }
        const d = dests[index];
        if (d.available && !d.overloaded && d.weight >= cw && d.weight > 0) return d;
      }
      return null;
    },
  };
}
