/**
 * rr: the next available destination after the last pick, in list order (ip_vs_rr.c).
 * With a shared position (proxy workers, each with its own table), the last pick is kept there by
 * its destination's tag, so every replica continues one sequence.
 */
import {
  type DestChange,
  destTag,
  isAvailable,
  POSITION_RETRIES,
  type SchedContext,
  type SchedDest,
  type SchedService,
  type Scheduler,
  type SharedPosition,
} from './types.js';

export class RoundRobin implements Scheduler {
  readonly name = 'rr';
  /** index of the last pick; -1 = list head */
  private cursor = -1;
  /** shared mode: tag -> list index, rebuilt after a change */
  private indexByTag: Map<number, number> | null = null;
  private tags: number[] = [];

  constructor(private readonly position?: SharedPosition) {}

  pick(svc: SchedService): SchedDest | null {
    const n = svc.dests.length;
    if (n === 0) return null;
    if (this.position) return this.pickShared(svc, this.position);
    const i = this.next(svc, this.cursor);
    if (i < 0) return null;
    this.cursor = i;
    return svc.dests[i] ?? null;
  }

  /** After `start` to the end, then wrap round up to and including it (IPVS's second pass). */
  private next(svc: SchedService, start: number): number {
    const n = svc.dests.length;
    for (let k = 1; k <= n; k++) {
      const i = start < 0 ? k - 1 : (start + k) % n;
      if (isAvailable(svc.dests[i]!)) return i;
    }
    return -1;
  }

  private pickShared(svc: SchedService, position: SharedPosition): SchedDest | null {
    let index = this.indexByTag;
    if (!index) {
      index = new Map();
      this.tags = svc.dests.map((d, i) => {
        const t = destTag(d.id);
        index!.set(t, i);
        return t;
      });
      this.indexByTag = index;
    }
    for (let attempt = 0; ; attempt++) {
      const last = position.load();
      // a last pick this list does not hold (removed meanwhile): start at the head
      const i = this.next(svc, last === 0 ? -1 : (index.get(last) ?? -1));
      if (i < 0) return null;
      if (position.compareExchange(last, this.tags[i]!) === last || attempt >= POSITION_RETRIES)
        return svc.dests[i] ?? null;
    }
  }

  destsChanged(_svc: SchedService, change: DestChange): void {
    this.indexByTag = null;
    // List positions shift: the cursor keeps pointing at the same entry (IPVS keeps a list pointer).
    if (change.kind === 'add') {
      if (this.cursor >= 0) this.cursor++;
    } else if (change.kind === 'del') {
      // a removed cursor moves to its predecessor (ip_vs_rr_del_dest)
      if (change.index <= this.cursor) this.cursor--;
    }
  }
  loadChanged(): void {}
}

export const createRoundRobin = (ctx?: SchedContext): RoundRobin => new RoundRobin(ctx?.position);
