/** fo: weighted failover, the highest-weight available destination, first in list on ties (ip_vs_fo.c). */
import { HeapScheduler } from './heap-scheduler.js';
import { isAvailable, nearerHead, type SchedDest } from './types.js';

export class WeightedFailover extends HeapScheduler {
  readonly name = 'fo';
  protected eligible(d: SchedDest): boolean {
    return isAvailable(d);
  }
  protected better(a: SchedDest, b: SchedDest): boolean {
    return a.weight > b.weight || (a.weight === b.weight && nearerHead(a, b));
  }
}

export const createWeightedFailover = (): WeightedFailover => new WeightedFailover();
