/** A recording fake DataPlane (seesaw's dummy NCC): remembers ops and keeps a listener per service. */
import { destId, type ServiceKey, serviceId, type TableOp } from '../lb/types.js';
import { type DataPlane, type DataPlaneServiceSnapshot, type DataPlaneSnapshot, quietDestSnapshot } from './port.js';

export class MemoryDataPlane implements DataPlane {
  readonly applied: TableOp[] = [];
  stopped: { drainMs: number } | null = null;
  private readonly services = new Map<
    string,
    { key: ServiceKey; dests: Map<string, { address: string; port: number }> }
  >();

  async apply(ops: readonly TableOp[]): Promise<void> {
    for (const op of ops) {
      this.applied.push(op);
      switch (op.op) {
        case 'add-service':
          if (!this.services.has(serviceId(op.key)))
            this.services.set(serviceId(op.key), { key: op.key, dests: new Map() });
          break;
        case 'del-service':
          this.services.delete(serviceId(op.key));
          break;
        case 'add-dest':
        case 'edit-dest':
          this.services.get(serviceId(op.key))?.dests.set(destId(op.dest, op.key.family), op.dest);
          break;
        case 'del-dest':
          this.services.get(serviceId(op.key))?.dests.delete(destId(op.dest, op.key.family));
          break;
        case 'clear':
          this.services.clear();
          break;
        default:
          break;
      }
    }
  }

  snapshot(): DataPlaneSnapshot {
    const services: DataPlaneServiceSnapshot[] = [...this.services.entries()].map(([id, s]) => ({
      id,
      key: s.key,
      protocol: s.key.kind === 'addr' ? s.key.protocol : 'tcp',
      listener: 'listening',
      boundPort: s.key.kind === 'addr' ? s.key.port : 0,
      noDest: 0,
      connectFailures: 0,
      open: 0,
      dests: [...s.dests.entries()].map(([did, d]) => quietDestSnapshot(did, d)),
    }));
    return { kind: 'memory', workers: 1, services, diagnostics: [] };
  }

  async stop(drainMs: number): Promise<void> {
    this.stopped = { drainMs };
    this.services.clear();
  }
}
