/**
 * wrr: interleaved weighted round robin (ip_vs_wrr.c). The current weight `cw` starts at
 * the maximum weight (less gcd-1) and steps down by the gcd each pass over the list; a
 * destination is picked when its weight >= cw and it is not OVERLOADed.
 * With a shared position (proxy workers, each with its own table), (cl, cw) live there, packed
 * in 32 bits (cl + 1 above, cw below; 0 is the initial state), so every replica continues one
 * sequence; lists or weights past 16 bits keep their own position.
 */
import {
  type DestChange,
  gcd,
  POSITION_RETRIES,
  type SchedContext,
  type SchedDest,
  type SchedService,
  type Scheduler,
  type SharedPosition,
} from './types.js';

const PACK_LIMIT = 0xffff;

export class WeightedRoundRobin implements Scheduler {
  readonly name = 'wrr';
  /** index of the current list entry; -1 = head */
  private cl = -1;
  private cw = 0;
  private mw = 0;
  private di = 1;

  constructor(private readonly position?: SharedPosition) {}

  /** the shared cell, when this list and its weights fit in it */
  private shared(svc: SchedService): SharedPosition | undefined {
    return this.position && svc.dests.length < PACK_LIMIT && this.mw <= PACK_LIMIT ? this.position : undefined;
  }

  private load(packed: number): void {
    this.cl = (packed >>> 16) - 1;
    this.cw = packed & PACK_LIMIT;
  }

  private packed(): number {
    return ((this.cl + 1) << 16) | (this.cw & PACK_LIMIT) | 0;
  }

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
    const position = this.shared(svc);
    if (!position) return this.pickLocal(svc);
    for (let attempt = 0; ; attempt++) {
      const cur = position.load();
      this.load(cur);
      const d = this.pickLocal(svc);
      const next = this.packed();
      if (next === cur || position.compareExchange(cur, next) === cur || attempt >= POSITION_RETRIES) return d;
    }
  }

  private pickLocal(svc: SchedService): SchedDest | null {
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
    this.recompute(svc);
    const position = this.shared(svc);
    if (!position) {
      this.reset();
      return;
    }
    // every replica applies the same change: the reset gives the same state whichever is first
    for (let attempt = 0; attempt <= POSITION_RETRIES; attempt++) {
      const cur = position.load();
      this.load(cur);
      this.reset();
      if (position.compareExchange(cur, this.packed()) === cur) return;
    }
  }

  private reset(): void {
    this.cl = -1;
    if (this.cw > this.mw || this.cw === 0) this.cw = this.mw;
    else if (this.di > 1) this.cw = Math.floor(this.cw / this.di) * this.di + 1;
  }
  loadChanged(): void {}
}

export const createWeightedRoundRobin = (ctx?: SchedContext): WeightedRoundRobin =>
  new WeightedRoundRobin(ctx?.position);
