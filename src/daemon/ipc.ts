/** Messages between the supervisor and its workers (child_process IPC). */
import type { AdminAction, VrrpInstanceStatus } from '../api/types.js';
import type { KeepvsEvent } from '../util/events.js';
import type { LogLevel } from '../util/logger.js';
import type { LvsSnapshot } from './lvs-service.js';

export type WorkerRole = 'lvs' | 'vrrp';

export interface WorkerInit {
  readonly role: WorkerRole;
  readonly configFile: string;
  readonly configId: string;
  readonly socket: string;
  readonly logDetail: boolean;
  readonly dataplaneWorkers: number;
}

export type ToWorker =
  | { readonly type: 'init'; readonly init: WorkerInit }
  | { readonly type: 'reload' }
  | { readonly type: 'stop'; readonly drainMs: number }
  | { readonly type: 'admin'; readonly id: number; readonly action: AdminAction };

export type FromWorker =
  | { readonly type: 'ready' }
  | { readonly type: 'log'; readonly level: LogLevel; readonly message: string }
  | { readonly type: 'event'; readonly event: KeepvsEvent }
  | { readonly type: 'lvs-snapshot'; readonly snapshot: LvsSnapshot }
  | { readonly type: 'vrrp-snapshot'; readonly instances: readonly VrrpInstanceStatus[] }
  | { readonly type: 'admin-result'; readonly id: number; readonly ok: boolean; readonly error?: string }
  | { readonly type: 'fatal'; readonly message: string };
