/** What a VRRP instance reports (the VRRP worker's snapshot; the API, dump and dashboard show it). */
import type { VrrpStateName } from '../util/events.js';

export interface VrrpInstanceStatus {
  readonly name: string;
  readonly state: VrrpStateName;
  readonly vrid: number;
  readonly interface?: string;
  readonly priority: number;
  readonly effectivePriority: number;
  readonly masterAddress?: string;
  readonly vips: readonly string[];
  readonly lastTransitions: readonly { from: VrrpStateName; to: VrrpStateName; reason: string; at: number }[];
  readonly stats: Readonly<Record<string, number>>;
  /** why the instance is not running, when it is not */
  readonly note?: string;
}
