/**
 * Rate estimation as IPVS does it (ip_vs_est.c): every 2 seconds the counters' deltas become a
 * per-second sample, folded into an exponentially weighted average with weight 1/4.
 */
import type { Rates, Stats } from './types.js';

export const ESTIMATOR_INTERVAL_MS = 2000;

export class MutableStats implements Stats {
  conns = 0;
  inPkts = 0;
  outPkts = 0;
  inBytes = 0;
  outBytes = 0;
  zero(): void {
    this.conns = this.inPkts = this.outPkts = this.inBytes = this.outBytes = 0;
  }
  snapshot(): Stats {
    return {
      conns: this.conns,
      inPkts: this.inPkts,
      outPkts: this.outPkts,
      inBytes: this.inBytes,
      outBytes: this.outBytes,
    };
  }
}

export class RateEstimator {
  private last: Stats = { conns: 0, inPkts: 0, outPkts: 0, inBytes: 0, outBytes: 0 };
  private avg = { cps: 0, inPps: 0, outPps: 0, inBps: 0, outBps: 0 };

  /** Called every ESTIMATOR_INTERVAL_MS with the current counters. */
  tick(now: Stats): void {
    const secs = ESTIMATOR_INTERVAL_MS / 1000;
    const fold = (avg: number, cur: number, prev: number) => avg + ((cur - prev) / secs - avg) / 4;
    this.avg = {
      cps: fold(this.avg.cps, now.conns, this.last.conns),
      inPps: fold(this.avg.inPps, now.inPkts, this.last.inPkts),
      outPps: fold(this.avg.outPps, now.outPkts, this.last.outPkts),
      inBps: fold(this.avg.inBps, now.inBytes, this.last.inBytes),
      outBps: fold(this.avg.outBps, now.outBytes, this.last.outBytes),
    };
    this.last = { ...now };
  }
  reset(now: Stats): void {
    this.last = { ...now };
    this.avg = { cps: 0, inPps: 0, outPps: 0, inBps: 0, outBps: 0 };
  }
  rates(): Rates {
    const r = (x: number) => Math.max(0, Math.round(x));
    return {
      cps: r(this.avg.cps),
      inPps: r(this.avg.inPps),
      outPps: r(this.avg.outPps),
      inBps: r(this.avg.inBps),
      outBps: r(this.avg.outBps),
    };
  }
}
