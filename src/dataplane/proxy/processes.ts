/**
 * The proxy worker processes themselves: forked, given a Unix socket path each (in a private
 * 0700 directory), forked again after a crash, stopped with a drain. Whoever holds this object is
 * their parent: the supervisor in the daemon (so that they outlive an LVS worker crash), or a
 * ClusterDataPlane of its own in tests and benchmarks. The controller (ClusterDataPlane) only
 * connects to the sockets; it gives each worker its options and its table.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createPositionsFile } from './positions.js';

/** What a proxy worker process is started with (in KEEPVS_DP_WORKER); the rest comes from its controller. */
export interface ProxyProcessConfig {
  readonly index: number;
  readonly socketPath: string;
  /** how long established connections may run on once the parent is gone (listeners close at once) */
  readonly orphanDrainMs: number;
  /** the rr/wrr positions the workers share (positions.ts); absent: each replica keeps its own */
  readonly positionsPath?: string;
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
}

export const DEFAULT_WORKER_EXEC_ARGV: readonly string[] = ['--max-semi-space-size=1'];

const WORKER_MAIN = fileURLToPath(new URL('./worker-main.js', import.meta.url));

export interface ProxyProcessStatus {
  readonly index: number;
  readonly pid?: number;
  readonly state: 'running' | 'restarting' | 'stopped';
  readonly restarts: number;
  readonly startedAt?: number;
  readonly heapUsed?: number;
}

export class ProxyProcesses {
  readonly dir: string;
  readonly sockets: readonly string[];
  /** rr/wrr positions shared by the workers (undefined if the file could not be made) */
  readonly positionsPath: string | undefined;
  private readonly children: (ChildProcess | undefined)[] = [];
  private readonly status_: {
    restarts: number;
    startedAt?: number;
    heapUsed?: number;
    state: ProxyProcessStatus['state'];
  }[] = [];
  private stopping = false;

  constructor(private readonly options: ProxyProcessesOptions) {
    this.dir = mkdtempSync(join(options.runDir ?? tmpdir(), 'keepvs-dp-'));
    this.sockets = Array.from({ length: Math.max(1, options.count) }, (_, i) => join(this.dir, `${i}.sock`));
    const positions = join(this.dir, 'positions');
    try {
      createPositionsFile(positions);
      this.positionsPath = positions;
    } catch {
      this.positionsPath = undefined;
    }
    for (let i = 0; i < this.sockets.length; i++) {
      this.status_.push({ restarts: 0, state: 'running' });
      this.spawn(i);
    }
  }

  private spawn(index: number): void {
    const config: ProxyProcessConfig = {
      index,
      socketPath: this.sockets[index]!,
      orphanDrainMs: this.options.orphanDrainMs ?? 30_000,
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
    });
  }

  /** Forks again the workers that stay stopped (`respawn: false`); the supervisor calls it at a good reload. */
  revive(): number {
    if (this.stopping) return 0;
    let n = 0;
    for (let i = 0; i < this.sockets.length; i++)
      if (!this.children[i] && this.status_[i]!.state === 'stopped') {
        this.status_[i]!.restarts++;
        this.spawn(i);
        n++;
      }
    return n;
  }

  pids(): number[] {
    return this.children.map((c) => c?.pid ?? 0).filter((p) => p > 0);
  }

  status(): ProxyProcessStatus[] {
    return this.status_.map((s, index) => {
      const pid = this.children[index]?.pid;
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
    await Promise.all(
      this.children.map(
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
    );
    rmSync(this.dir, { recursive: true, force: true });
  }
}
