/** rr: the next available destination after the last pick, in list order (ip_vs_rr.c). */
import { type DestChange, isAvailable, type SchedDest, type SchedService, type Scheduler } from './types.js';

export class RoundRobin implements Scheduler {
  readonly name = 'rr';
  /** index of the last pick; -1 = list head */
  private cursor = -1;

  pick(svc: SchedService): SchedDest | null {
    const n = svc.dests.length;
    if (n === 0) return null;
    // After the cursor to the end, then wrap round up to and including it (IPVS's second pass).
    const start = this.cursor;
    for (let k = 1; k <= n; k++) {
      const i = start < 0 ? k - 1 : (start + k) % n;
      const d = svc.dests[i];
      if (isAvailable(d)) {
        this.cursor = i;
        return d;
      }
    }
    return null;
  }
  destsChanged(_svc: SchedService, change: DestChange): void {
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

export const createRoundRobin = (): RoundRobin => new RoundRobin();
