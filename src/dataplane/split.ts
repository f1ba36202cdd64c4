/**
 * Two data planes behind one port: each service goes to the kernel plane unless `toProxy` says
 * the userspace proxy must serve it (a feature only the proxy has, such as the PROXY protocol
 * header). Table-wide ops (clear, zero, set-timeouts) reach both.
 */
import { type ServiceKey, serviceId, type TableOp } from '../lb/types.js';
import type { DataPlane, DataPlaneSnapshot } from './port.js';

export class SplitDataPlane implements DataPlane {
  constructor(
    readonly kernel: DataPlane,
    readonly proxy: DataPlane,
    private readonly toProxy: (key: ServiceKey) => boolean,
  ) {}

  async apply(ops: readonly TableOp[]): Promise<void> {
    const k: TableOp[] = [];
    const p: TableOp[] = [];
    for (const op of ops) {
      if ('key' in op && op.key) (this.toProxy(op.key) ? p : k).push(op);
      else {
        k.push(op);
        p.push(op);
      }
    }
    await Promise.all([k.length ? this.kernel.apply(k) : undefined, p.length ? this.proxy.apply(p) : undefined]);
  }

  /** The plane serving `key`. */
  planeOf(key: ServiceKey): DataPlane {
    return this.toProxy(key) ? this.proxy : this.kernel;
  }

  snapshot(): DataPlaneSnapshot {
    const a = this.kernel.snapshot();
    const b = this.proxy.snapshot();
    const proxied = b.services.filter((s) => this.toProxy(s.key));
    return {
      kind: proxied.length ? `${a.kind}+${b.kind}` : a.kind,
      workers: b.workers,
      services: [...a.services, ...proxied],
      diagnostics: [...a.diagnostics, ...b.diagnostics],
    };
  }

  async stop(drainMs: number): Promise<void> {
    await Promise.all([this.kernel.stop(drainMs), this.proxy.stop(drainMs)]);
  }
}

export { serviceId };
