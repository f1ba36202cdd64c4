/**
 * The proxy worker processes themselves: forked, given a Unix socket path each (in a private
 * 0700 directory), forked again after a crash, stopped with a drain. Whoever holds this object is
 * their parent: the supervisor in the daemon (so that they outlive an LVS worker crash), or a
 * ClusterDataPlane of its own in tests and benchmarks. The controller (ClusterDataPlane) only
 * connects to the sockets; it gives each worker its options and its table.
 *
 * With `recordPath` (the daemon) the workers also outlive their parent: a supervisor killed
 * leaves them forwarding with their last table (as the kernel keeps IPVS's table when keepalived
 * dies), and the next one, reading the record, adopts the live ones instead of forking new
 * listeners beside them.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readFileSafely, unsafeDirReason, writeFileSafely } from '../../os/safe-file.js';
import { createPositionsFile } from './positions.js';

/** What a proxy worker process is started with (in KEEPVS_DP_WORKER); the rest comes from its controller. */
export interface ProxyProcessConfig {
  readonly index: number;
  readonly socketPath: string;
  /** how long established connections may run on once the parent is gone (listeners close at once) */
  readonly orphanDrainMs: number;
  /** the rr/wrr positions the workers share (positions.ts); absent: each replica keeps its own */
  readonly positionsPath?: string;
  /**
   * the parent gone, listeners stay open with the last table this long for a new parent to adopt
   * the worker (its controller connects); then the worker drains and exits as without it
   */
  readonly outliveParentMs?: number;
}

/** From the parent to a proxy worker, over the fork IPC channel. */
export type ParentToProxy = { readonly type: 'stop'; readonly drainMs: number };

/** From a proxy worker to its parent, every 2 s. */
export type ProxyToParent = { readonly type: 'memory'; readonly heapUsed: number };

export interface ProxyProcessesOptions {
  readonly count: number;
  /** directory for the private socket directory (default the system temp dir) */
  readonly runDir?: string;
  /** default `--max-semi-space-size=1` (see ClusterOptions.workerExecArgv) */
  readonly execArgv?: readonly string[];
  /** default true: a worker that dies is forked again after respawnDelayMs */
  readonly respawn?: boolean;
  /** default 1000 ms */
  readonly respawnDelayMs?: number;
  /** default 30 s */
  readonly orphanDrainMs?: number;
  /** a worker exited outside stop() */
  readonly onExit?: (index: number, code: number | null, signal: string | null, respawnInMs: number | null) => void;
  /**
   * where the workers are recorded (written safely, private directory): workers outlive the parent
   * and a new ProxyProcesses adopts the live ones it finds there. Without it, an orphan drains
   * and exits (tests, benchmarks).
   */
  readonly recordPath?: string;
  /** with recordPath: how long orphaned workers wait to be adopted (default 20 s) */
  readonly adoptWindowMs?: number;
  /** told which worker indexes were adopted from an earlier parent */
  readonly onAdopt?: (adopted: readonly { index: number; pid: number }[]) => void;
}

/** The adoption record: the socket directory and each worker's pid with its /proc start time. */
interface ProxyRecord {
  /** the parent that wrote it: while it lives, its workers are not anyone else's to adopt */
  readonly owner: number;
  readonly ownerStart?: string;
  readonly dir: string;
  readonly procs: readonly { readonly index: number; readonly pid: number; readonly start: string }[];
}

/** /proc/PID/stat's start time (field 22): a pid reused by another process has another one. */
function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** `pid` is still the proxy worker recorded: same start time, running our worker-main. */
function isOurWorker(pid: number, start: string): boolean {
  if (!Number.isInteger(pid) || pid <= 1 || startTime(pid) !== start) return false;
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(WORKER_MAIN);
  } catch {
    return false;
  }
}

/**
 * The live workers of a record left by an earlier parent (none if the record is unsafe or stale,
 * or if the parent that wrote it is still alive).
 */
function readRecord(path: string): Pick<ProxyRecord, 'dir' | 'procs'> | undefined {
  let r: ProxyRecord;
  try {
    const text = readFileSafely(path);
    if (text === undefined) return undefined;
    r = JSON.parse(text) as ProxyRecord;
  } catch {
    return undefined;
  }
  if (typeof r?.dir !== 'string' || !Array.isArray(r.procs)) return undefined;
  const ownerLives = typeof r.ownerStart === 'string' && r.owner !== process.pid && startTime(r.owner) === r.ownerStart;
  if (ownerLives) return undefined;
  // the socket directory must still be the private one the parent made, beside the record
  if (dirname(r.dir) !== dirname(path) || !/^keepvs-dp-/.test(r.dir.slice(dirname(path).length + 1))) return undefined;
  try {
    if (unsafeDirReason(r.dir, false) !== undefined) return undefined;
  } catch {
    return undefined;
  }
  const procs = r.procs.filter(
    (p) =>
      Number.isInteger(p?.index) &&
      typeof p.start === 'string' &&
      isOurWorker(p.pid, p.start) &&
      existsSync(join(r.dir, `${p.index}.sock`)),
  );
  return { dir: r.dir, procs };
}

export const DEFAULT_WORKER_EXEC_ARGV: readonly string[] = ['--max-semi-space-size=1'];

/** systemd's Restart= brings keepvs back within a few seconds; a keepvs that does not come back stops forwarding */
export const DEFAULT_ADOPT_WINDOW_MS = 20_000;

const WORKER_MAIN = fileURLToPath(new URL('./worker-main.js', import.meta.url));

export interface ProxyProcessStatus {
  readonly index: number;
  readonly pid?: number;
  readonly state: 'running' | 'restarting' | 'stopped';
  readonly restarts: number;
  readonly startedAt?: number;
  readonly heapUsed?: number;
}

/** A worker left by an earlier parent: not our child, watched through /proc. */
interface Adopted {
  readonly pid: number;
  readonly start: string;
  readonly watch: NodeJS.Timeout;
}

export class ProxyProcesses {
  readonly dir: string;
  readonly sockets: readonly string[];
  /** rr/wrr positions shared by the workers (undefined if the file could not be made) */
  readonly positionsPath: string | undefined;
  private readonly children: (ChildProcess | undefined)[] = [];
  private readonly adopted: (Adopted | undefined)[] = [];
  private readonly status_: {
    restarts: number;
    startedAt?: number;
    heapUsed?: number;
    state: ProxyProcessStatus['state'];
  }[] = [];
  private stopping = false;

  constructor(private readonly options: ProxyProcessesOptions) {
    const count = Math.max(1, options.count);
    const found = options.recordPath ? readRecord(options.recordPath) : undefined;
    const live = found?.procs ?? [];
    // workers beyond the count wanted now go; the others are adopted with their listeners
    for (const p of live) if (p.index >= count) process.kill(p.pid, 'SIGTERM');
    const keep = live.filter((p) => p.index < count);
    if (found && keep.length === 0) rmSync(found.dir, { recursive: true, force: true });
    this.dir = found && keep.length > 0 ? found.dir : mkdtempSync(join(options.runDir ?? tmpdir(), 'keepvs-dp-'));
    this.sockets = Array.from({ length: count }, (_, i) => join(this.dir, `${i}.sock`));
    const positions = join(this.dir, 'positions');
    try {
      // an adopted directory keeps the positions its workers share (the file is open in them)
      if (!(keep.length > 0 && existsSync(positions))) createPositionsFile(positions);
      this.positionsPath = positions;
    } catch {
      this.positionsPath = undefined;
    }
    for (let i = 0; i < count; i++) {
      this.status_.push({ restarts: 0, state: 'running' });
      const old = keep.find((p) => p.index === i);
      if (old) this.adopt(i, old.pid, old.start);
      else this.spawn(i);
    }
    if (keep.length > 0) options.onAdopt?.(keep.map(({ index, pid }) => ({ index, pid })));
    this.writeRecord();
  }

  /** Takes over a worker an earlier parent left: its exit is seen through /proc (no 'exit' event). */
  private adopt(index: number, pid: number, start: string): void {
    const st = this.status_[index]!;
    st.state = 'running';
    st.startedAt = Date.now();
    const watch = setInterval(() => {
      if (isOurWorker(pid, start)) return;
      clearInterval(watch);
      if (this.adopted[index]?.pid !== pid) return;
      this.adopted[index] = undefined;
      this.exited(index, null, null);
    }, 250);
    watch.unref();
    this.adopted[index] = { pid, start, watch };
  }

  /** Where the next parent finds the workers (after every fork; nothing to do without recordPath). */
  private writeRecord(): void {
    const path = this.options.recordPath;
    if (!path || this.stopping) return;
    const procs = this.sockets.flatMap((_, index) => {
      const pid = this.children[index]?.pid ?? this.adopted[index]?.pid;
      const start = pid ? startTime(pid) : undefined;
      return pid && start ? [{ index, pid, start }] : [];
    });
    try {
      writeFileSafely(
        path,
        `${JSON.stringify({ owner: process.pid, ownerStart: startTime(process.pid), dir: this.dir, procs } satisfies ProxyRecord)}\n`,
        0o600,
      );
    } catch {
      // no record: a supervisor crash then ends with the orphans draining, as without recordPath
    }
  }

  private spawn(index: number): void {
    const config: ProxyProcessConfig = {
      index,
      socketPath: this.sockets[index]!,
      orphanDrainMs: this.options.orphanDrainMs ?? 30_000,
      ...(this.options.recordPath ? { outliveParentMs: this.options.adoptWindowMs ?? DEFAULT_ADOPT_WINDOW_MS } : {}),
      ...(this.positionsPath ? { positionsPath: this.positionsPath } : {}),
    };
    const child = fork(WORKER_MAIN, [], {
      env: { ...process.env, KEEPVS_DP_WORKER: JSON.stringify(config) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      execArgv: [...(this.options.execArgv ?? DEFAULT_WORKER_EXEC_ARGV)],
    });
    this.children[index] = child;
    const st = this.status_[index]!;
    st.state = 'running';
    st.startedAt = Date.now();
    st.heapUsed = undefined;
    child.on('message', (m: ProxyToParent) => {
      if (m.type === 'memory' && this.children[index] === child) st.heapUsed = m.heapUsed;
    });
    child.on('error', () => {}); // 'exit' follows
    child.on('exit', (code, signal) => {
      if (this.children[index] !== child) return;
      this.children[index] = undefined;
      this.exited(index, code, signal);
    });
    // the pid is known at once; the record is what lets the next parent adopt this worker
    if (child.pid) this.writeRecord();
  }

  private exited(index: number, code: number | null, signal: string | null): void {
    const st = this.status_[index]!;
    if (this.stopping) {
      st.state = 'stopped';
      return;
    }
    const respawn = this.options.respawn ?? true;
    const delay = respawn ? (this.options.respawnDelayMs ?? 1000) : null;
    this.options.onExit?.(index, code, signal, delay);
    if (delay === null) {
      st.state = 'stopped';
      return;
    }
    st.state = 'restarting';
    setTimeout(() => {
      if (this.stopping) return;
      st.restarts++;
      this.spawn(index);
    }, delay).unref();
  }

  /** Forks again the workers that stay stopped (`respawn: false`); the supervisor calls it at a good reload. */
  revive(): number {
    if (this.stopping) return 0;
    let n = 0;
    for (let i = 0; i < this.sockets.length; i++)
      if (!this.children[i] && !this.adopted[i] && this.status_[i]!.state === 'stopped') {
        this.status_[i]!.restarts++;
        this.spawn(i);
        n++;
      }
    return n;
  }

  pids(): number[] {
    return this.sockets.map((_, i) => this.children[i]?.pid ?? this.adopted[i]?.pid ?? 0).filter((p) => p > 0);
  }

  status(): ProxyProcessStatus[] {
    return this.status_.map((s, index) => {
      const pid = this.children[index]?.pid ?? this.adopted[index]?.pid;
      return {
        index,
        ...(pid ? { pid } : {}),
        state: s.state,
        restarts: s.restarts,
        ...(s.startedAt ? { startedAt: s.startedAt } : {}),
        ...(s.heapUsed !== undefined ? { heapUsed: s.heapUsed } : {}),
      };
    });
  }

  /** Stops every worker: listeners close at once, open connections get up to drainMs. */
  async stop(drainMs: number): Promise<void> {
    this.stopping = true;
    if (this.options.recordPath) {
      try {
        unlinkSync(this.options.recordPath);
      } catch {
        // not written
      }
    }
    const adoptedGone = this.adopted.map(async (a) => {
      if (!a) return;
      clearInterval(a.watch);
      // not our child: no IPC; SIGTERM is its stop with the supervisor's drain (worker-main.ts)
      try {
        process.kill(a.pid, 'SIGTERM');
      } catch {
        return;
      }
      const hard = Date.now() + drainMs + 3000;
      while (isOurWorker(a.pid, a.start)) {
        if (Date.now() > hard) process.kill(a.pid, 'SIGKILL');
        await new Promise((r) => setTimeout(r, 50));
      }
    });
    await Promise.all([
      ...adoptedGone,
      ...this.children.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (!c || c.exitCode !== null || c.signalCode !== null) return resolve();
            const hard = setTimeout(() => c.kill('SIGKILL'), drainMs + 3000);
            c.once('exit', () => {
              clearTimeout(hard);
              resolve();
            });
            if (c.connected) c.send({ type: 'stop', drainMs } satisfies ParentToProxy, () => {});
            else c.kill('SIGTERM');
          }),
      ),
    ]);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
