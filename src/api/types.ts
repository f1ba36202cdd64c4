/**
 * The API's contract: the actions it accepts, the StatusSource and the config editor the supervisor
 * gives it. The status data it serves is daemon/status.ts (and vrrp/status.ts), re-exported here.
 */
import type { ConfigChange } from '../config/edit/edit.js';
import type { ApplyBody, ConfigState, PreviewBody, StoreError } from '../daemon/config-store.js';
import type { DaemonStatus } from '../daemon/status.js';
import type { ConnListing, ConnQuery } from '../lb/conn-list.js';
import type { KeepvsEvent } from '../util/events.js';
import type { Result } from '../util/result.js';

export type { DaemonStatus, LvsSnapshot, RealServerHealth, WorkerStatus } from '../daemon/status.js';
export type { VrrpInstanceStatus } from '../vrrp/status.js';

export type AdminAction =
  | { readonly action: 'drain'; readonly service: string; readonly dest: string }
  | { readonly action: 'restore'; readonly service: string; readonly dest: string }
  | { readonly action: 'weight'; readonly service: string; readonly dest: string; readonly weight: number }
  | { readonly action: 'maintenance'; readonly on: boolean }
  /** SIGHUP's reload; `force` overrides the typo'd-block guard (docs/config.md, "Reload guard") */
  | { readonly action: 'reload'; readonly force: boolean };

export interface StatusSource {
  status(): DaemonStatus;
  events(): readonly KeepvsEvent[];
  subscribe(listener: (e: KeepvsEvent) => void): () => void;
  act(action: AdminAction): Promise<{ ok: boolean; error?: string }>;
  /** the connection list (`keepvsadm -Lnc`'s entries), filtered; absent: the route answers 503 */
  connections?(query: ConnQuery): Promise<Result<ConnListing, string>>;
}

/** The configuration editor (daemon/config-store.ts ConfigStore). */
export interface ConfigEditor {
  state(): Result<ConfigState, StoreError>;
  dryRun(change: ConfigChange): Result<PreviewBody, StoreError>;
  apply(change: ConfigChange, ifMatch: string | undefined, who: string): Result<ApplyBody, StoreError>;
  rollback(ifMatch: string | undefined, who: string, dryRun: boolean): Result<PreviewBody | ApplyBody, StoreError>;
}
