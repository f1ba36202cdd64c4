/**
 * Base for schedulers whose choice is "the best eligible destination, ties to the list
 * head": an indexed heap keeps the eligible set ordered, re-keyed on every load change.
 */
import { IndexedHeap } from './heap.js';
import type { DestChange, SchedClient, SchedDest, SchedService, Scheduler } from './types.js';

export abstract class HeapScheduler implements Scheduler {
  abstract readonly name: string;
  protected readonly heap: IndexedHeap<SchedDest>;

  constructor() {
    this.heap = new IndexedHeap<SchedDest>((a, b) => this.better(a, b));
  }
  /** strictly preferred, including the list-order tie-break */
  protected abstract better(a: SchedDest, b: SchedDest): boolean;
  protected abstract eligible(d: SchedDest): boolean;

  pick(_svc: SchedService, _client: SchedClient): SchedDest | null {
    return this.heap.peek() ?? null;
  }
  destsChanged(_svc: SchedService, change: DestChange): void {
    if (change.kind === 'del') this.heap.remove(change.dest);
    else this.refresh(change.dest);
  }
  loadChanged(_svc: SchedService, dest: SchedDest): void {
    this.refresh(dest);
  }
  protected refresh(d: SchedDest): void {
    if (this.eligible(d)) this.heap.upsert(d);
    else this.heap.remove(d);
  }
}
