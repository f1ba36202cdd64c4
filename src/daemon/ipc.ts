/** Messages between the supervisor and its workers (child_process IPC). */

import type { AdminAction, VrrpInstanceStatus } from '../api/types.js';
import type { Config } from '../config/model.js';
import type { ConnListing, ConnQuery } from '../lb/conn-list.js';
import type { VrrpRole } from '../lb/conn-sync.js';
import type { KeepvsEvent } from '../util/events.js';
import type { LogLevel } from '../util/logger.js';
import type { VrrpScriptStatus } from '../vrrp/status.js';
import type { OperatorSnapshot } from './lvs-service.js';
import type { DataplaneCliOptions } from './options.js';
import type { LvsSnapshot } from './status.js';

export type WorkerRole = 'lvs' | 'vrrp';

export interface WorkerInit {
  readonly role: WorkerRole;
  /**
   * The supervisor's last good configuration, resolved. Workers never re-read the file: a broken
   * edit on disk must not stop a worker that restarts after a crash (keepalived's children read
   * the parent's copy since 2.2.0).
   */
  readonly config: Config;
  readonly socket: string;
  readonly logDetail: boolean;
  /** syslog facility when the daemon logs to syslog (each worker then opens syslog with its ident) */
  readonly syslogFacility?: string;
  readonly dataplaneWorkers: number;
  readonly proxyOptions?: DataplaneCliOptions;
  /** the Unix sockets of the proxy workers the supervisor forked (LVS worker only) */
  readonly proxySockets?: readonly string[];
  /** operator changes (keepvsadm, API drains) the previous LVS worker reported */
  readonly operator?: OperatorSnapshot;
  /** the data plane the supervisor chose (--dataplane) */
  readonly dataplane: 'nft' | 'proxy';
}

export type ToWorker =
  | { readonly type: 'init'; readonly init: WorkerInit }
  | { readonly type: 'reload'; readonly config: Config }
  | { readonly type: 'stop'; readonly drainMs: number }
  | { readonly type: 'admin'; readonly id: number; readonly action: AdminAction }
  /** to the LVS worker: the API's connection list (answered by connections-result) */
  | { readonly type: 'connections'; readonly id: number; readonly query: ConnQuery }
  /** to the LVS worker: a state of a VRRP instance, for connection sync (answered by sync-role-done) */
  | { readonly type: 'sync-role'; readonly id: number; readonly instance: string; readonly role: VrrpRole }
  /** to the VRRP worker: the LVS worker's answer (MASTER: the peer's flows are committed) */
  | { readonly type: 'sync-role-done'; readonly id: number };

export type FromWorker =
  | { readonly type: 'ready' }
  /** `syslogged`: the worker sent it to syslog itself, under its own ident */
  | { readonly type: 'log'; readonly level: LogLevel; readonly message: string; readonly syslogged?: boolean }
  | { readonly type: 'event'; readonly event: KeepvsEvent }
  | { readonly type: 'lvs-snapshot'; readonly snapshot: LvsSnapshot }
  | {
      readonly type: 'vrrp-snapshot';
      readonly instances: readonly VrrpInstanceStatus[];
      readonly scripts?: readonly VrrpScriptStatus[];
    }
  | { readonly type: 'admin-result'; readonly id: number; readonly ok: boolean; readonly error?: string }
  | {
      readonly type: 'connections-result';
      readonly id: number;
      readonly listing?: ConnListing;
      readonly error?: string;
    }
  | { readonly type: 'operator-state'; readonly state: OperatorSnapshot }
  | { readonly type: 'memory'; readonly heapUsed: number }
  | { readonly type: 'fatal'; readonly message: string }
  /** from the VRRP worker: relayed to the LVS worker */
  | { readonly type: 'sync-role'; readonly id: number; readonly instance: string; readonly role: VrrpRole }
  /** from the LVS worker: relayed to the VRRP worker */
  | { readonly type: 'sync-role-done'; readonly id: number };
