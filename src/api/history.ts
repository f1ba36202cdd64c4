/**
 * Recent per-service rates for the dashboard's charts: one sample of every service's estimator
 * rates every interval, kept for a bit more than the 15 minutes the charts show, so a page opened
 * now has the last quarter hour at once.
 */
import type { DaemonStatus } from './types.js';

export interface ServiceRates {
  readonly cps: number;
  readonly inPps: number;
  readonly outPps: number;
  readonly inBps: number;
  readonly outBps: number;
  readonly activeConns: number;
}

export interface RateSample {
  /** wall-clock ms */
  readonly at: number;
  readonly services: Readonly<Record<string, ServiceRates>>;
}

export class RateHistory {
  private readonly ring: RateSample[] = [];
  constructor(
    readonly intervalMs = 5000,
    /** 20 minutes at the default interval */
    private readonly keep = 240,
  ) {}

  sample(status: DaemonStatus, at: number): void {
    const services: Record<string, ServiceRates> = {};
    for (const s of status.lvs?.table.services ?? []) {
      let active = 0;
      for (const d of s.dests) active += d.activeConns;
      services[s.id] = { ...s.rates, activeConns: active };
    }
    this.ring.push({ at, services });
    if (this.ring.length > this.keep) this.ring.shift();
  }

  samples(): readonly RateSample[] {
    return [...this.ring];
  }
}
