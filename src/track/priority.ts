import type { Contribution } from './contribution.js';

/** VRRP priority of an address owner (RFC 5798 §5.2.4): trackers never change it. */
export const OWNER_PRIORITY = 255;

export interface TrackedItem {
  readonly kind: 'script' | 'file' | 'process' | 'interface';
  readonly name: string;
  /** undefined while the tracker has no result yet (a script that has not run) */
  readonly contribution: Contribution | undefined;
  /** weight-0 items with no result yet keep the instance out of service, as keepalived's INIT does */
  readonly blocksUntilKnown: boolean;
}

export interface PriorityResult {
  readonly effective: number;
  readonly fault: boolean;
  /** why the instance is in FAULT, or how the priority was derived */
  readonly reason: string;
  /**
   * true when the only reason for FAULT is a weight-0 script with no result yet: keepalived keeps
   * such an instance in INIT (not FAULT, no notify_fault) until the script has run once.
   */
  readonly initializing?: boolean;
}

/**
 * Effective priority per keepalived (vrrp.c vrrp_set_effective_priority): base + sum of tracker
 * deltas, clamped to 1..254; an owner (255) is never changed. Any FAULT item wins.
 */
export function computePriority(base: number, items: readonly TrackedItem[]): PriorityResult {
  const faults: string[] = [];
  let failed = 0;
  const adjustments: string[] = [];
  let total = 0;
  for (const item of items) {
    const c = item.contribution;
    if (c === undefined) {
      if (item.blocksUntilKnown) faults.push(`${item.kind} ${item.name} has no result yet`);
      continue;
    }
    if (c.fault) {
      failed++;
      faults.push(`${item.kind} ${item.name} failed`);
    } else if (c.delta !== 0) {
      total += c.delta;
      adjustments.push(`${item.kind} ${item.name} ${c.delta > 0 ? '+' : ''}${c.delta}`);
    }
  }
  let effective: number;
  if (base === OWNER_PRIORITY) effective = OWNER_PRIORITY;
  else effective = Math.min(OWNER_PRIORITY - 1, Math.max(1, base + total));
  if (faults.length > 0) {
    const reason = faults.join('; ');
    return failed === 0 ? { effective, fault: true, reason, initializing: true } : { effective, fault: true, reason };
  }
  const reason =
    base === OWNER_PRIORITY
      ? 'address owner: priority fixed at 255'
      : adjustments.length > 0
        ? `base ${base}, ${adjustments.join(', ')}`
        : `base ${base}`;
  return { effective, fault: false, reason };
}
