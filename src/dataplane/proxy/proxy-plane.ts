/**
 * The userspace proxy data plane of one process: a TcpService or UdpService per virtual service,
 * one shared sweep timer for idle/connect timeouts, op handlers in a table (one per TableOp).
 * Multi-core operation wraps this in cluster.ts; a single process uses it directly.
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { type ForwardingTable, type ServiceParams, serviceId, type TableOp } from '../../lb/types.js';
import type {
  DataPlane,
  DataPlaneDestSnapshot,
  DataPlaneDiagnostic,
  DataPlaneOptions,
  DataPlaneServiceSnapshot,
  DataPlaneSnapshot,
  RuntimeDataPlaneOptions,
} from '../port.js';
import type { ProxyContext } from './context.js';
import type { ProxyDest } from './dest.js';
import { loadFreebind } from './freebind.js';
import { TcpService } from './tcp-service.js';
import { UdpService } from './udp.js';

type Service = TcpService | UdpService;

/**
 * Persistent services steer clients by their address under the persistence granularity (a
 * template's scope); the others spread connections over the workers (null, steer.ts).
 */
function steerPrefix(p: ServiceParams, family: 4 | 6): number | null {
  return p.persistentTimeout !== undefined ? (p.persistentPrefixLen ?? (family === 4 ? 32 : 128)) : null;
}

/** a limit (fds, UDP flows) is reported at most this often per service */
const LIMIT_REPORT_MS = 10_000;

/** A quarter of RLIMIT_NOFILE (soft), at most 16384: UDP flows must leave fds for TCP. */
function defaultMaxUdpFlows(): number {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = Number(line?.split(/\s{2,}/)[1]);
    if (Number.isFinite(soft) && soft > 0) return Math.max(16, Math.min(16384, Math.floor(soft / 4)));
  } catch {
    // not Linux: keep the cap
  }
  return 4096;
}

export interface ProxyDataPlaneOptions extends DataPlaneOptions {
  /** bind VIPs not (yet) local through IP_FREEBIND (default true; falls back to bind-retry) */
  readonly freebind?: boolean;
  /** ports to bind instead of key.port (cluster primary resolving port 0) */
  readonly bindPorts?: ReadonlyMap<string, number>;
  /** default true; a cluster leaves UDP to one worker */
  readonly udp?: boolean;
}

type OpHandler<K extends TableOp['op']> = (dp: ProxyDataPlane, op: Extract<TableOp, { op: K }>) => Promise<void> | void;

const OP_HANDLERS: { [K in TableOp['op']]: OpHandler<K> } = {
  'add-service': (dp, op) => dp.addService(op),
  'edit-service': (dp, op) => {
    const s = dp.services.get(serviceId(op.key));
    if (s instanceof UdpService) s.ops = op.params.ops;
    else s?.setProxyProtocol(op.params.proxyProtocol);
    s?.steerBy(steerPrefix(op.params, op.key.family));
  },
  'del-service': (dp, op) => dp.deleteService(serviceId(op.key)),
  'add-dest': (dp, op) => {
    dp.services.get(serviceId(op.key))?.dests.back(op.dest);
    dp.checkForward(op);
  },
  'edit-dest': (dp, op) => dp.checkForward(op),
  'del-dest': (dp, op) => {
    dp.services.get(serviceId(op.key))?.dests.forget(op.dest, dp.expireNodest === 'close');
  },
  clear: async (dp) => {
    await Promise.all([...dp.services.keys()].map((id) => dp.deleteService(id)));
  },
  zero: (dp, op) => {
    for (const s of dp.services.values()) if (!op.key || s.id === serviceId(op.key)) s.zero();
  },
  // timeouts live in the table: ConnHandle.idleTimeoutMs() reads them on every sweep
  'set-timeouts': () => {},
};

export class ProxyDataPlane implements DataPlane {
  readonly services = new Map<string, Service>();
  private readonly draining = new Set<Service>();
  private readonly diagnostics: DataPlaneDiagnostic[] = [];
  expireNodest: 'close' | 'keep';
  private proxyProtocol: Readonly<Record<string, 'v1' | 'v2'>>;
  private readonly drainMs: number;
  private readonly ctx: ProxyContext;
  private readonly sweepTimer: NodeJS.Timeout;

  constructor(table: ForwardingTable, options: ProxyDataPlaneOptions = {}) {
    this.expireNodest = options.expireNodestConn ?? 'keep';
    this.drainMs = options.drainMs ?? 2000;
    this.proxyProtocol = options.proxyProtocol ?? {};
    const ports = options.bindPorts;
    this.ctx = {
      table,
      now: performance.now(),
      connectTimeoutMs: options.connectTimeoutMs ?? 5000,
      bindRetryMs: options.bindRetryMs ?? 1000,
      freebind: options.freebind === false ? null : loadFreebind(),
      bindPort: (id, port) => ports?.get(id) ?? port,
      proxyProtocol: (id) => this.proxyProtocol[id] ?? this.proxyProtocol['*'],
      diagnostic: (code, service, message) => this.diagnose(code, service, message),
      udpEnabled: options.udp ?? true,
      maxUdpFlows: options.maxUdpFlows ?? defaultMaxUdpFlows(),
      steerWorkers: options.steerWorkers ?? 1,
      udpFlows: 0,
      limitHit: (service, code, message) => this.limitHit(service, code, message),
    };
    this.sweepTimer = setInterval(() => this.sweep(), options.sweepMs ?? 1000);
    this.sweepTimer.unref();
  }

  /** A reload or a new controller: expire_nodest_conn from the next del-dest on, PROXY headers for new connections. */
  setOptions(options: RuntimeDataPlaneOptions): void {
    if (options.expireNodestConn) this.expireNodest = options.expireNodestConn;
    if (options.proxyProtocol) {
      this.proxyProtocol = options.proxyProtocol;
      for (const s of this.services.values()) if (s instanceof TcpService) s.refreshProxyProtocol();
    }
  }

  /** service + code -> when it was last reported: a limit is logged once per LIMIT_REPORT_MS */
  private readonly limitReported = new Map<string, number>();

  private limitHit(service: string, code: string, message: string): void {
    const key = `${service} ${code}`;
    const now = performance.now();
    const last = this.limitReported.get(key);
    if (last !== undefined && now - last < LIMIT_REPORT_MS) return;
    this.limitReported.set(key, now);
    this.diagnose(code, service, message);
  }

  private diagnose(code: string, service: string, message: string): void {
    this.diagnostics.push({ code, service, message });
    if (this.diagnostics.length > 100) this.diagnostics.shift();
  }

  private sweep(): void {
    const now = performance.now();
    this.ctx.now = now;
    for (const s of this.services.values()) s.sweep(now);
    for (const s of this.draining) s.sweep(now);
  }

  async apply(ops: readonly TableOp[]): Promise<void> {
    this.ctx.now = performance.now();
    for (const op of ops) await (OP_HANDLERS[op.op] as OpHandler<typeof op.op>)(this, op as never);
  }

  addService(op: Extract<TableOp, { op: 'add-service' }>): void {
    const id = serviceId(op.key);
    if (this.services.has(id)) return; // replays are harmless
    const key = op.key;
    if (key.kind === 'fwmark') {
      this.diagnose('DP_UNSUPPORTED_FWMARK', id, 'fwmark services need the kernel (nft) data plane');
      return;
    }
    if (key.port === 0 && op.params.persistentTimeout !== undefined) {
      // IPVS's port-0 persistent service forwards every port of the address: no single listener does that
      // (a non-persistent port 0 never comes from the table, which refuses it; tests use it for an ephemeral port)
      this.diagnose(
        'DP_UNSUPPORTED_ALL_PORTS',
        id,
        'a port-0 service takes every port of its address, which needs the kernel (nft) data plane; the userspace proxy does not listen on a random port instead',
      );
      return;
    }
    if (key.protocol === 'sctp') {
      this.diagnose('DP_UNSUPPORTED_PROTOCOL', id, 'SCTP is not proxied in userspace');
      return;
    }
    let s: Service;
    if (key.protocol === 'tcp') {
      s = new TcpService(this.ctx, key);
      s.setProxyProtocol(op.params.proxyProtocol);
    } else {
      if (!this.ctx.udpEnabled) return;
      s = new UdpService(this.ctx, key, op.params.ops);
    }
    this.services.set(id, s);
    s.steerBy(steerPrefix(op.params, key.family));
    s.listen();
  }

  checkForward(op: Extract<TableOp, { op: 'add-dest' | 'edit-dest' }>): void {
    const s = this.services.get(serviceId(op.key));
    if (!s) return;
    s.dests.of(op.dest);
    if (op.params.forward !== 'masq' && op.params.forward !== 'fullnat') {
      this.diagnose(
        'DP_UNSUPPORTED_FORWARD',
        s.id,
        `${op.params.forward} forwarding needs the kernel; the userspace proxy forwards ${op.dest.address}:${op.dest.port} with full NAT`,
      );
    }
  }

  async deleteService(id: string): Promise<void> {
    const s = this.services.get(id);
    if (!s) return;
    this.services.delete(id);
    this.draining.add(s);
    await s.close(this.drainMs);
    this.draining.delete(s);
  }

  snapshot(): DataPlaneSnapshot {
    const services: DataPlaneServiceSnapshot[] = [];
    for (const s of [...this.services.values(), ...this.draining]) services.push(serviceSnapshot(s));
    return { kind: 'proxy', workers: 1, services, diagnostics: [...this.diagnostics] };
  }

  async stop(drainMs: number): Promise<void> {
    clearInterval(this.sweepTimer);
    const all = [...this.services.values()];
    this.services.clear();
    const t = setInterval(() => this.sweep(), 100);
    try {
      await Promise.all([...all.map((s) => s.close(drainMs))]);
      await Promise.all([...this.draining].map((s) => s.close(0)));
    } finally {
      clearInterval(t);
    }
  }
}

/** What only the proxy knows of a real server; its connection and traffic counts are the table's. */
function destSnapshot(d: ProxyDest): DataPlaneDestSnapshot {
  return { id: d.id, address: d.endpoint.address, port: d.endpoint.port, connectFailures: d.connectFailures };
}

function serviceSnapshot(s: Service): DataPlaneServiceSnapshot {
  return {
    id: s.id,
    key: s.key,
    protocol: s.key.protocol,
    listener: s.listener,
    boundPort: s.boundPort,
    ...(s.error ? { error: s.error } : {}),
    noDest: s.noDest,
    connectFailures: s.connectFailures,
    open: s.conns.size,
    dests: [...s.dests.values()].map(destSnapshot),
    ...(s.limits.fdExhausted || s.limits.udpFlowsDropped || s.limits.udpFlowsEvicted
      ? { limits: { ...s.limits } }
      : {}),
  };
}
