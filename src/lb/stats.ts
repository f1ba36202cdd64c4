/**
 * Per-service and per-destination counters plus IPVS's rate estimator (ip_vs_est.c):
 * every 2 s the deltas are scaled (conns/packets by 2^10 per second, bytes by 2^5 per
 * second) and folded into an EWMA with weight 1/4; readers round the scaled value.
 */
import type { Rates, Stats } from './types.js';

export const ESTIMATOR_INTERVAL_MS = 2000;

export class Counters {
  conns = 0;
  inPkts = 0;
  outPkts = 0;
  inBytes = 0;
  outBytes = 0;
  // estimator state (scaled, as the kernel keeps it)
  private lastConns = 0;
  private lastInPkts = 0;
  private lastOutPkts = 0;
  private lastInBytes = 0;
  private lastOutBytes = 0;
  private cps = 0;
  private inPps = 0;
  private outPps = 0;
  private inBps = 0;
  private outBps = 0;

  /** One 2-second estimator tick. */
  estimate(): void {
    const ewma = (avg: number, rate: number): number => avg + Math.floor((rate - avg) / 4);
    // conns and packets: delta * 2^10 / 2 s = delta << 9
    this.cps = ewma(this.cps, (this.conns - this.lastConns) * 512);
    this.inPps = ewma(this.inPps, (this.inPkts - this.lastInPkts) * 512);
    this.outPps = ewma(this.outPps, (this.outPkts - this.lastOutPkts) * 512);
    // bytes: delta * 2^5 / 2 s = delta << 4
    this.inBps = ewma(this.inBps, (this.inBytes - this.lastInBytes) * 16);
    this.outBps = ewma(this.outBps, (this.outBytes - this.lastOutBytes) * 16);
    this.lastConns = this.conns;
    this.lastInPkts = this.inPkts;
    this.lastOutPkts = this.outPkts;
    this.lastInBytes = this.inBytes;
    this.lastOutBytes = this.outBytes;
  }

  stats(): Stats {
    return {
      conns: this.conns,
      inPkts: this.inPkts,
      outPkts: this.outPkts,
      inBytes: this.inBytes,
      outBytes: this.outBytes,
    };
  }

  /** Rates per second, rounded as ip_vs_read_estimator does. */
  rates(): Rates {
    return {
      cps: Math.floor((this.cps + 0x1ff) / 1024),
      inPps: Math.floor((this.inPps + 0x1ff) / 1024),
      outPps: Math.floor((this.outPps + 0x1ff) / 1024),
      inBps: Math.floor((this.inBps + 0xf) / 32),
      outBps: Math.floor((this.outBps + 0xf) / 32),
    };
  }

  /** ipvsadm -Z: counters and estimator restart from zero. */
  zero(): void {
    this.conns = this.inPkts = this.outPkts = this.inBytes = this.outBytes = 0;
    this.lastConns = this.lastInPkts = this.lastOutPkts = this.lastInBytes = this.lastOutBytes = 0;
    this.cps = this.inPps = this.outPps = this.inBps = this.outBps = 0;
  }
}
