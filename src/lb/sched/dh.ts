/**
 * dh: destination hashing. A static 256-bucket table filled round-robin over the list,
 * indexed by a multiplicative hash of the destination (virtual) address; no fallback:
 * an unavailable bucket server means no destination (ip_vs_dh.c). Filled in identity order, not
 * list order, so two directors agree (types.ts identityOrder).
 */
import {
  type DestChange,
  identityOrder,
  type SchedClient,
  type SchedDest,
  type SchedService,
  type Scheduler,
} from './types.js';

const BUCKETS = 256;

export class DestinationHashing implements Scheduler {
  readonly name = 'dh';
  private buckets: (SchedDest | null)[] = new Array(BUCKETS).fill(null);

  pick(_svc: SchedService, client: SchedClient): SchedDest | null {
    const d = this.buckets[(Math.imul(client.dstFold, 2654435761 | 0) >>> 0) & (BUCKETS - 1)];
    if (!d || d.weight <= 0 || d.overloaded) return null;
    return d;
  }
  destsChanged(svc: SchedService, _change?: DestChange): void {
    const dests = identityOrder(svc.dests);
    const n = dests.length;
    for (let i = 0; i < BUCKETS; i++) this.buckets[i] = n === 0 ? null : dests[i % n];
  }
  loadChanged(): void {}
}

export const createDestinationHashing = (): DestinationHashing => new DestinationHashing();
