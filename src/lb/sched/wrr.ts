/**
 * wrr: interleaved weighted round robin (ip_vs_wrr.c). The current weight `cw` starts at
 * the maximum weight (less gcd-1) and steps down by the gcd each pass over the list; a
 * destination is picked when its weight >= cw and it is not OVERLOADed.
 */
import { type DestChange, gcd, type SchedDest, type SchedService, type Scheduler } from './types.js';

export class WeightedRoundRobin implements Scheduler {
  readonly name = 'wrr';
  /** index of the current list entry; -1 = head */
  private cl = -1;
  private cw = 0;
  private mw = 0;
  private di = 1;

  private recompute(svc: SchedService): void {
    let g = 0;
    let max = 0;
    for (const d of svc.dests) {
      if (d.weight > 0) g = g > 0 ? gcd(d.weight, g) : d.weight;
      if (d.weight > max) max = d.weight;
    }
    this.di = g || 1;
    this.mw = max - (this.di - 1);
  }

  pick(svc: SchedService): SchedDest | null {
    if (this.mw <= 0) return null;
    const n = svc.dests.length;
    const last = this.cl;
    let stop = -2;
    let lastPass = false;
    let restarted = false;
    let i = this.cl;
    for (;;) {
      for (i = i + 1; i < n; i++) {
        const d = svc.dests[i];
        if (!d.overloaded && d.weight >= this.cw) {
          this.cl = i;
          return d;
        }
        if (i === stop) {
          this.cl = i;
          return null; // all destinations are overloaded
        }
      }
      i = -1;
      this.cw -= this.di;
      if (this.cw <= 0) {
        this.cw = this.mw;
        if (lastPass || last === -1) {
          this.cl = -1;
          return null;
        }
        restarted = true;
      }
      lastPass = this.cw <= this.di;
      if (lastPass && restarted && last !== -1) stop = last;
    }
  }

  destsChanged(svc: SchedService, _change: DestChange): void {
    this.cl = -1;
    this.recompute(svc);
    if (this.cw > this.mw || this.cw === 0) this.cw = this.mw;
    else if (this.di > 1) this.cw = Math.floor(this.cw / this.di) * this.di + 1;
  }
  loadChanged(): void {}
}

export const createWeightedRoundRobin = (): WeightedRoundRobin => new WeightedRoundRobin();
