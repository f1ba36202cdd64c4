/** sed: shortest expected delay, least (ActiveConn+1)/weight (ip_vs_sed.c). */
import { HeapScheduler } from './heap-scheduler.js';
import { isAvailable, type SchedDest } from './types.js';
import { wlcBetter } from './wlc.js';

export const sedOverhead = (d: SchedDest): number => d.activeConns + 1;

export class ShortestExpectedDelay extends HeapScheduler {
  readonly name = 'sed';
  protected eligible(d: SchedDest): boolean {
    return isAvailable(d);
  }
  protected better(a: SchedDest, b: SchedDest): boolean {
    return wlcBetter(a, b, sedOverhead);
  }
}

export const createShortestExpectedDelay = (): ShortestExpectedDelay => new ShortestExpectedDelay();
