/** The table replica each cluster worker builds (ClusterOptions.tableModule default): lb's LbTable. */
import { LbTable } from '../../lb/table.js';
import type { TableOp } from '../../lb/types.js';
import { SystemClock } from '../../util/clock.js';
import type { DataPlaneOptions } from '../port.js';
import type { ReplicaShared, ReplicaTable } from './cluster.js';

export const LB_REPLICA_MODULE = new URL('./lb-replica.js', import.meta.url).href;

export function createReplicaTable(options: DataPlaneOptions = {}, shared: ReplicaShared = {}): ReplicaTable {
  const table = new LbTable({
    clock: new SystemClock(),
    expireNodestConn: options.expireNodestConn === 'close',
    ...(shared.positions ? { positions: shared.positions } : {}),
  });
  return {
    open: (key, client) => table.open(key, client),
    apply: (op: TableOp) => table.apply(op),
    setPeerLoad: (key, dest, active, inact) => table.setPeerLoad(key, dest, active, inact),
    snapshot: () => table.snapshot(),
    connections: () => table.connections(),
    setExpireNodestConn: (on) => {
      table.expireNodestConn = on;
    },
  };
}
