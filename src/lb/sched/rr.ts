/** rr: next eligible destination in list order after the previous pick (ip_vs_rr.c). */
import { eligible, type SchedDest, type Scheduler } from './scheduler.js';

export function createRr(): Scheduler {
  let last = -1;
  return {
    name: 'rr',
    update() {},
    pick(dests) {
      const n = dests.length;
      for (let k = 1; k <= n; k++) {
        const i = (last + k) % n;
        if (eligible(dests[i])) {
          last = i;
          return dests[i];
        }
      }
      return null as SchedDest | null;
    },
  };
}
