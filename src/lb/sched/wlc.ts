/**
 * wlc (the default): least overhead/weight, compared by cross-multiplication; the first
 * eligible destination in list order wins ties (ip_vs_wlc.c).
 */
import { HeapScheduler } from './heap-scheduler.js';
import { connOverhead, isAvailable, nearerHead, type SchedDest } from './types.js';

/** a's overhead/weight is strictly lower than b's, else list order. */
export function wlcBetter(a: SchedDest, b: SchedDest, overhead: (d: SchedDest) => number): boolean {
  const l = overhead(a) * b.weight;
  const r = overhead(b) * a.weight;
  return l < r || (l === r && nearerHead(a, b));
}

export class WeightedLeastConnection extends HeapScheduler {
  readonly name: string = 'wlc';
  protected eligible(d: SchedDest): boolean {
    return isAvailable(d);
  }
  protected better(a: SchedDest, b: SchedDest): boolean {
    return wlcBetter(a, b, connOverhead);
  }
}

export const createWeightedLeastConnection = (): WeightedLeastConnection => new WeightedLeastConnection();
