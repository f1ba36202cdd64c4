/**
 * twos: weighted "power of two choices" (ip_vs_twos.c, Linux 6.6). Two servers are drawn
 * at random with probability proportional to weight (walking the list with two random
 * weights in [0, total]); the one with the lower overhead/weight wins.
 * O(n) per pick, as IPVS: the draw walks the list.
 */
import {
  connOverhead,
  isAvailable,
  type SchedClient,
  type SchedContext,
  type SchedDest,
  type SchedService,
  type Scheduler,
} from './types.js';

export class TwoChoices implements Scheduler {
  readonly name = 'twos';
  constructor(private readonly ctx: SchedContext) {}

  pick(svc: SchedService, _client: SchedClient): SchedDest | null {
    let total = 0;
    let lastEligible: SchedDest | null = null;
    for (const d of svc.dests) {
      if (!isAvailable(d)) continue;
      total += d.weight;
      lastEligible = d;
    }
    if (!lastEligible) return null;
    // +1 so the random weights range over [0, total] inclusive, as the kernel does
    let r1 = Math.floor(this.ctx.random() * (total + 1));
    let r2 = Math.floor(this.ctx.random() * (total + 1));
    let c1: SchedDest | null = null;
    let c2: SchedDest | null = null;
    for (const d of svc.dests) {
      if (!isAvailable(d)) continue;
      r1 -= d.weight;
      r2 -= d.weight;
      if (r1 <= 0 && !c1) c1 = d;
      if (r2 <= 0 && !c2) c2 = d;
      if (c1 && c2) break;
    }
    // the kernel starts choice1 at the last eligible dest
    if (!c1) c1 = lastEligible;
    if (c2 && c2.weight * connOverhead(c1) > c1.weight * connOverhead(c2)) return c2;
    return c1;
  }
  destsChanged(): void {}
  loadChanged(): void {}
}

export const createTwoChoices = (ctx: SchedContext): TwoChoices => new TwoChoices(ctx);
