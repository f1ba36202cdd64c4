/**
 * The supervisor (keepalived's parent process): validates the configuration, forks the LVS worker
 * (table, data plane, checks, control socket) and the VRRP worker, restarts them with keepalived's
 * back-off, serves the API/metrics/dashboard from their snapshots, and handles signals.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { RateHistory } from '../api/history.js';
import { buildApi } from '../api/server.js';
import type { AdminAction, DaemonStatus, StatusSource, VrrpInstanceStatus, WorkerStatus } from '../api/types.js';
import { formatDiagnostic } from '../config/format.js';
import type { Config, LoadResult } from '../config/model.js';
import { reloadRefusal } from '../config/reload-guard.js';
import { loadFreebind } from '../dataplane/proxy/freebind.js';
import { chooseProxyIo } from '../dataplane/proxy/poller.js';
import { ProxyProcesses } from '../dataplane/proxy/processes.js';
import type { ConnListing, ConnQuery } from '../lb/conn-list.js';
import { SmtpMailer } from '../notify/mail.js';
import { Notifier } from '../notify/notifier.js';
import { claimKernelPlane, releaseKernelPlane } from '../os/kernel-plane-owner.js';
import { loadLibc } from '../os/libc.js';
import { removePidFile, runningKeepvs, writePidFile } from '../os/pid-file.js';
import { ChildProcessRunner } from '../os/process-runner.js';
import { writeFileSafely } from '../os/safe-file.js';
import { reloadingMessage, systemdNotifier } from '../os/sd-notify.js';
import { SystemClock } from '../util/clock.js';
import { EventBus, type KeepvsEvent } from '../util/events.js';
import type { Result } from '../util/result.js';
import { VERSION } from '../version.js';
import type { VrrpScriptStatus } from '../vrrp/status.js';
import { BgpAnnouncer, wantsBgp } from './bgp-announcer.js';
import { type ConfigLoader, ConfigStore } from './config-store.js';
import { type DumpKind, dumpFiles } from './dump.js';
import type { FromWorker, ToWorker, WorkerRole } from './ipc.js';
import { DaemonLogger, SYSLOG_IDENT } from './log.js';
import type { OperatorSnapshot } from './lvs-service.js';
import { describeOperatorState, loadOperatorState, operatorStateFile, saveOperatorState } from './operator-file.js';
import type { DaemonOptions } from './options.js';
import { restartDelayMs } from './restart.js';

const here = dirname(fileURLToPath(import.meta.url));
const WORKER = join(here, 'worker.js');
export const WEB_ROOT = join(here, '..', '..', '..', 'web');

interface Worker {
  role: WorkerRole;
  child?: ChildProcess;
  state: WorkerStatus['state'];
  restarts: number;
  startedAt?: number;
  failures: number;
  pidFile: string;
  heapUsed?: number;
}

export interface DaemonHandle {
  readonly supervisor: Supervisor;
  readonly api?: FastifyInstance;
  readonly apiUrl?: string;
  readonly token: string;
  /** this namespace's kernel-plane owner file, when this daemon holds it */
  readonly kernelPlaneFile?: string;
}

/** The VRRP worker runs VRRP instances and the static_* blocks, which need no instance (keepalived). */
function needsVrrpWorker(c: Config): boolean {
  return (
    c.vrrpInstances.length > 0 ||
    c.staticIpaddresses.length > 0 ||
    c.staticRoutes.length > 0 ||
    c.staticRules.length > 0
  );
}

export class Supervisor implements StatusSource {
  readonly bus = new EventBus();
  private readonly workers = new Map<WorkerRole, Worker>();
  private lvs: DaemonStatus['lvs'];
  private vrrp: readonly VrrpInstanceStatus[] = [];
  private vrrpScripts: readonly VrrpScriptStatus[] = [];
  private readonly startedAt = Date.now();
  private stopping = false;
  /** set once every worker has reported ready the first time (keepalived's "Startup complete") */
  private startedAll = false;
  private startedWaiters: (() => void)[] = [];
  private maintenance = false;
  private nextAdmin = 1;
  private readonly pendingAdmin = new Map<number, (r: { ok: boolean; error?: string }) => void>();
  private readonly pendingConns = new Map<number, (r: Result<ConnListing, string>) => void>();
  private routerId: string | undefined;
  /** the last configuration that passed validation: what every worker (re)starts and reloads with */
  private config: Config | undefined;
  /** the LVS worker's operator changes, given to the next LVS worker (they survive its restarts) */
  private operator: OperatorSnapshot | undefined;
  /** the data plane's processes: children of the supervisor, so that they outlive an LVS worker crash */
  private proxies: ProxyProcesses | undefined;
  /** active-active: the VIPs announced by BGP (bgp_announce), and when the last LVS snapshot came */
  private bgp: BgpAnnouncer | undefined;
  private bgpTimer: ReturnType<typeof setInterval> | undefined;
  private lvsAt = 0;
  private readonly clock = new SystemClock();

  constructor(
    private readonly opts: DaemonOptions,
    private readonly load: () => LoadResult,
    readonly logger: DaemonLogger,
  ) {}

  private notifier: Notifier | undefined;

  start(result: LoadResult): void {
    const c = result.config!;
    this.config = c;
    this.routerId = c.globalDefs.routerId;
    // notify scripts, FIFOs and mail for every event; the checker engine runs notify_up/down itself
    this.notifier = new Notifier({
      config: c,
      runner: new ChildProcessRunner(),
      logger: this.logger,
      clock: new SystemClock(),
      ...(c.globalDefs.smtpServer ? { mailer: new SmtpMailer(c.globalDefs) } : {}),
      runCheckerScripts: false,
    });
    this.bus.subscribe((e) => this.notifier?.handle(e));
    const wantLvs = !this.opts.vrrpOnly;
    const wantVrrp = !this.opts.checkOnly && needsVrrpWorker(c);
    if (wantLvs) {
      this.restoreOperator();
      // the kernel plane forwards in the kernel: no proxy processes
      if (this.opts.dataplane !== 'nft') this.proxies = this.startProxies();
      this.spawn({ role: 'lvs', state: 'starting', restarts: 0, failures: 0, pidFile: this.opts.checkersPidFile });
    }
    if (wantVrrp)
      this.spawn({ role: 'vrrp', state: 'starting', restarts: 0, failures: 0, pidFile: this.opts.vrrpPidFile });
    this.checkStarted();
    if (wantLvs) this.configureBgp(c);
  }

  /** Resolves once every worker started at start() has reported ready (sd_notify READY=1 waits for it). */
  started(): Promise<void> {
    if (this.startedAll) return Promise.resolve();
    return new Promise((resolve) => this.startedWaiters.push(resolve));
  }

  private checkStarted(): void {
    if (this.startedAll || ![...this.workers.values()].every((w) => w.state === 'running')) return;
    this.startedAll = true;
    for (const w of this.startedWaiters.splice(0)) w();
  }

  /** Starts, reconfigures or stops the BGP announcer to match `c`. */
  private configureBgp(c: Config): void {
    if (!wantsBgp(c)) {
      const old = this.bgp;
      this.bgp = undefined;
      if (this.bgpTimer) clearInterval(this.bgpTimer);
      this.bgpTimer = undefined;
      void old?.stop();
      return;
    }
    if (this.bgp) {
      this.bgp.reconfigure(c);
      return;
    }
    this.bgp = new BgpAnnouncer(c, this.clock, this.logger);
    const tick = () => {
      const lvsRunning = this.workers.get('lvs')?.state === 'running';
      void this.bgp?.tick(this.lvs, lvsRunning ? this.lvsAt : 0, this.maintenance);
    };
    this.bgpTimer = setInterval(tick, 1000);
    tick();
  }

  /** Operator changes from the last keepvs on this socket (its file), for the first LVS worker. */
  private restoreOperator(): void {
    const file = operatorStateFile(this.opts.socket);
    const { state, error } = loadOperatorState(file);
    if (error) this.logger.log('warning', `operator changes not restored: ${error}`);
    if (!state) return;
    this.operator = state;
    this.logger.log('notice', `operator changes restored from ${file} (${describeOperatorState(state)})`);
  }

  private operatorSaveFailed = false;

  private saveOperator(): void {
    if (!this.operator) return;
    const file = operatorStateFile(this.opts.socket);
    try {
      saveOperatorState(file, this.operator);
      this.operatorSaveFailed = false;
    } catch (e) {
      // said once until it works again: a restart of keepvs would lose these changes
      if (!this.operatorSaveFailed)
        this.logger.log('warning', `operator changes not saved (lost if keepvs restarts): ${(e as Error).message}`);
      this.operatorSaveFailed = true;
    }
  }

  private startProxies(): ProxyProcesses {
    // without libc (koffi) the workers cannot share a port (SO_REUSEPORT + IP_FREEBIND): one
    const count = loadFreebind() ? Math.max(1, this.opts.dataplaneWorkers) : 1;
    let runDir = dirname(this.opts.socket);
    try {
      mkdirSync(runDir, { recursive: true });
    } catch {
      runDir = tmpdir();
    }
    return new ProxyProcesses({
      count,
      runDir,
      // the workers outlive a supervisor SIGKILL; the next keepvs on this socket adopts them
      recordPath: proxyRecordFile(this.opts.socket),
      onAdopt: (adopted) =>
        this.logger.log(
          'notice',
          `adopted ${adopted.length} proxy workers left running by the previous keepvs (pids ${adopted.map((a) => a.pid).join(', ')})`,
        ),
      respawn: !this.opts.dontRespawn,
      onExit: (index, code, signal, respawnInMs) =>
        this.logger.log(
          'error',
          `proxy worker ${index} exited (${signal ?? `code ${code}`}); ${respawnInMs === null ? 'not respawning (-R)' : `forking it again in ${respawnInMs / 1000} s`}`,
        ),
    });
  }

  private spawn(w: Worker): void {
    this.workers.set(w.role, w);
    const child = fork(WORKER, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced' });
    w.child = child;
    w.state = 'starting';
    w.startedAt = Date.now();
    w.heapUsed = undefined;
    writePid(w.pidFile, child.pid, this.logger);
    // keepalived's lines (check_daemon.c start_check_child, vrrp_daemon.c start_vrrp_child)
    this.logger.log('info', `Starting ${w.role === 'vrrp' ? 'VRRP' : 'Healthcheck'} child process, pid=${child.pid}`);
    child.on('message', (m: FromWorker) => this.onMessage(w, m));
    child.on('exit', (code, signal) => this.onExit(w, child, code, signal));
    const init: ToWorker = {
      type: 'init',
      init: {
        role: w.role,
        config: this.config!,
        socket: this.opts.socket,
        logDetail: this.opts.logDetail,
        ...(this.opts.noSyslog ? {} : { syslogFacility: this.opts.logFacility }),
        dataplaneWorkers: this.opts.dataplaneWorkers,
        ...(this.opts.proxyOptions ? { proxyOptions: this.opts.proxyOptions } : {}),
        ...(this.proxies ? { proxySockets: this.proxies.sockets } : {}),
        ...(w.role === 'lvs' && this.operator ? { operator: this.operator } : {}),
        dataplane: this.opts.dataplane ?? 'proxy',
      },
    };
    child.send(init);
  }

  private onMessage(w: Worker, m: FromWorker): void {
    switch (m.type) {
      case 'ready':
        w.state = 'running';
        this.logger.log('info', `${w.role} worker started (pid ${w.child?.pid})`);
        this.checkStarted();
        break;
      case 'log':
        this.logger.logFromWorker(m.level, m.message, m.syslogged === true);
        break;
      case 'event':
        // the status API sees a VRRP state change no later than its event
        if (m.event.type === 'vrrp-state') {
          const e = m.event;
          this.vrrp = this.vrrp.map((i) => (i.name === e.instance && e.to !== 'STOP' ? { ...i, state: e.to } : i));
        }
        this.bus.emit(m.event);
        break;
      case 'lvs-snapshot':
        this.lvs = m.snapshot;
        this.lvsAt = this.clock.now();
        break;
      case 'memory':
        w.heapUsed = m.heapUsed;
        break;
      case 'operator-state':
        this.operator = m.state;
        this.saveOperator();
        break;
      case 'vrrp-snapshot':
        this.vrrp = m.instances;
        this.vrrpScripts = m.scripts ?? [];
        break;
      case 'admin-result':
        this.pendingAdmin.get(m.id)?.({ ok: m.ok, ...(m.error ? { error: m.error } : {}) });
        this.pendingAdmin.delete(m.id);
        break;
      case 'connections-result':
        this.pendingConns.get(m.id)?.(
          m.listing ? { ok: true, value: m.listing } : { ok: false, error: m.error ?? 'no answer' },
        );
        this.pendingConns.delete(m.id);
        break;
      case 'fatal':
        this.logger.log('error', `${w.role} worker: ${m.message}`);
        break;
      // connection sync: the VRRP worker asks, the LVS worker (conntrackd's owner) answers; with no
      // LVS worker running there is nothing to commit, so the answer comes at once
      case 'sync-role':
        if (!this.sendTo('lvs', { type: 'sync-role', id: m.id, instance: m.instance, role: m.role }))
          this.sendTo('vrrp', { type: 'sync-role-done', id: m.id });
        break;
      case 'sync-role-done':
        this.sendTo('vrrp', { type: 'sync-role-done', id: m.id });
        break;
    }
  }

  private onExit(w: Worker, child: ChildProcess, code: number | null, signal: string | null): void {
    if (w.child !== child) return;
    removePid(w.pidFile);
    if (this.stopping) {
      w.state = 'stopped';
      return;
    }
    const ranMs = Date.now() - (w.startedAt ?? Date.now());
    w.failures = ranMs > 60_000 ? 0 : w.failures + 1;
    if (code === 3) {
      // like keepalived's permanent exit status: a configuration the worker cannot run is not retried
      this.logger.log('error', `${w.role} worker stopped: configuration cannot run`);
      w.state = 'stopped';
      return;
    }
    if (this.opts.dontRespawn) {
      this.logger.log('error', `${w.role} worker exited (${signal ?? code}); not respawning (-R)`);
      w.state = 'stopped';
      return;
    }
    const delay = restartDelayMs(ranMs, w.failures);
    this.logger.log(
      'warning',
      `${w.role} worker exited (${signal ?? `status ${code}`}); restarting in ${delay / 1000} s`,
    );
    w.state = 'restarting';
    w.restarts++;
    setTimeout(() => {
      if (!this.stopping) this.spawn(w);
    }, delay);
  }

  private sendTo(role: WorkerRole, m: ToWorker): boolean {
    const w = this.workers.get(role);
    if (!w?.child?.connected) return false;
    w.child.send(m);
    return true;
  }

  /**
   * SIGHUP: a bad configuration is rejected and the running one stays. So is one that would remove
   * a virtual_server or vrrp_instance while it has an unknown top-level block (a typo'd block name),
   * unless `force` (keepvs --force-reload, the API's reload action).
   */
  reload(force = false): { ok: boolean; message: string } {
    const r = this.load();
    for (const d of r.diagnostics) this.logger.log(d.severity === 'error' ? 'error' : 'warning', formatDiagnostic(d));
    const at = Date.now();
    if (!r.usable || !r.config) {
      const message = 'Reload rejected: the new configuration has errors; keeping the running configuration';
      this.logger.log('error', message);
      this.bus.emit({ type: 'config-reload', ok: false, message, at });
      return { ok: false, message };
    }
    const refusal = this.config ? reloadRefusal(this.config, r) : undefined;
    if (refusal && !force) {
      this.logger.log('error', refusal.message);
      this.bus.emit({ type: 'config-reload', ok: false, message: refusal.message, at });
      return { ok: false, message: refusal.message };
    }
    if (refusal) this.logger.log('warning', `Forced reload: removing ${refusal.removed.join(', ')}`);
    this.config = r.config;
    this.routerId = r.config.globalDefs.routerId;
    this.notifier?.reload(r.config);
    if (!this.opts.vrrpOnly) this.configureBgp(r.config);
    const revived = this.proxies?.revive() ?? 0;
    if (revived) this.logger.log('notice', `${revived} stopped proxy workers started again with the new configuration`);
    for (const [role, w] of this.workers) {
      // a worker given up on (exit status 3, -R) gets another chance with a configuration that passed
      if (w.state === 'stopped' && !this.stopping) {
        this.logger.log('notice', `${role} worker was stopped; starting it with the new configuration`);
        this.spawn(w);
      } else this.sendTo(role, { type: 'reload', config: r.config });
    }
    if (!this.workers.has('vrrp') && !this.opts.checkOnly && needsVrrpWorker(r.config)) {
      this.spawn({ role: 'vrrp', state: 'starting', restarts: 0, failures: 0, pidFile: this.opts.vrrpPidFile });
    }
    const message = 'Reloading configuration';
    this.logger.log('notice', message);
    this.bus.emit({ type: 'config-reload', ok: true, message, at });
    return { ok: true, message };
  }

  async stop(drainMs = 3000): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.logger.log('notice', 'Stopping');
    // withdraw first: the routers move the flows to the other directors while this one still forwards
    if (this.bgpTimer) clearInterval(this.bgpTimer);
    await this.bgp?.stop();
    const stopWorker = (w: Worker) =>
      new Promise<void>((resolve) => {
        const c = w.child;
        if (!c || c.exitCode !== null || c.signalCode !== null) return resolve();
        const t = setTimeout(() => {
          c.kill('SIGKILL');
          resolve();
        }, drainMs + 2000);
        c.once('exit', () => {
          clearTimeout(t);
          resolve();
        });
        if (c.connected) c.send({ type: 'stop', drainMs } satisfies ToWorker);
        else c.kill('SIGTERM');
      });
    // VRRP first: its VIPs leave (priority 0 sent, addresses removed) while the data planes still
    // forward. Taken away while this host still holds a VIP, the kernel tables would hand the VIP's
    // packets to the local stack, which resets them: every DR connection (no conntrack entry keeps
    // its forwarding) and every new one (director-pair-dr-lab: 0/20 kept when the VRRP worker was late)
    const workers = [...this.workers.values()];
    await Promise.all(workers.filter((w) => w.role === 'vrrp').map(stopWorker));
    await Promise.all([...workers.filter((w) => w.role !== 'vrrp').map(stopWorker), this.proxies?.stop(drainMs)]);
    await this.notifier?.stop();
    for (const w of this.workers.values()) removePid(w.pidFile);
  }

  status(): DaemonStatus {
    return {
      version: VERSION,
      ...(this.routerId ? { routerId: this.routerId } : {}),
      configFile: this.opts.configFile,
      startedAt: this.startedAt,
      workers: [
        ...[...this.workers.values()].map((w) => ({
          role: w.role,
          ...(w.child?.pid ? { pid: w.child.pid } : {}),
          state: w.state,
          restarts: w.restarts,
          ...(w.startedAt ? { startedAt: w.startedAt } : {}),
          ...(w.heapUsed !== undefined ? { heapUsed: w.heapUsed } : {}),
        })),
        // the data plane's processes, as role proxy0, proxy1 ...
        ...(this.proxies?.status() ?? []).map(({ index, ...p }) => ({ role: `proxy${index}`, ...p })),
      ],
      vrrp: this.vrrp,
      vrrpScripts: this.vrrpScripts,
      ...(this.lvs ? { lvs: this.lvs } : {}),
      maintenance: this.maintenance,
      ...(this.bgp ? { bgp: this.bgp.status() } : {}),
      heapUsed: process.memoryUsage().heapUsed,
    };
  }

  events(): readonly KeepvsEvent[] {
    return this.bus.recent();
  }

  subscribe(listener: (e: KeepvsEvent) => void): () => void {
    return this.bus.subscribe(listener);
  }

  async act(action: AdminAction): Promise<{ ok: boolean; error?: string }> {
    if (action.action === 'reload') {
      const r = this.reload(action.force);
      return r.ok ? { ok: true } : { ok: false, error: r.message };
    }
    const role: WorkerRole = action.action === 'maintenance' ? 'vrrp' : 'lvs';
    // maintenance withdraws the BGP announcements too; without VRRP that is all it does
    if (action.action === 'maintenance' && this.bgp && !this.workers.has('vrrp')) {
      this.maintenance = action.on;
      this.logger.log('notice', `maintenance ${action.on ? 'on' : 'off'}`);
      return { ok: true };
    }
    const id = this.nextAdmin++;
    const result = new Promise<{ ok: boolean; error?: string }>((resolve) => {
      this.pendingAdmin.set(id, resolve);
      setTimeout(() => {
        if (this.pendingAdmin.delete(id)) resolve({ ok: false, error: `${role} worker did not answer` });
      }, 5000);
    });
    if (!this.sendTo(role, { type: 'admin', id, action })) {
      this.pendingAdmin.delete(id);
      return { ok: false, error: `${role} worker is not running` };
    }
    const r = await result;
    if (r.ok && action.action === 'maintenance') this.maintenance = action.on;
    return r;
  }

  /** The API's connection list: the LVS worker filters and cuts it (it holds the entries). */
  async connections(query: ConnQuery): Promise<Result<ConnListing, string>> {
    const id = this.nextAdmin++;
    const result = new Promise<Result<ConnListing, string>>((resolve) => {
      this.pendingConns.set(id, resolve);
      setTimeout(() => {
        if (this.pendingConns.delete(id)) resolve({ ok: false, error: 'the LVS worker did not answer' });
      }, 5000);
    });
    if (!this.sendTo('lvs', { type: 'connections', id, query })) {
      this.pendingConns.delete(id);
      return { ok: false, error: 'the LVS worker is not running' };
    }
    return result;
  }

  /**
   * SIGUSR1/SIGUSR2: keepalived writes its data/stats dumps to $TMPDIR (else /tmp). Files are
   * created safely (os/safe-file.ts) and a failure is logged, never thrown: a planted directory
   * or symlink must not stop the daemon.
   */
  dump(kind: DumpKind): string | undefined {
    const s = this.status();
    const dir = dumpDir();
    const files = dumpFiles(s, kind).map(([name, text]) => [join(dir, name), text] as const);
    let ok = true;
    for (const [file, text] of files) {
      try {
        // /tmp is shared: not a private directory, so only the exclusive temp name + rename protect it
        writeFileSafely(file, text, 0o600, false);
        this.logger.log('info', `${kind === 'data' ? 'Data' : 'Stats'} dump written to ${file}`);
      } catch (e) {
        ok = false;
        this.logger.log('error', `Dump not written: ${(e as Error).message}`);
      }
    }
    return ok ? files[0][0] : undefined;
  }
}

/** keepalived's tmp_dir: $TMPDIR when absolute, else /tmp (lib/utils.c set_tmp_dir). */
export function dumpDir(env: NodeJS.ProcessEnv = process.env): string {
  const t = env.TMPDIR;
  return t?.startsWith('/') ? t : '/tmp';
}

function writePid(path: string, pid: number | undefined, logger: DaemonLogger): void {
  if (!pid) return;
  try {
    writePidFile(path, pid);
  } catch (e) {
    logger.log(
      'warning',
      `cannot write pid file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    );
  }
}

const removePid = (path: string): void => removePidFile(path);

/** Where the proxy workers are recorded for the next keepvs to adopt: next to the control socket. */
export const proxyRecordFile = (socket: string): string => `${socket}.proxies`;

/** Where a generated API token is written: next to the control socket. */
export const apiTokenFile = (socket: string): string => join(dirname(socket), 'api-token');

function apiToken(opts: DaemonOptions, logger: DaemonLogger): string {
  if (opts.apiToken) return opts.apiToken;
  const token = randomBytes(18).toString('base64url');
  const file = apiTokenFile(opts.socket);
  try {
    // exclusive create, no symlink followed, 0600, in a directory only we can write to
    writeFileSafely(file, `${token}\n`, 0o600);
    logger.log('info', `API token written to ${file}`);
  } catch (e) {
    logger.log(
      'warning',
      `cannot write API token file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    );
  }
  return token;
}

/** Starts the daemon; resolves with handles once the API listens (used by `run` and `demo`). */
export async function startDaemon(opts: DaemonOptions, load: ConfigLoader): Promise<DaemonHandle | number> {
  const logger = new DaemonLogger({
    console: opts.logConsole,
    detail: opts.logDetail,
    ...(opts.logFile ? { file: opts.logFile } : {}),
    syslog: !opts.noSyslog,
    facility: opts.logFacility,
    ident: SYSLOG_IDENT.supervisor,
  });
  await logger.init();
  if (opts.dataplaneReason) logger.log('info', `data plane: ${opts.dataplaneReason}`);
  const result = load();
  for (const d of result.diagnostics) {
    const line = formatDiagnostic(d);
    logger.log(d.severity === 'error' ? 'error' : d.severity === 'note' ? 'info' : 'warning', line);
    if (!opts.logConsole) process.stderr.write(`${line}\n`);
  }
  if (!result.usable || !result.config) {
    const msg = `keepvs: configuration ${opts.configFile} has errors; not starting`;
    logger.log('error', msg);
    if (!opts.logConsole) process.stderr.write(`${msg}\n`);
    return 3;
  }
  // keepalived_running(): a live daemon with one of our pid files means this one does not start
  const pidFiles = [
    opts.pidFile,
    ...(opts.vrrpOnly ? [] : [opts.checkersPidFile]),
    ...(opts.checkOnly ? [] : [opts.vrrpPidFile]),
  ];
  for (const f of pidFiles) {
    const other = runningKeepvs(f);
    if (other === undefined) continue;
    const msg = `daemon is already running (pid ${other} in ${f}); not starting`;
    logger.log('notice', msg);
    if (!opts.logConsole) process.stderr.write(`keepvs: ${msg}\n`);
    return 0;
  }
  let kernelPlaneFile: string | undefined;
  if (opts.dataplane === 'nft' && !opts.vrrpOnly) {
    const claim = claimKernelPlane();
    if (claim.kind === 'owned-by') {
      const msg = `the kernel data plane of this network namespace is driven by keepvs pid ${claim.pid} (${claim.file}); not starting: stop that keepvs first, or run this one with --dataplane proxy`;
      logger.log('error', msg);
      if (!opts.logConsole) process.stderr.write(`keepvs: ${msg}\n`);
      return 2;
    }
    if (claim.kind === 'unrecorded')
      logger.log('warning', `cannot record the kernel plane's owner in ${claim.file}: ${claim.reason}`);
    else kernelPlaneFile = claim.file;
  }
  // the proxy workers' TCP I/O backend, decided once before anything is written: a forced uring
  // that cannot run (or an unknown KEEPVS_PROXY_IO) stops keepvs here, never a silent epoll
  if (opts.dataplane !== 'nft' && !opts.vrrpOnly) {
    const libc = loadLibc();
    if (libc) {
      try {
        const { io, reason } = chooseProxyIo(libc);
        io?.close(libc);
        logger.log('info', `proxy workers' TCP I/O: ${reason}`);
      } catch (e) {
        const msg = `${(e as Error).message}; not starting`;
        logger.log('error', msg);
        if (!opts.logConsole) process.stderr.write(`keepvs: ${msg}\n`);
        return 70;
      }
    }
  }
  // keepalived's "Starting Keepalived v2.2.7 (01/16,2022)" and "Configuration file ..." (core/main.c)
  logger.log('notice', `Starting Keepvs v${VERSION}`);
  logger.log('info', `Configuration file ${opts.configFile}`);
  writePid(opts.pidFile, process.pid, logger);
  const supervisor = new Supervisor(opts, load, logger);
  supervisor.start(result);
  const token = apiToken(opts, logger);
  let api: FastifyInstance | undefined;
  let apiUrl: string | undefined;
  if (opts.api) {
    const config = new ConfigStore({
      mainFile: opts.configFile,
      managedFile: opts.managedConfig,
      load,
      reload: () => supervisor.reload(),
      audit: (a) => {
        logger.log('notice', `Configuration ${a.action} by ${a.who}: ${a.summary} (version ${a.version})`);
        supervisor.bus.emit({ type: 'config-change', ...a });
      },
    });
    const history = new RateHistory();
    setInterval(() => history.sample(supervisor.status(), Date.now()), history.intervalMs).unref();
    api = buildApi(supervisor, {
      token,
      history,
      namedTokens: opts.apiTokens,
      config,
      ...(opts.peer ? { peer: opts.peer } : {}),
      webRoot: WEB_ROOT,
      log: (m) => logger.log('notice', m),
    });
    try {
      apiUrl = await api.listen({ host: opts.api.host, port: opts.api.port });
      logger.log('info', `API, metrics and dashboard on ${apiUrl}`);
    } catch (e) {
      logger.log('error', `API cannot listen on ${opts.api.host}:${opts.api.port}: ${(e as Error).message}`);
      api = undefined;
    }
  }
  return {
    supervisor,
    ...(api ? { api } : {}),
    ...(apiUrl ? { apiUrl } : {}),
    token,
    ...(kernelPlaneFile ? { kernelPlaneFile } : {}),
  };
}

export async function runDaemon(opts: DaemonOptions, load: ConfigLoader): Promise<number> {
  const h = await startDaemon(opts, load);
  if (typeof h === 'number') return h;
  // Type=notify (contrib/keepvs.service): READY=1 once every worker runs, RELOADING=1 ... READY=1
  // around a SIGHUP reload, STOPPING=1 at the start of a stop
  const systemd = systemdNotifier();
  const sdNotify = (state: string) => {
    const err = systemd?.notify(state);
    if (err) h.supervisor.logger.log('warning', `sd_notify: ${err}`);
  };
  void h.supervisor.started().then(() => {
    h.supervisor.logger.log('info', 'Startup complete');
    sdNotify('READY=1\nSTATUS=Startup complete');
  });
  return new Promise<number>((resolve) => {
    const shutdown = async (sig: string) => {
      h.supervisor.logger.log('notice', `Received ${sig}`);
      sdNotify('STOPPING=1');
      await h.supervisor.stop();
      await h.api?.close();
      removePid(opts.pidFile);
      if (h.kernelPlaneFile) releaseKernelPlane(h.kernelPlaneFile);
      h.supervisor.logger.log('notice', `Stopped Keepvs v${VERSION}`);
      resolve(0);
      // stray handles must not keep a stopped daemon alive
      setTimeout(() => process.exit(0), 200).unref();
    };
    process.on('SIGTERM', () => void shutdown('SIGTERM'));
    process.on('SIGINT', () => void shutdown('SIGINT'));
    process.on('SIGHUP', () => {
      sdNotify(reloadingMessage());
      const r = h.supervisor.reload();
      sdNotify(`READY=1\nSTATUS=${r.message}`);
    });
    const dump = (kind: 'data' | 'stats') => {
      try {
        h.supervisor.dump(kind);
      } catch (e) {
        h.supervisor.logger.log('error', `Dump failed: ${(e as Error).message}`);
      }
    };
    process.on('SIGUSR1', () => dump('data'));
    process.on('SIGUSR2', () => dump('stats'));
  });
}
