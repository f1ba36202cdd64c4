/**
 * ovf: weighted overflow. The highest-weight destination whose ActiveConn does not exceed
 * its weight; skips weight 0 and OVERLOAD (ip_vs_ovf.c).
 */
import { HeapScheduler } from './heap-scheduler.js';
import { isAvailable, nearerHead, type SchedDest } from './types.js';

export class WeightedOverflow extends HeapScheduler {
  readonly name = 'ovf';
  protected eligible(d: SchedDest): boolean {
    return isAvailable(d) && d.activeConns <= d.weight;
  }
  protected better(a: SchedDest, b: SchedDest): boolean {
    return a.weight > b.weight || (a.weight === b.weight && nearerHead(a, b));
  }
}

export const createWeightedOverflow = (): WeightedOverflow => new WeightedOverflow();
