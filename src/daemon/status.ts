/**
 * The status contract: what the workers and the supervisor report and the API, metrics, dumps,
 * keepvsadm and the dashboard read. Plain data, JSON-serialisable, no live references. It lives
 * beside its producers (LvsService, the Supervisor; VRRP instances in vrrp/status.ts) so that
 * nothing below the daemon imports api/ or daemon/ for a type. The API's own contract (actions,
 * StatusSource, the config editor) is api/types.ts.
 */
import type { CheckManagerSnapshot } from '../check/check-manager.js';
import type { AnnounceState } from '../check/policy-announce.js';
import type { ControlStats } from '../control/server.js';
import type { DataPlaneSnapshot } from '../dataplane/port.js';
import type { TableSnapshot } from '../lb/types.js';
import type { VrrpInstanceStatus, VrrpScriptStatus } from '../vrrp/status.js';

export type { VrrpInstanceStatus, VrrpScriptStatus };

/** Health of one real server of one table service, as the API and dashboard show it. */
export interface RealServerHealth {
  readonly service: string;
  readonly dest: string;
  readonly up: boolean;
  readonly weight: number;
  readonly checkers: readonly {
    type: string;
    up: boolean;
    reason: string;
    /** last probe's duration (ms), when it has run */
    latencyMs?: number;
    /** wall-clock ms of the last result */
    lastAt?: number;
    consecutiveFailures: number;
  }[];
  /** wall-clock ms since which the real server has been up (or down), as this worker saw it */
  readonly since: number;
}

export interface LvsSnapshot {
  readonly table: TableSnapshot;
  readonly checks: { readonly servers: readonly RealServerHealth[]; readonly detail: CheckManagerSnapshot };
  readonly dataplane: DataPlaneSnapshot;
  /** keepvsadm control socket: clients, slow clients dropped, clients refused (the worker adds it) */
  readonly control?: ControlStats;
}

/** The BGP speaker keepvs drives and what it announces (docs/scale-out.md). */
export interface BgpStatus {
  readonly speaker: 'frr-bgpd';
  readonly dir: string;
  readonly running: boolean;
  /** why nothing is announced (FRR missing, failed to start, vtysh error), in the log's words */
  readonly error?: string;
  /** FRR's session states: Idle, Connect, Active, OpenSent, OpenConfirm, Established; BFD up/down */
  readonly neighbors: readonly { readonly address: string; readonly state: string; readonly bfd?: string }[];
  readonly vips: readonly AnnounceState[];
}

export interface WorkerStatus {
  readonly role: string;
  readonly pid?: number;
  readonly state: 'starting' | 'running' | 'restarting' | 'stopped';
  readonly restarts: number;
  readonly startedAt?: number;
  /** V8 heap in use (bytes) as the process last reported it, every 2 s */
  readonly heapUsed?: number;
}

export interface DaemonStatus {
  readonly version: string;
  readonly routerId?: string;
  readonly configFile: string;
  readonly startedAt: number;
  readonly workers: readonly WorkerStatus[];
  readonly vrrp: readonly VrrpInstanceStatus[];
  /** vrrp_script results (absent: no VRRP worker report yet) */
  readonly vrrpScripts?: readonly VrrpScriptStatus[];
  readonly lvs?: LvsSnapshot;
  readonly maintenance: boolean;
  /** active-active announcing (bgp_announce), when configured */
  readonly bgp?: BgpStatus;
  /** the supervisor's own V8 heap in use, bytes */
  readonly heapUsed?: number;
}
