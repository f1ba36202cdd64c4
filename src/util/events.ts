/**
 * Events published by the subsystems (VRRP, checkers, table, daemon) and consumed by logs,
 * notify scripts, mail, the API event stream, metrics and the dashboard.
 * `at` is wall-clock epoch milliseconds (from Clock.wallNow()).
 */
export type VrrpStateName = 'INIT' | 'BACKUP' | 'MASTER' | 'FAULT' | 'STOP';

export type KeepvsEvent =
  | {
      readonly type: 'vrrp-state';
      readonly instance: string;
      readonly from: VrrpStateName;
      readonly to: VrrpStateName;
      readonly priority: number;
      readonly reason: string;
      readonly at: number;
    }
  | {
      readonly type: 'vrrp-priority';
      readonly instance: string;
      readonly basePriority: number;
      readonly effectivePriority: number;
      readonly reason: string;
      readonly at: number;
    }
  | {
      readonly type: 'sync-group-state';
      readonly group: string;
      readonly from: VrrpStateName;
      readonly to: VrrpStateName;
      readonly at: number;
    }
  | {
      /** a real server changed health (all its checkers considered) */
      readonly type: 'rs-health';
      /** service id (lb/types serviceId) */
      readonly service: string;
      /** destination id `addr:port` */
      readonly dest: string;
      readonly up: boolean;
      readonly reason: string;
      readonly at: number;
    }
  | {
      readonly type: 'rs-weight';
      readonly service: string;
      readonly dest: string;
      readonly weight: number;
      readonly reason: string;
      readonly at: number;
    }
  | {
      readonly type: 'vs-quorum';
      readonly service: string;
      readonly up: boolean;
      readonly at: number;
    }
  | {
      readonly type: 'config-reload';
      readonly ok: boolean;
      readonly message: string;
      readonly at: number;
    }
  | {
      /** the audit trail of configuration changes made through the API or dashboard */
      readonly type: 'config-change';
      /** name of the API token used */
      readonly who: string;
      readonly action: 'apply' | 'rollback';
      readonly summary: string;
      readonly version: string;
      readonly previousVersion: string;
      readonly reloadOk: boolean;
      readonly message: string;
      readonly at: number;
    }
  | {
      readonly type: 'admin';
      readonly action: string;
      readonly target: string;
      readonly detail: string;
      readonly at: number;
    };

export interface EventSink {
  emit(event: KeepvsEvent): void;
}

/** In-process fan-out with a bounded history, for the daemon and tests. */
export class EventBus implements EventSink {
  private readonly listeners = new Set<(e: KeepvsEvent) => void>();
  private readonly history: KeepvsEvent[] = [];
  constructor(private readonly keep = 500) {}

  emit(event: KeepvsEvent): void {
    this.history.push(event);
    if (this.history.length > this.keep) this.history.shift();
    for (const l of this.listeners) {
      try {
        l(event);
      } catch {
        // a faulty listener must not stop the others
      }
    }
  }
  subscribe(listener: (e: KeepvsEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  recent(): readonly KeepvsEvent[] {
    return [...this.history];
  }
}
