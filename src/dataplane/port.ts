/** What the daemon asks of a data plane: follow the table's changes, report, stop. */
import type { TableOp } from '../lb/types.js';

export interface ListenerSnapshot {
  readonly service: string;
  readonly state: 'listening' | 'waiting-for-address' | 'closed' | 'error';
  readonly detail?: string;
}

export interface DataPlaneSnapshot {
  readonly kind: string;
  readonly listeners: readonly ListenerSnapshot[];
  readonly openConnections: number;
  readonly noDestination: number;
  readonly connectFailures: number;
}

export interface DataPlane {
  /** Applies table operations (after the table itself accepted them). Idempotent. */
  apply(ops: readonly TableOp[]): Promise<void>;
  snapshot(): DataPlaneSnapshot;
  /** Closes listeners; open connections get `drainMs` to finish, then are cut. */
  stop(drainMs: number): Promise<void>;
}
