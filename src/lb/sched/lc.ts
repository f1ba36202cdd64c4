/** lc: least connections by overhead (ActiveConn*256 + InActConn), weights ignored except 0 (ip_vs_lc.c). */
import { HeapScheduler } from './heap-scheduler.js';
import { connOverhead, isAvailable, nearerHead, type SchedDest } from './types.js';

export class LeastConnection extends HeapScheduler {
  readonly name = 'lc';
  protected eligible(d: SchedDest): boolean {
    return isAvailable(d);
  }
  protected better(a: SchedDest, b: SchedDest): boolean {
    const oa = connOverhead(a);
    const ob = connOverhead(b);
    return oa < ob || (oa === ob && nearerHead(a, b));
  }
}

export const createLeastConnection = (): LeastConnection => new LeastConnection();
