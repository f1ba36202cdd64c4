/**
 * The VRRP state machine of RFC 5798 §6.4 (and RFC 3768 §6.4 for v2) as keepalived runs it, as a
 * pure step function: step(state, event, now) -> { state, actions }. Timers are deadlines in the
 * state; the driver calls step with a `timer` event at nextDeadline(). Times are milliseconds.
 */
import ipaddr from 'ipaddr.js';
import type { VrrpStateName } from '../util/events.js';

export interface InstanceParams {
  readonly version: 2 | 3;
  /** configured priority 1..255 (255 = address owner) */
  readonly priority: number;
  /** Advertisement_Interval, ms */
  readonly advertIntMs: number;
  readonly preempt: boolean;
  readonly preemptDelayMs: number;
  /** keepalived: `state MASTER` with priority 255 starts as master at once */
  readonly initialMaster: boolean;
  /** this router's primary address (tie-break, RFC 5798 §6.4.3) */
  readonly primaryAddress: string;
  /** keepalived default 3 (down_timer_adverts) */
  readonly downTimerAdverts: number;
  /** keepalived's lower_prio_no_advert: a master stays silent on lower-priority adverts */
  readonly lowerPrioNoAdvert: boolean;
}

export interface InstanceState {
  readonly state: Exclude<VrrpStateName, 'STOP'>;
  /** priority after tracking (1..254, or 255 for an owner) */
  readonly effectivePriority: number;
  readonly fault: boolean;
  /** Master_Adver_Interval, ms (a v3 backup adopts the master's) */
  readonly masterAdverIntMs: number;
  readonly masterDownAt?: number;
  readonly adverAt?: number;
  readonly masterAddress?: string;
  /** when a lower-priority master was first seen (preempt_delay) */
  readonly lowerSeenAt?: number;
}

export type InstanceEvent =
  | { readonly type: 'startup' }
  | { readonly type: 'shutdown' }
  /** holdMaster: a sync-group member whose timer ran out waits for the others (keepalived's TSM) */
  | { readonly type: 'timer'; readonly holdMaster?: boolean }
  | { readonly type: 'advert'; readonly from: string; readonly priority: number; readonly advertIntMs: number }
  | { readonly type: 'priority'; readonly effective: number }
  | { readonly type: 'fault'; readonly on: boolean; readonly reason: string }
  /** vrrp_sync_group: another member moved, this one follows (keepalived's TSM) */
  | { readonly type: 'sync'; readonly to: 'MASTER' | 'BACKUP'; readonly reason: string };

export type InstanceAction =
  | { readonly type: 'send-advert'; readonly priority: number }
  /** a MASTER heard a lower-priority master: announce the VIPs again (GARP / unsolicited NA) */
  | { readonly type: 'reannounce' }
  | {
      readonly type: 'transition';
      readonly from: InstanceState['state'] | 'STOP';
      readonly to: VrrpStateName;
      readonly reason: string;
    };

export interface StepResult {
  readonly state: InstanceState;
  readonly actions: readonly InstanceAction[];
}

/** Skew_Time (RFC 5798 §6.1; RFC 3768 §6.1 for v2, in whole seconds of 256ths). */
export function skewMs(p: InstanceParams, priority: number, masterAdverIntMs: number): number {
  return p.version === 3 ? ((256 - priority) * masterAdverIntMs) / 256 : ((256 - priority) * 1000) / 256;
}

/** Master_Down_Interval = down_timer_adverts x Master_Adver_Interval + Skew_Time. */
export function masterDownMs(p: InstanceParams, priority: number, masterAdverIntMs: number): number {
  return p.downTimerAdverts * masterAdverIntMs + skewMs(p, priority, masterAdverIntMs);
}

export function initialState(p: InstanceParams): InstanceState {
  return { state: 'INIT', effectivePriority: p.priority, fault: false, masterAdverIntMs: p.advertIntMs };
}

export function nextDeadline(s: InstanceState): number | undefined {
  const ds = [s.masterDownAt, s.adverAt].filter((x): x is number => x !== undefined);
  return ds.length ? Math.min(...ds) : undefined;
}

const toBackup = (
  p: InstanceParams,
  s: InstanceState,
  now: number,
  reason: string,
  actions: InstanceAction[],
  masterAdverIntMs = s.masterAdverIntMs,
): InstanceState => {
  if (s.state !== 'BACKUP') actions.push({ type: 'transition', from: s.state, to: 'BACKUP', reason });
  return {
    ...s,
    state: 'BACKUP',
    masterAdverIntMs,
    masterDownAt: now + masterDownMs(p, s.effectivePriority, masterAdverIntMs),
    adverAt: undefined,
    lowerSeenAt: undefined,
  };
};

const toMaster = (
  p: InstanceParams,
  s: InstanceState,
  now: number,
  reason: string,
  actions: InstanceAction[],
): InstanceState => {
  actions.push({ type: 'send-advert', priority: s.effectivePriority });
  actions.push({ type: 'transition', from: s.state, to: 'MASTER', reason });
  return {
    ...s,
    state: 'MASTER',
    adverAt: now + p.advertIntMs,
    masterDownAt: undefined,
    masterAddress: p.primaryAddress,
    lowerSeenAt: undefined,
  };
};

/** RFC 5798 §6.4.3: the higher primary address wins a priority tie. */
function higherAddress(a: string, b: string): boolean {
  const x = ipaddr.parse(a).toByteArray();
  const y = ipaddr.parse(b).toByteArray();
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] > y[i];
  return false;
}

export function step(p: InstanceParams, s: InstanceState, e: InstanceEvent, now: number): StepResult {
  const actions: InstanceAction[] = [];
  switch (e.type) {
    case 'startup': {
      if (s.state !== 'INIT') return { state: s, actions };
      if (s.fault) {
        actions.push({ type: 'transition', from: 'INIT', to: 'FAULT', reason: 'tracking reports a fault at start-up' });
        return { state: { ...s, state: 'FAULT' }, actions };
      }
      // RFC 5798 §6.4.1: the address owner becomes master at once; keepalived also needs state MASTER
      if (p.priority === 255 && p.initialMaster)
        return { state: toMaster(p, s, now, 'address owner', actions), actions };
      return { state: toBackup(p, s, now, 'start-up', actions, p.advertIntMs), actions };
    }
    case 'shutdown': {
      // RFC 5798 §6.4.3: a master leaving sends an advert with priority 0
      if (s.state === 'MASTER') actions.push({ type: 'send-advert', priority: 0 });
      actions.push({ type: 'transition', from: s.state, to: 'STOP', reason: 'shutdown' });
      return { state: { ...s, state: 'INIT', adverAt: undefined, masterDownAt: undefined }, actions };
    }
    case 'timer': {
      if (s.state === 'BACKUP' && s.masterDownAt !== undefined && now >= s.masterDownAt) {
        if (e.holdMaster)
          return {
            state: { ...s, masterDownAt: now + masterDownMs(p, s.effectivePriority, s.masterAdverIntMs) },
            actions,
          };
        return { state: toMaster(p, s, now, 'master down timer expired', actions), actions };
      }
      if (s.state === 'MASTER' && s.adverAt !== undefined && now >= s.adverAt) {
        actions.push({ type: 'send-advert', priority: s.effectivePriority });
        return { state: { ...s, adverAt: now + p.advertIntMs }, actions };
      }
      return { state: s, actions };
    }
    case 'priority': {
      if (p.priority === 255) return { state: s, actions };
      return { state: { ...s, effectivePriority: Math.max(1, Math.min(254, e.effective)) }, actions };
    }
    case 'fault': {
      if (e.on && s.state !== 'FAULT') {
        if (s.state === 'MASTER') actions.push({ type: 'send-advert', priority: 0 });
        if (s.state !== 'INIT') actions.push({ type: 'transition', from: s.state, to: 'FAULT', reason: e.reason });
        return {
          state: {
            ...s,
            fault: true,
            state: s.state === 'INIT' ? 'INIT' : 'FAULT',
            adverAt: undefined,
            masterDownAt: undefined,
          },
          actions,
        };
      }
      if (!e.on && s.fault) {
        const cleared = { ...s, fault: false };
        if (s.state === 'FAULT')
          return { state: toBackup(p, cleared, now, `fault cleared (${e.reason})`, actions), actions };
        return { state: cleared, actions };
      }
      return { state: s, actions };
    }
    case 'sync': {
      if (e.to === 'MASTER' && s.state === 'BACKUP') return { state: toMaster(p, s, now, e.reason, actions), actions };
      if (e.to === 'BACKUP' && s.state === 'MASTER') return { state: toBackup(p, s, now, e.reason, actions), actions };
      return { state: s, actions };
    }
    case 'advert': {
      if (s.state === 'BACKUP') {
        if (e.priority === 0) {
          // §6.4.2: the master resigned: take over after Skew_Time only
          return { state: { ...s, masterDownAt: now + skewMs(p, s.effectivePriority, s.masterAdverIntMs) }, actions };
        }
        const lower = e.priority < s.effectivePriority;
        if (!p.preempt || !lower) {
          const adopted = p.version === 3 ? e.advertIntMs : s.masterAdverIntMs;
          return {
            state: {
              ...s,
              masterAddress: e.from,
              masterAdverIntMs: adopted,
              masterDownAt: now + masterDownMs(p, s.effectivePriority, adopted),
              lowerSeenAt: undefined,
            },
            actions,
          };
        }
        // a lower-priority master: keepalived's preempt_delay keeps accepting it for a while
        const since = s.lowerSeenAt ?? now;
        if (p.preemptDelayMs > 0 && now - since < p.preemptDelayMs) {
          return {
            state: {
              ...s,
              masterAddress: e.from,
              masterDownAt: now + masterDownMs(p, s.effectivePriority, s.masterAdverIntMs),
              lowerSeenAt: since,
            },
            actions,
          };
        }
        // discard it: the master down timer runs out and this router preempts
        return { state: { ...s, lowerSeenAt: since }, actions };
      }
      if (s.state === 'MASTER') {
        if (e.priority === 0) {
          actions.push({ type: 'send-advert', priority: s.effectivePriority });
          return { state: { ...s, adverAt: now + p.advertIntMs }, actions };
        }
        const wins =
          e.priority > s.effectivePriority ||
          (e.priority === s.effectivePriority && higherAddress(e.from, p.primaryAddress));
        if (wins) {
          // keepvs, beyond RFC 5798 §6.4.3 and keepalived (both step down silently): one last advert
          // at our priority. After a partition heals, the first advert across decides; when the
          // other's came first, it would never hear a lower-priority master and so never re-announce
          // (keepalived's garp_lower_prio_repeat), and neighbours would keep sending to us, without
          // the VIPs. lower_prio_no_advert (RFC-strict) keeps it silent.
          if (!p.lowerPrioNoAdvert) actions.push({ type: 'send-advert', priority: s.effectivePriority });
          const adopted = p.version === 3 ? e.advertIntMs : s.masterAdverIntMs;
          const next = toBackup(p, s, now, `higher priority advert from ${e.from}`, actions, adopted);
          return { state: { ...next, masterAddress: e.from }, actions };
        }
        // keepalived (before RFC 9568 strictness) answers a lower-priority master to force re-election
        if (!p.lowerPrioNoAdvert) actions.push({ type: 'send-advert', priority: s.effectivePriority });
        // and re-announces its addresses (keepalived's vrrp_state_master_rx, garp_lower_prio_repeat): after
        // a partition heals, neighbours may still send to the other master
        actions.push({ type: 'reannounce' });
        return { state: s, actions };
      }
      return { state: s, actions };
    }
  }
}
