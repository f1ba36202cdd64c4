/** What a VRRP instance reports (the VRRP worker's snapshot; the API, dump and dashboard show it). */
import type { VrrpInstance } from '../config/model.js';
import type { VrrpStateName } from '../util/events.js';

/** One virtual_ipaddress (or _excluded) of an instance, with the device it goes on. */
export interface VipStatus {
  readonly address: string;
  readonly prefixLen: number;
  readonly dev?: string;
  readonly excluded: boolean;
}

export function vipStatuses(i: VrrpInstance): VipStatus[] {
  const one = (v: VrrpInstance['virtualIpaddresses'][number], excluded: boolean): VipStatus => ({
    address: v.address,
    prefixLen: v.prefixLen,
    ...((v.dev ?? i.interface) ? { dev: v.dev ?? i.interface } : {}),
    excluded,
  });
  return [...i.virtualIpaddresses.map((v) => one(v, false)), ...i.virtualIpaddressesExcluded.map((v) => one(v, true))];
}

export interface VrrpInstanceStatus {
  readonly name: string;
  readonly state: VrrpStateName;
  readonly vrid: number;
  readonly interface?: string;
  readonly priority: number;
  readonly effectivePriority: number;
  readonly masterAddress?: string;
  readonly vips: readonly string[];
  /** virtual_ipaddress and virtual_ipaddress_excluded entries with their device (metrics, dumps) */
  readonly addresses?: readonly VipStatus[];
  readonly lastTransitions: readonly { from: VrrpStateName; to: VrrpStateName; reason: string; at: number }[];
  readonly stats: Readonly<Record<string, number>>;
  /** why the instance is not running, when it is not */
  readonly note?: string;
}

/** A vrrp_script as the tracker sees it (track/track-manager.ts snapshot). */
export interface VrrpScriptStatus {
  readonly name: string;
  readonly status: 'OK' | 'FAILED' | 'INIT';
  readonly result: number;
  readonly running: boolean;
}
