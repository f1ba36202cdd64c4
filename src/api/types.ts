/** What the API, metrics and dashboard read: plain snapshots, no live references. */
import type { ConfigChange } from '../config/edit/edit.js';
import type { ApplyBody, ConfigState, PreviewBody, StoreError } from '../daemon/config-store.js';
import type { LvsSnapshot } from '../daemon/lvs-service.js';
import type { KeepvsEvent, VrrpStateName } from '../util/events.js';
import type { Result } from '../util/result.js';

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
  readonly lvs?: LvsSnapshot;
  readonly maintenance: boolean;
  /** the supervisor's own V8 heap in use, bytes */
  readonly heapUsed?: number;
}

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
}

/** The configuration editor (daemon/config-store.ts ConfigStore). */
export interface ConfigEditor {
  state(): Result<ConfigState, StoreError>;
  dryRun(change: ConfigChange): Result<PreviewBody, StoreError>;
  apply(change: ConfigChange, ifMatch: string | undefined, who: string): Result<ApplyBody, StoreError>;
  rollback(ifMatch: string | undefined, who: string, dryRun: boolean): Result<PreviewBody | ApplyBody, StoreError>;
}
