/**
 * Multi-core proxy. The primary (the daemon) forks N workers; each worker runs a ProxyDataPlane
 * with its own replica of the table, built by replaying the same TableOps the primary receives.
 * Listening: every worker binds its own SO_REUSEPORT + IP_FREEBIND socket, so the kernel spreads
 * new connections with no accept hand-off and no thundering herd (better than the cluster module's
 * shared handle, even with SCHED_NONE). Workers are plain child processes: Node's cluster workers
 * cannot listen on an inherited fd themselves. Without libc (koffi) there is one worker.
 * UDP services are bound by worker 0 only, so all datagrams of a flow meet one process.
 * Shared view: every statsIntervalMs each worker sends its per-destination counts to the primary;
 * the primary keeps the latest per worker, sums them for snapshot(), and sends every worker the
 * load held by the other workers (setPeerLoad) so lc/wlc/sed/nq see connection counts of the
 * whole director, at most about two intervals old.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  type ConnSnapshot,
  type Endpoint,
  type ForwardingTable,
  type ServiceKey,
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
} from '../port.js';
import { loadFreebind } from './freebind.js';

/** What a worker's table replica must offer. */
export interface ReplicaTable extends ForwardingTable {
  apply(op: TableOp): unknown;
  /** connections to `dest` held by the other workers (optional: without it schedulers see local counts) */
  setPeerLoad?(key: ServiceKey, dest: Endpoint, active: number, inact: number): void;
  /** the replica's own counters (Active/InAct/persistent, stats, rates), summed by the primary */
  snapshot?(): TableSnapshot;
  /** the replica's connection entries (ipvsadm -Lc) */
  connections?(): ConnSnapshot[];
}

export interface ClusterOptions extends DataPlaneOptions {
  readonly workers: number;
  /**
   * module (path or file URL) exporting `createReplicaTable(options: DataPlaneOptions): ReplicaTable`,
   * imported by each worker; lb-replica.ts (LB_REPLICA_MODULE) builds lb's LbTable
   */
  readonly tableModule: string;
  /** default 250 ms */
  readonly statsIntervalMs?: number;
  /**
   * The ops that rebuild a replica from nothing (the owner's current table). When given, a worker
   * that dies is forked again after respawnDelayMs and fed these, so a crash costs one worker's
   * connections, not its share of the listening capacity for good.
   */
  readonly replay?: () => readonly TableOp[];
  /** default 1000 ms */
  readonly respawnDelayMs?: number;
  /** a worker exited outside stop() (before any respawn) */
  readonly onWorkerExit?: (index: number, code: number | null, signal: string | null) => void;
  /**
   * Node flags of the workers. Default `--max-semi-space-size=1`: a 1 MiB young generation keeps
   * an idle proxied connection near 4 KiB (the 16 MiB default holds about 3 KiB more of garbage
   * per connection) with no measured throughput cost (bench/dataplane.sh).
   */
  readonly workerExecArgv?: readonly string[];
}

export const DEFAULT_WORKER_EXEC_ARGV: readonly string[] = ['--max-semi-space-size=1'];

export type PrimaryToWorker =
  | {
      readonly type: 'ops';
      readonly seq: number;
      readonly ops: readonly TableOp[];
      readonly bindPorts: [string, number][];
    }
  | { readonly type: 'peer-load'; readonly loads: PeerLoad[] }
  | { readonly type: 'list-connections'; readonly seq: number }
  | { readonly type: 'stop'; readonly drainMs: number };

export type WorkerToPrimary =
  | { readonly type: 'ready' }
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

export interface WorkerConfig {
  readonly index: number;
  readonly tableModule: string;
  readonly statsIntervalMs: number;
  readonly options: DataPlaneOptions;
}

const WORKER_MAIN = fileURLToPath(new URL('./worker-main.js', import.meta.url));

const ignoreSendError = (): void => {};

/**
 * The load the workers other than `index` reported, per service and real server. Every real
 * server worker `index` itself reported is listed, at 0 when no other worker holds connections to
 * it: a worker that died or a server the others dropped must not leave a stale load behind.
 */
export function peerLoadsFor(index: number, latest: ReadonlyMap<number, DataPlaneSnapshot>): PeerLoad[] {
  const loads = new Map<string, { key: ServiceKey; dest: Endpoint; active: number; inact: number }>();
  const entry = (s: DataPlaneServiceSnapshot, d: DataPlaneDestSnapshot) => {
    const k = `${s.id} ${d.id}`;
    let cur = loads.get(k);
    if (!cur) {
      cur = { key: s.key, dest: { address: d.address, port: d.port }, active: 0, inact: 0 };
      loads.set(k, cur);
    }
    return cur;
  };
  for (const s of latest.get(index)?.services ?? []) for (const d of s.dests) entry(s, d);
  for (const [id, snap] of latest) {
    if (id === index) continue;
    for (const s of snap.services)
      for (const d of s.dests) {
        const cur = entry(s, d);
        cur.active += d.activeConns;
        cur.inact += d.inactConns;
      }
  }
  return [...loads.values()];
}

export class ClusterDataPlane implements DataPlane {
  private readonly workers: ChildProcess[] = [];
  private readonly latest = new Map<number, DataPlaneSnapshot>();
  private readonly latestTables = new Map<number, TableSnapshot>();
  private readonly listings = new Map<string, (c: ConnSnapshot[]) => void>();
  private readonly waiters = new Map<string, () => void>();
  private readonly reserved = new Map<string, { fd: number; port: number }>();
  private readonly freebind = loadFreebind();
  private seq = 0;
  private restarts = 0;
  private stopping = false;

  private constructor(private readonly options: ClusterOptions) {}

  /** Forks the workers and waits until each has loaded its table replica. */
  static async start(options: ClusterOptions): Promise<ClusterDataPlane> {
    const dp = new ClusterDataPlane(options);
    await dp.fork();
    return dp;
  }

  private async fork(): Promise<void> {
    const count = this.freebind ? Math.max(1, this.options.workers) : 1;
    await Promise.all(Array.from({ length: count }, (_, index) => this.spawn(index)));
  }

  /** Forks worker `index` (again); resolves once its replica module is loaded. */
  private spawn(index: number): Promise<void> {
    const { workers, tableModule, statsIntervalMs, workerExecArgv, replay, respawnDelayMs, onWorkerExit, ...options } =
      this.options;
    const config: WorkerConfig = { index, tableModule, statsIntervalMs: statsIntervalMs ?? 250, options };
    const w = fork(WORKER_MAIN, [], {
      env: { ...process.env, KEEPVS_DP_WORKER: JSON.stringify(config) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      execArgv: [...(workerExecArgv ?? DEFAULT_WORKER_EXEC_ARGV)],
    });
    this.workers[index] = w;
    const ready = this.expect(`ready:${index}`);
    w.on('message', (m: WorkerToPrimary) => this.onMessage(index, w, m));
    w.on('exit', (code, signal) => {
      if (this.workers[index] !== w) return;
      this.latest.delete(index);
      this.latestTables.delete(index);
      for (const [k, r] of [...this.listings]) if (k.startsWith(`${index}:`)) r([]);
      this.resolve(`ready:${index}`); // a worker that dies at start does not hang start()
      this.resolve(`stopped:${index}`);
      for (const k of [...this.waiters.keys()]) if (k.startsWith(`applied:${index}:`)) this.resolve(k);
      if (this.stopping) return;
      onWorkerExit?.(index, code, signal);
      if (replay) setTimeout(() => void this.respawn(index), respawnDelayMs ?? 1000).unref();
    });
    return ready;
  }

  private async respawn(index: number): Promise<void> {
    if (this.stopping) return;
    this.restarts++;
    await this.spawn(index);
    const w = this.workers[index];
    const ops = this.options.replay?.() ?? [];
    if (this.stopping || !w?.connected || ops.length === 0) return;
    const bindPorts: [string, number][] = [...this.reserved].map(([id, r]) => [id, r.port]);
    w.send({ type: 'ops', seq: ++this.seq, ops, bindPorts } satisfies PrimaryToWorker, ignoreSendError);
  }

  /** workers forked again after dying */
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

  private onMessage(index: number, w: ChildProcess, m: WorkerToPrimary): void {
    if (m.type === 'ready') this.resolve(`ready:${index}`);
    else if (m.type === 'applied') this.resolve(`applied:${index}:${m.seq}`);
    else if (m.type === 'stopped') this.resolve(`stopped:${index}`);
    else if (m.type === 'connections') this.listings.get(`${index}:${m.seq}`)?.(m.connections);
    else if (m.type === 'stats') {
      this.latest.set(index, m.snapshot);
      if (m.table) this.latestTables.set(index, m.table);
      this.sendPeerLoads(index, w);
    }
  }

  /** Sends worker `w` the load every other worker reported. */
  private sendPeerLoads(index: number, w: ChildProcess): void {
    // a worker that just exited gives EPIPE: its exit handler deals with it, the send is dropped
    if (w.connected)
      w.send({ type: 'peer-load', loads: peerLoadsFor(index, this.latest) } satisfies PrimaryToWorker, ignoreSendError);
  }

  async apply(ops: readonly TableOp[]): Promise<void> {
    // port 0 (tests): reserve one port here so that every worker joins the same reuseport group
    for (const op of ops) {
      if (op.op === 'add-service' && op.key.kind === 'addr' && op.key.port === 0 && op.key.protocol === 'tcp') {
        const id = serviceId(op.key);
        if (this.freebind && !this.reserved.has(id))
          this.reserved.set(id, this.freebind.bind('tcp', op.key.address, 0));
      }
    }
    const seq = ++this.seq;
    const bindPorts: [string, number][] = [...this.reserved].map(([id, r]) => [id, r.port]);
    const done = this.workers.map((w, index) => {
      if (!w.connected) return Promise.resolve();
      const p = this.expect(`applied:${index}:${seq}`);
      w.send({ type: 'ops', seq, ops, bindPorts } satisfies PrimaryToWorker, ignoreSendError);
      return p;
    });
    await Promise.all(done);
    for (const op of ops) {
      if (op.op === 'del-service' || op.op === 'clear') {
        for (const [id, r] of this.reserved)
          if (op.op === 'clear' || id === serviceId(op.key)) {
            this.freebind?.close(r.fd);
            this.reserved.delete(id);
          }
      }
    }
  }

  /** The whole director: per-worker snapshots summed by service and destination. */
  snapshot(): DataPlaneSnapshot {
    const services = new Map<string, DataPlaneServiceSnapshot & { destMap: Map<string, DataPlaneDestSnapshot> }>();
    const diagnostics = [];
    for (const snap of this.latest.values()) {
      diagnostics.push(...snap.diagnostics);
      for (const s of snap.services) {
        let agg = services.get(s.id);
        if (!agg) {
          agg = { ...s, noDest: 0, connectFailures: 0, open: 0, dests: [], destMap: new Map() };
          services.set(s.id, agg);
        }
        const a = agg as { -readonly [K in keyof DataPlaneServiceSnapshot]: DataPlaneServiceSnapshot[K] };
        a.noDest += s.noDest;
        a.connectFailures += s.connectFailures;
        a.open += s.open;
        if (s.listener !== 'listening') a.listener = s.listener;
        for (const d of s.dests) {
          const cur = agg.destMap.get(d.id);
          agg.destMap.set(
            d.id,
            cur
              ? {
                  ...cur,
                  activeConns: cur.activeConns + d.activeConns,
                  inactConns: cur.inactConns + d.inactConns,
                  conns: cur.conns + d.conns,
                  inPkts: cur.inPkts + d.inPkts,
                  outPkts: cur.outPkts + d.outPkts,
                  inBytes: cur.inBytes + d.inBytes,
                  outBytes: cur.outBytes + d.outBytes,
                  connectFailures: cur.connectFailures + d.connectFailures,
                }
              : d,
          );
        }
      }
    }
    return {
      kind: 'proxy-cluster',
      workers: this.workers.filter((w) => w.connected).length,
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
    const parts = this.workers.map(
      (w, index) =>
        new Promise<ConnSnapshot[]>((resolve) => {
          if (!w.connected) return resolve([]);
          const key = `${index}:${seq}`;
          const done = (c: ConnSnapshot[]) => {
            clearTimeout(t);
            this.listings.delete(key);
            resolve(c);
          };
          const t = setTimeout(() => done([]), timeoutMs);
          this.listings.set(key, done);
          w.send({ type: 'list-connections', seq } satisfies PrimaryToWorker, ignoreSendError);
        }),
    );
    return (await Promise.all(parts)).flat();
  }

  /** process ids of the workers (for benchmarks and supervision) */
  pids(): number[] {
    return this.workers.map((w) => w.pid ?? 0).filter((p) => p > 0);
  }

  async stop(drainMs: number): Promise<void> {
    this.stopping = true;
    const gone = this.workers.map((w, index) => {
      if (!w.connected) return Promise.resolve();
      const p = this.expect(`stopped:${index}`);
      w.send({ type: 'stop', drainMs } satisfies PrimaryToWorker, ignoreSendError);
      return p;
    });
    const hardStop = setTimeout(() => {
      for (const w of this.workers) if (w.exitCode === null && w.signalCode === null) w.kill('SIGKILL');
    }, drainMs + 3000);
    await Promise.all(gone);
    clearTimeout(hardStop);
    for (const r of this.reserved.values()) this.freebind?.close(r.fd);
    this.reserved.clear();
  }
}
