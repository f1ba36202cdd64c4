/**
 * Whether this director announces each VIP to its routers (BGP, active-active behind ECMP;
 * docs/scale-out.md). The one owner of that decision: the routing-daemon driver (os/frr-bgp.ts)
 * only applies the set this returns.
 *
 * A VIP is announced while the director is healthy for it: the data plane is up, the director is
 * not in maintenance, and every announced virtual server on that address has quorum and at least
 * `minHealthy` real servers healthy in the pool. A withdrawal is immediate (a director that cannot
 * serve must stop attracting flows). Announcing again waits until the VIP has been healthy for the
 * hold-down time; the hold-down doubles for each withdrawal that follows a short announcement
 * (flapping) up to `holdDownMaxMs`, and falls back to `holdDownMs` after an announcement that
 * lasted `holdDownMaxMs`. The first announcement after start waits for nothing but health.
 * Pure: the clock comes in, no I/O.
 */
import type { Clock } from '../util/clock.js';

export interface AnnounceRule {
  /** the prefix announced: the VIP as /32 or /128 */
  readonly prefix: string;
  /** the virtual servers on that address that take part (service ids) */
  readonly services: readonly { readonly id: string; readonly minHealthy: number }[];
}

export interface AnnounceTimers {
  readonly holdDownMs: number;
  readonly holdDownMaxMs: number;
}

export interface ServiceHealthView {
  readonly quorumUp: boolean;
  /** real servers up and in the pool */
  readonly healthy: number;
}

export interface AnnounceInput {
  readonly dataPlaneUp: boolean;
  readonly maintenance: boolean;
  /** by service id; a missing service counts as unhealthy */
  readonly services: Readonly<Record<string, ServiceHealthView>>;
}

export interface AnnounceState {
  readonly prefix: string;
  readonly announced: boolean;
  /** why it is (not) announced, as shown in the log, API and dashboard */
  readonly reason: string;
  /** the hold-down a re-announcement must wait for now */
  readonly holdDownMs: number;
  /**
   * how much of it is left: 0 while announced or before the first announcement, the whole hold-down
   * while unhealthy (it starts when the VIP is healthy again), the rest while healthy and held down
   */
  readonly holdDownRemainingMs: number;
  readonly withdrawals: number;
}

export interface AnnounceChange {
  readonly prefix: string;
  readonly announce: boolean;
  readonly reason: string;
}

interface VipState {
  announced: boolean;
  everAnnounced: boolean;
  healthySince: number | null;
  announcedAt: number;
  holdMs: number;
  withdrawals: number;
  reason: string;
}

export class AnnouncePolicy {
  private readonly vips = new Map<string, VipState>();
  private rules: readonly AnnounceRule[] = [];

  constructor(
    private readonly clock: Pick<Clock, 'now'>,
    private timers: AnnounceTimers,
    rules: readonly AnnounceRule[] = [],
  ) {
    this.configure(rules, timers);
  }

  /** New rules (reload): unchanged prefixes keep their state; removed ones are forgotten (withdrawn by the caller's diff). */
  configure(rules: readonly AnnounceRule[], timers: AnnounceTimers = this.timers): void {
    this.rules = rules;
    this.timers = timers;
    const keep = new Set(rules.map((r) => r.prefix));
    for (const p of [...this.vips.keys()]) if (!keep.has(p)) this.vips.delete(p);
    for (const r of rules)
      if (!this.vips.has(r.prefix))
        this.vips.set(r.prefix, {
          announced: false,
          everAnnounced: false,
          healthySince: null,
          announcedAt: 0,
          holdMs: timers.holdDownMs,
          withdrawals: 0,
          reason: 'not evaluated yet',
        });
  }

  /** Why a VIP is unhealthy, or null when it is healthy. */
  private unhealthy(rule: AnnounceRule, input: AnnounceInput): string | null {
    if (!input.dataPlaneUp) return 'data plane down';
    if (input.maintenance) return 'maintenance';
    for (const s of rule.services) {
      const h = input.services[s.id];
      if (!h) return `${s.id}: no health yet`;
      if (!h.quorumUp) return `${s.id}: quorum lost`;
      if (h.healthy < s.minHealthy) return `${s.id}: ${h.healthy} real servers healthy, needs ${s.minHealthy}`;
    }
    return null;
  }

  /** One evaluation: the changes to apply now (withdrawals first). */
  step(input: AnnounceInput): AnnounceChange[] {
    const now = this.clock.now();
    const changes: AnnounceChange[] = [];
    for (const rule of this.rules) {
      const v = this.vips.get(rule.prefix);
      if (!v) continue;
      const why = this.unhealthy(rule, input);
      if (why !== null) {
        v.healthySince = null;
        if (v.announced) {
          v.announced = false;
          v.withdrawals++;
          // a short announcement before this withdrawal is a flap: the next hold-down is longer
          const lasted = now - v.announcedAt;
          v.holdMs =
            lasted < this.timers.holdDownMaxMs
              ? Math.min(this.timers.holdDownMaxMs, Math.max(this.timers.holdDownMs, v.holdMs * 2))
              : this.timers.holdDownMs;
          changes.push({ prefix: rule.prefix, announce: false, reason: why });
        }
        v.reason = why;
        continue;
      }
      if (v.announced) continue;
      v.healthySince ??= now;
      const waited = now - v.healthySince;
      // the first announcement after start: no hold-down, only health
      const hold = v.everAnnounced ? v.holdMs : 0;
      if (waited >= hold) {
        v.announced = true;
        v.everAnnounced = true;
        v.announcedAt = now;
        v.reason = 'healthy';
        changes.push({ prefix: rule.prefix, announce: true, reason: 'healthy' });
      } else {
        v.reason = `held down: healthy for ${Math.floor(waited / 1000)} of ${Math.ceil(hold / 1000)} s after ${v.withdrawals} withdrawal(s)`;
      }
    }
    return changes.sort((a, b) => Number(a.announce) - Number(b.announce));
  }

  /** The prefixes announced now. */
  announced(): string[] {
    return [...this.vips].filter(([, v]) => v.announced).map(([p]) => p);
  }

  /** When the next step may change something without new input (a hold-down ending), or null. */
  nextDeadline(): number | null {
    let next: number | null = null;
    for (const v of this.vips.values())
      if (!v.announced && v.healthySince !== null && v.everAnnounced) {
        const t = v.healthySince + v.holdMs;
        if (next === null || t < next) next = t;
      }
    return next;
  }

  snapshot(): AnnounceState[] {
    const now = this.clock.now();
    const remaining = (v: VipState): number => {
      if (v.announced || !v.everAnnounced) return 0;
      if (v.healthySince === null) return v.holdMs;
      return Math.max(0, v.healthySince + v.holdMs - now);
    };
    return [...this.vips].map(([prefix, v]) => ({
      prefix,
      announced: v.announced,
      reason: v.reason,
      holdDownMs: v.holdMs,
      holdDownRemainingMs: remaining(v),
      withdrawals: v.withdrawals,
    }));
  }
}
