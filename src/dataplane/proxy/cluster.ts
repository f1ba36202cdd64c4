/**
 * Multi-core proxy, controller side. N proxy worker processes (ProxyProcesses: children of the
 * supervisor in the daemon, so that they outlive an LVS worker crash) each run a ProxyDataPlane
 * with their own replica of the table. This controller connects to each worker's Unix socket;
 * the worker answers `hello` with the table it already holds (none when new), and the owner's
 * `reconcile` gives the ops that turn that into the owner's table: a new worker gets everything,
 * a worker adopted by a new LVS worker gets only what changed, its connections and counters stay.
 * A worker whose socket closes (crash) is connected to again once its parent has forked it anew.
 * Listening: every worker binds its own SO_REUSEPORT + IP_FREEBIND socket, so the kernel spreads
 * new connections with no accept hand-off and no thundering herd. Without libc (koffi) there is
 * one worker. UDP services are bound by every worker with SO_REUSEPORT (the kernel keeps a flow on one
 * worker); without libc by worker 0 only, so all datagrams of a flow meet one process.
 * Shared view: every statsIntervalMs each worker sends its replica's snapshot (the counts of the
 * connections it forwarded) and its data plane's (listeners, failures) to the controller, which
 * keeps the latest per worker, and sends every worker the load held by the other workers
 * (setPeerLoad) so lc/wlc/sed/nq see connection counts of the whole director, at most about two
 * intervals old. The owner sums the replicas' counts once, with lb/merge (withReplicaCounters).
 */
import net from 'node:net';
import type { SharedPosition } from '../../lb/sched/types.js';
import {
  type ConnSnapshot,
  type DestSnapshot,
  type Endpoint,
  type ForwardingTable,
  type ServiceKey,
  type ServiceSnapshot,
  serviceId,
  type TableOp,
  type TableSnapshot,
} from '../../lb/types.js';
import type {
  DataPlane,
  DataPlaneDestSnapshot,
  DataPlaneOptions,
  DataPlaneServiceSnapshot,
  DataPlaneSnapshot,
  RuntimeDataPlaneOptions,
} from '../port.js';
import { FrameChannel } from './channel.js';
import { loadFreebind } from './freebind.js';
import { DEFAULT_WORKER_EXEC_ARGV, ProxyProcesses } from './processes.js';

/** What a worker's table replica must offer. */
export interface ReplicaTable extends ForwardingTable {
  apply(op: TableOp): unknown;
  /** connections to `dest` held by the other workers (optional: without it schedulers see local counts) */
  setPeerLoad?(key: ServiceKey, dest: Endpoint, active: number, inact: number): void;
  /**
   * the replica's own counters (Active/InAct/persistent, stats, rates): summed by the owner
   * (lb/merge) and the source of the other workers' peer loads; without it a worker's
   * connections are seen by its own schedulers only
   */
  snapshot?(): TableSnapshot;
  /** the replica's connection entries (ipvsadm -Lc) */
  connections?(): ConnSnapshot[];
  /** expire_nodest_conn changed (a reload, a new controller) */
  setExpireNodestConn?(on: boolean): void;
}

/** What the workers share, given to `createReplicaTable` beside the options. */
export interface ReplicaShared {
  /** rr/wrr positions shared by all workers, per service id (positions.ts) */
  readonly positions?: (serviceId: string) => SharedPosition | undefined;
}

export interface ClusterOptions extends DataPlaneOptions {
  /** proxy processes to fork when `sockets` is not given */
  readonly workers: number;
  /**
   * Unix sockets of proxy workers someone else forked (the supervisor): this data plane then only
   * controls them, and stop() leaves them running. Without it, it forks `workers` of its own.
   */
  readonly sockets?: readonly string[];
  /**
   * module (path or file URL) exporting `createReplicaTable(options: DataPlaneOptions, shared: ReplicaShared): ReplicaTable`,
   * imported by each worker; lb-replica.ts (LB_REPLICA_MODULE) builds lb's LbTable
   */
  readonly tableModule: string;
  /** default 250 ms */
  readonly statsIntervalMs?: number;
  /**
   * The ops that turn what a worker holds (`held`, null for a new worker) into the owner's table.
   * Called for every worker that connects after start(); reconcileAll() runs it for the first ones.
   * Without it, a worker forked again after a crash stays empty.
   */
  readonly reconcile?: (held: TableSnapshot | null) => readonly TableOp[];
  /** own workers only: default 1000 ms */
  readonly respawnDelayMs?: number;
  /** own workers only: a worker exited (before any respawn) */
  readonly onWorkerExit?: (index: number, code: number | null, signal: string | null) => void;
  /**
   * Node flags of own workers. Default `--max-semi-space-size=1`: a 1 MiB young generation keeps
   * an idle proxied connection near 4 KiB (the 16 MiB default holds about 3 KiB more of garbage
   * per connection) with no measured throughput cost (bench/dataplane.sh).
   */
  readonly workerExecArgv?: readonly string[];
  /** how long start() waits for each worker's socket, ms (default 10000) */
  readonly connectTimeoutMs?: number;
}

export { DEFAULT_WORKER_EXEC_ARGV };

export type PrimaryToWorker =
  | {
      readonly type: 'configure';
      readonly tableModule: string;
      readonly statsIntervalMs: number;
      readonly options: DataPlaneOptions;
    }
  | {
      readonly type: 'ops';
      readonly seq: number;
      readonly ops: readonly TableOp[];
      readonly bindPorts: [string, number][];
    }
  | { readonly type: 'peer-load'; readonly loads: PeerLoad[] }
  | { readonly type: 'list-connections'; readonly seq: number }
  | { readonly type: 'options'; readonly options: RuntimeDataPlaneOptions }
  | { readonly type: 'stop'; readonly drainMs: number };

export type WorkerToPrimary =
  | {
      readonly type: 'hello';
      readonly pid: number;
      /** configured by an earlier controller: `held` is its table, kept with its connections */
      readonly configured: boolean;
      readonly held: TableSnapshot | null;
      readonly bindPorts: [string, number][];
    }
  /** the configure sent at hello is in force (a kept worker: this controller's options apply) */
  | { readonly type: 'configured' }
  | { readonly type: 'applied'; readonly seq: number }
  | { readonly type: 'stats'; readonly snapshot: DataPlaneSnapshot; readonly table?: TableSnapshot }
  | { readonly type: 'connections'; readonly seq: number; readonly connections: ConnSnapshot[] }
  | { readonly type: 'stopped' };

export interface PeerLoad {
  readonly key: ServiceKey;
  readonly dest: Endpoint;
  readonly active: number;
  readonly inact: number;
}

/**
 * The load the workers other than `index` hold, per service and real server, from the counts
 * their table replicas reported (each replica's snapshot leaves out the peer load it was given).
 * Every real server worker `index` itself reported is listed, at 0 when no other worker holds
 * connections to it: a worker that died or a server the others dropped must not leave a stale
 * load behind.
 */
export function peerLoadsFor(index: number, tables: ReadonlyMap<number, TableSnapshot>): PeerLoad[] {
  const loads = new Map<string, { key: ServiceKey; dest: Endpoint; active: number; inact: number }>();
  const entry = (s: ServiceSnapshot, d: DestSnapshot) => {
    const k = `${s.id} ${d.id}`;
    let cur = loads.get(k);
    if (!cur) {
      cur = { key: s.key, dest: { address: d.address, port: d.port }, active: 0, inact: 0 };
      loads.set(k, cur);
    }
    return cur;
  };
  for (const s of tables.get(index)?.services ?? []) for (const d of s.dests) entry(s, d);
  for (const [id, table] of tables) {
    if (id === index) continue;
    for (const s of table.services)
      for (const d of s.dests) {
        const cur = entry(s, d);
        cur.active += d.activeConns;
        cur.inact += d.inactConns;
      }
  }
  return [...loads.values()];
}

type Channel = FrameChannel<WorkerToPrimary, PrimaryToWorker>;

/** The controller's side of one proxy worker. */
interface Link {
  readonly index: number;
  readonly path: string;
  channel?: Channel;
  pid?: number;
  /** what the worker said it held when it connected (before reconciliation) */
  held?: TableSnapshot | null;
  retry?: NodeJS.Timeout;
}

export class ClusterDataPlane implements DataPlane {
  private readonly links: Link[] = [];
  private readonly latest = new Map<number, DataPlaneSnapshot>();
  private readonly latestTables = new Map<number, TableSnapshot>();
  private readonly listings = new Map<string, (c: ConnSnapshot[]) => void>();
  private readonly waiters = new Map<string, () => void>();
  private readonly reserved = new Map<string, { fd: number; port: number }>();
  /** ports bound for port-0 services by workers of an earlier controller */
  private readonly adoptedPorts = new Map<string, number>();
  private readonly freebind = loadFreebind();
  private own: ProxyProcesses | undefined;
  private seq = 0;
  private restarts = 0;
  private started = false;
  private stopping = false;

  private constructor(private readonly options: ClusterOptions) {}

  /** options changed since start (setOptions): every configure carries them, to new workers too */
  private runtime: RuntimeDataPlaneOptions = {};

  /**
   * A reload changed expire_nodest_conn or the PROXY defaults: every worker takes them at once. A
   * worker configured by an earlier controller takes this controller's options at its hello too.
   */
  setOptions(options: RuntimeDataPlaneOptions): void {
    this.runtime = { ...this.runtime, ...options };
    for (const l of this.links) l.channel?.send({ type: 'options', options });
  }

  /**
   * Connects to the workers (forking them first without `sockets`); resolves once each has taken
   * this controller's configure, so that a kept worker runs with the new options from then on.
   */
  static async start(options: ClusterOptions): Promise<ClusterDataPlane> {
    const dp = new ClusterDataPlane(options);
    let sockets = options.sockets;
    if (!sockets) {
      dp.own = new ProxyProcesses({
        count: dp.freebind ? Math.max(1, options.workers) : 1,
        execArgv: options.workerExecArgv ?? DEFAULT_WORKER_EXEC_ARGV,
        respawn: options.reconcile !== undefined,
        respawnDelayMs: options.respawnDelayMs ?? 1000,
        onExit: (index, code, signal) => options.onWorkerExit?.(index, code, signal),
      });
      sockets = dp.own.sockets;
    }
    const hellos = sockets.map((path, index) => {
      const link: Link = { index, path };
      dp.links.push(link);
      const configured = dp.expect(`configured:${index}`);
      dp.connect(link);
      return Promise.race([configured, new Promise((r) => setTimeout(r, options.connectTimeoutMs ?? 10_000).unref())]);
    });
    await Promise.all(hellos);
    dp.started = true;
    return dp;
  }

  private connect(link: Link): void {
    if (this.stopping) return;
    const socket = net.connect(link.path);
    let ok = false;
    socket.once('connect', () => {
      ok = true;
    });
    const ch: Channel = new FrameChannel(
      socket,
      (m) => this.onMessage(link, m),
      () => {
        if (link.channel === ch) this.lost(link, ok);
        else if (!ok) this.retry(link);
      },
    );
    link.channel = ch;
  }

  private retry(link: Link): void {
    if (this.stopping || link.retry) return;
    link.retry = setTimeout(() => {
      link.retry = undefined;
      this.connect(link);
    }, 200);
    link.retry.unref();
  }

  /** The worker's socket closed: it died (its parent forks it again) or it never listened yet. */
  private lost(link: Link, wasConnected: boolean): void {
    link.channel = undefined;
    this.latest.delete(link.index);
    this.latestTables.delete(link.index);
    for (const [k, r] of [...this.listings]) if (k.startsWith(`${link.index}:`)) r([]);
    for (const k of [...this.waiters.keys()]) if (k.startsWith(`applied:${link.index}:`)) this.resolve(k);
    if (wasConnected && link.pid) this.restarts++;
    link.pid = undefined;
    this.retry(link);
  }

  /** workers that connected again after their first run (a crash, then a fork) */
  get restartCount(): number {
    return this.restarts;
  }

  private expect(key: string): Promise<void> {
    return new Promise((r) => this.waiters.set(key, r));
  }

  private resolve(key: string): void {
    const r = this.waiters.get(key);
    if (r) {
      this.waiters.delete(key);
      r();
    }
  }

  private bindPorts(): [string, number][] {
    return [...this.adoptedPorts, ...[...this.reserved].map(([id, r]): [string, number] => [id, r.port])];
  }

  private onMessage(link: Link, m: WorkerToPrimary): void {
    const ch = link.channel;
    if (!ch) return;
    if (m.type === 'hello') {
      link.pid = m.pid;
      link.held = m.configured ? m.held : null;
      for (const [id, port] of m.bindPorts) if (!this.reserved.has(id)) this.adoptedPorts.set(id, port);
      const {
        workers,
        sockets,
        tableModule,
        statsIntervalMs,
        reconcile,
        respawnDelayMs,
        onWorkerExit,
        workerExecArgv,
        connectTimeoutMs,
        ...options
      } = this.options;
      // every worker steers clients by source address over the whole group (steer.ts)
      ch.send({
        type: 'configure',
        tableModule,
        statsIntervalMs: statsIntervalMs ?? 250,
        options: { steerWorkers: this.links.length, ...options, ...this.runtime },
      });
      // workers met after start() are brought to the owner's table at once; the first ones by reconcileAll()
      if (this.started) this.reconcileLink(link);
    } else if (m.type === 'configured') this.resolve(`configured:${link.index}`);
    else if (m.type === 'applied') this.resolve(`applied:${link.index}:${m.seq}`);
    else if (m.type === 'stopped') this.resolve(`stopped:${link.index}`);
    else if (m.type === 'connections') this.listings.get(`${link.index}:${m.seq}`)?.(m.connections);
    else if (m.type === 'stats') {
      this.latest.set(link.index, m.snapshot);
      if (m.table) this.latestTables.set(link.index, m.table);
      ch.send({ type: 'peer-load', loads: peerLoadsFor(link.index, this.latestTables) }, true);
    }
  }

  private reconcileLink(link: Link): void {
    const ops = this.options.reconcile?.(link.held ?? null) ?? [];
    link.held = undefined;
    if (ops.length) link.channel?.send({ type: 'ops', seq: ++this.seq, ops, bindPorts: this.bindPorts() });
  }

  /**
   * The tables the workers held when this controller met them (null: a new worker); the first
   * non-null one is what a new LVS worker adopts as its own table before reconcileAll().
   */
  heldTables(): (TableSnapshot | null)[] {
    return this.links.map((l) => l.held ?? null);
  }

  /** Brings every worker met at start() to the owner's table (the `reconcile` ops for what it held). */
  reconcileAll(): void {
    for (const link of this.links) if (link.channel && link.held !== undefined) this.reconcileLink(link);
  }

  async apply(ops: readonly TableOp[]): Promise<void> {
    // port 0 (tests): reserve one port here so that every worker joins the same reuseport group
    for (const op of ops) {
      if (op.op === 'add-service' && op.key.kind === 'addr' && op.key.port === 0 && op.key.protocol !== 'sctp') {
        const id = serviceId(op.key);
        if (this.freebind && !this.reserved.has(id) && !this.adoptedPorts.has(id)) {
          const r = this.freebind.bind(op.key.protocol, op.key.address, 0);
          // a bound UDP socket would take its share of the datagrams: keep only the port number
          if (op.key.protocol === 'udp') {
            this.freebind.close(r.fd);
            this.reserved.set(id, { fd: -1, port: r.port });
          } else this.reserved.set(id, r);
        }
      }
    }
    const seq = ++this.seq;
    const bindPorts = this.bindPorts();
    const done = this.links.map((link) => {
      if (!link.channel?.connected) return Promise.resolve();
      const p = this.expect(`applied:${link.index}:${seq}`);
      link.channel.send({ type: 'ops', seq, ops, bindPorts });
      return p;
    });
    await Promise.all(done);
    for (const op of ops) {
      if (op.op === 'del-service' || op.op === 'clear') {
        for (const [id, r] of this.reserved)
          if (op.op === 'clear' || id === serviceId(op.key)) {
            if (r.fd >= 0) this.freebind?.close(r.fd);
            this.reserved.delete(id);
          }
        for (const id of [...this.adoptedPorts.keys()])
          if (op.op === 'clear' || id === serviceId(op.key)) this.adoptedPorts.delete(id);
      }
    }
  }

  /**
   * The whole director's listeners, limits and failures: per-worker snapshots summed by service
   * and destination. Connection and traffic counts are the replicas' (tableSnapshots(), summed
   * by lb/merge): the workers' data planes keep none.
   */
  snapshot(): DataPlaneSnapshot {
    const services = new Map<string, DataPlaneServiceSnapshot & { destMap: Map<string, DataPlaneDestSnapshot> }>();
    const diagnostics = [];
    for (const snap of this.latest.values()) {
      diagnostics.push(...snap.diagnostics);
      for (const s of snap.services) {
        let agg = services.get(s.id);
        if (!agg) {
          const { limits: _l, ...rest } = s;
          agg = { ...rest, noDest: 0, connectFailures: 0, open: 0, dests: [], destMap: new Map() };
          services.set(s.id, agg);
        }
        const a = agg as { -readonly [K in keyof DataPlaneServiceSnapshot]: DataPlaneServiceSnapshot[K] };
        a.noDest += s.noDest;
        a.connectFailures += s.connectFailures;
        if (s.limits) {
          const l = (a.limits ??= { fdExhausted: 0, udpFlowsDropped: 0, udpFlowsEvicted: 0 });
          l.fdExhausted += s.limits.fdExhausted;
          l.udpFlowsDropped += s.limits.udpFlowsDropped;
          l.udpFlowsEvicted += s.limits.udpFlowsEvicted;
        }
        a.open += s.open;
        if (s.listener !== 'listening') a.listener = s.listener;
        for (const d of s.dests) {
          const cur = agg.destMap.get(d.id);
          agg.destMap.set(d.id, cur ? { ...cur, connectFailures: cur.connectFailures + d.connectFailures } : d);
        }
      }
    }
    return {
      kind: 'proxy-cluster',
      workers: this.links.filter((l) => l.channel?.connected).length,
      services: [...services.values()].map(({ destMap, ...s }) => ({ ...s, dests: [...destMap.values()] })),
      diagnostics,
    };
  }

  /** The replicas' latest table snapshots (one per live worker), for the whole director's counters. */
  tableSnapshots(): TableSnapshot[] {
    return [...this.latestTables.values()];
  }

  /** Every worker's connection entries; a worker that does not answer within timeoutMs adds none. */
  async connections(timeoutMs = 1000): Promise<ConnSnapshot[]> {
    const seq = ++this.seq;
    const parts = this.links.map(
      (link) =>
        new Promise<ConnSnapshot[]>((resolve) => {
          if (!link.channel?.connected) return resolve([]);
          const key = `${link.index}:${seq}`;
          const done = (c: ConnSnapshot[]) => {
            clearTimeout(t);
            this.listings.delete(key);
            resolve(c);
          };
          const t = setTimeout(() => done([]), timeoutMs);
          this.listings.set(key, done);
          link.channel.send({ type: 'list-connections', seq });
        }),
    );
    return (await Promise.all(parts)).flat();
  }

  /** process ids of the workers, as they reported them (for benchmarks and supervision) */
  pids(): number[] {
    return this.links.map((l) => l.pid ?? 0).filter((p) => p > 0);
  }

  /**
   * Own workers: stopped with a drain. Workers of someone else (the supervisor's): only the
   * sockets close, the workers keep forwarding until their parent stops them.
   */
  async stop(drainMs: number): Promise<void> {
    this.stopping = true;
    for (const l of this.links) if (l.retry) clearTimeout(l.retry);
    if (this.own) await this.own.stop(drainMs);
    for (const l of this.links) l.channel?.close();
    for (const r of this.reserved.values()) if (r.fd >= 0) this.freebind?.close(r.fd);
    this.reserved.clear();
  }
}
