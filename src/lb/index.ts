/** The lb module's public entry points. */
export { canonicalAddress, maskAddress, netmaskToPrefix, prefixToNetmask } from '../util/address.js';
export {
  type DesiredDest,
  type DesiredService,
  type DesiredTable,
  desiredTable,
  FORWARD_OF,
  granularityToPrefix,
  type HealthInput,
  liveWeight,
  quorumHeld,
  type RsHealth,
  realServerId,
  timeoutsOp,
  virtualServerId,
} from './desired.js';
export { type DiffOptions, diffTables, type TableState, tableStateOf } from './diff.js';
export { DEFAULT_SCHEDULER, SCHED_FLAGS, SCHEDULERS, schedulerNames } from './sched/index.js';
export { CONN_TAB_SIZE, type DroppedConns, Handle, LbTable, type LbTableOptions } from './table.js';
export { CONN_STATES, DEFAULT_TIMEOUTS, stateTimeoutSeconds } from './timeouts.js';
export * from './types.js';
