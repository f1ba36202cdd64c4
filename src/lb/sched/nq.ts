/**
 * nq: never queue. The first destination in list order with no active connection, else
 * the sed choice (ip_vs_nq.c). Two heaps: idle destinations by list order, and all by sed.
 */
import { IndexedHeap } from './heap.js';
import { sedOverhead } from './sed.js';
import {
  type DestChange,
  isAvailable,
  nearerHead,
  type SchedDest,
  type SchedService,
  type Scheduler,
} from './types.js';
import { wlcBetter } from './wlc.js';

export class NeverQueue implements Scheduler {
  readonly name = 'nq';
  private readonly idle = new IndexedHeap<SchedDest>(nearerHead);
  private readonly bySed = new IndexedHeap<SchedDest>((a, b) => wlcBetter(a, b, sedOverhead), 1);

  pick(): SchedDest | null {
    return this.idle.peek() ?? this.bySed.peek() ?? null;
  }
  destsChanged(_svc: SchedService, change: DestChange): void {
    if (change.kind === 'del') {
      this.idle.remove(change.dest);
      this.bySed.remove(change.dest);
    } else this.refresh(change.dest);
  }
  loadChanged(_svc: SchedService, dest: SchedDest): void {
    this.refresh(dest);
  }
  private refresh(d: SchedDest): void {
    if (!isAvailable(d)) {
      this.idle.remove(d);
      this.bySed.remove(d);
      return;
    }
    this.bySed.upsert(d);
    if (d.activeConns === 0) this.idle.upsert(d);
    else this.idle.remove(d);
  }
}

export const createNeverQueue = (): NeverQueue => new NeverQueue();
