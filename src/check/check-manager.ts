/**
 * The health-checking subsystem as the daemon sees it: builds one checker per configured
 * checker, runs them on the scheduler, feeds results to the policy, and publishes the
 * HealthView, KeepvsEvents and keepalived-style log lines.
 */
import { isIPv4 } from 'node:net';
import type { Checker as CheckerConfig, Config, RealServer, VirtualServer } from '../config/model.js';
import { formatTrio, rsPort, virtualServerId } from '../lb/ids.js';
import type { Clock } from '../util/clock.js';
import type { EventSink, KeepvsEvent } from '../util/events.js';
import type { Logger } from '../util/logger.js';
import type { ProcessRunner } from '../util/ports.js';
import { createChecker } from './index.js';
import { HealthPolicy, type PolicySnapshot } from './policy.js';
import { CheckScheduler, type SchedulerStats } from './runner.js';
import type { CheckPorts, CheckTarget, Dialer, FileReader, HealthView, LbHealthInput } from './types.js';

export interface CheckManagerOptions {
  readonly config: Config;
  readonly clock: Clock;
  readonly dialer: Dialer;
  readonly runner: ProcessRunner;
  readonly logger: Logger;
  readonly events: EventSink;
  /** FILE_CHECK reader; default: none (FILE_CHECK then reads every file as missing = 0) */
  readonly files?: FileReader;
  /** [0,1) source for warmup delays; default Math.random */
  readonly random?: () => number;
}

/** Per checker: how its probes went (for the dashboard; the policy keeps the health rules). */
export interface ProbeStats {
  /** duration of the last probe, ms (a timeout counts its full deadline) */
  readonly lastMs: number;
  /** wall-clock ms of the last result */
  readonly lastAt: number;
  readonly lastUp: boolean;
  /** failed probes in a row (0 after a success) */
  readonly consecutiveFailures: number;
  readonly probes: number;
}

export interface CheckManagerSnapshot extends PolicySnapshot {
  readonly running: boolean;
  /** by checker key */
  readonly probes: Readonly<Record<string, ProbeStats>>;
  readonly scheduler: SchedulerStats;
}

/** Grace on top of a checker's own timeout before the scheduler gives up on it. */
const DEADLINE_GRACE_MS = 1000;
/** ChildProcessRunner kills with SIGKILL 1 s after SIGTERM. */
const MISC_KILL_GRACE_MS = 1500;

const NO_FILES: FileReader = { readText: async () => undefined };

export function targetOf(vs: VirtualServer, rs: RealServer, c: CheckerConfig): CheckTarget {
  const connect = 'connectIp' in c ? (c as { connectIp?: string }).connectIp : undefined;
  const cport = 'connectPort' in c ? (c as { connectPort?: number }).connectPort : undefined;
  const address = connect ?? rs.address;
  return {
    vs,
    rs,
    address,
    port: cport ?? rsPort(vs, rs),
    family: connect !== undefined ? (isIPv4(connect) ? 4 : 6) : rs.family,
    weight: rs.weight,
  };
}

function timeoutMsOf(c: CheckerConfig): number {
  if (c.type === 'MISC_CHECK') return c.miscTimeout * 1000 + MISC_KILL_GRACE_MS;
  const n = c.type === 'HTTP_GET' || c.type === 'SSL_GET' ? Math.max(1, c.urls.length) : 1;
  return c.connectTimeout * 1000 * n + DEADLINE_GRACE_MS;
}

export class CheckManager {
  private config: Config;
  private policy: HealthPolicy;
  private readonly scheduler: CheckScheduler;
  private readonly ports: CheckPorts;
  private readonly listeners = new Set<(view: HealthView) => void>();
  private readonly log: Logger;
  private readonly random: () => number;
  private running = false;
  private dirty = false;
  private readonly probeStarts = new Map<string, number>();
  private readonly probeStats = new Map<string, ProbeStats>();

  constructor(private readonly opts: CheckManagerOptions) {
    this.config = opts.config;
    this.log = opts.logger;
    this.random = opts.random ?? Math.random;
    this.ports = { dialer: opts.dialer, runner: opts.runner, files: opts.files ?? NO_FILES };
    this.scheduler = new CheckScheduler(opts.clock);
    this.policy = new HealthPolicy(this.config, this.hooks());
    this.warnUnsupported(this.config);
  }

  /**
   * Settings keepvs accepts but does not act on are said out loud, never silently ignored.
   * (fast_recovery needs no warning: keepvs always checks every url of a probe back to back.)
   */
  private warnUnsupported(config: Config): void {
    for (const vs of config.virtualServers) {
      if (vs.haSuspend)
        this.log.log('warning', `ha_suspend is not supported; checks of VS ${virtualServerId(vs)} always run`);
      for (const rs of vs.realServers)
        for (const c of rs.checkers) {
          const at = `${c.loc.file}:${c.loc.line}`;
          if ('bindIf' in c && c.bindIf !== undefined)
            this.log.log('warning', `${at}: ${c.type} bind_if is not supported`);
          if ('fwmark' in c && c.fwmark !== undefined)
            this.log.log('warning', `${at}: ${c.type} fwmark is not supported`);
        }
    }
  }

  start(): void {
    if (this.running) return;
    // a restart after stop() begins from fresh state, as a new keepalived checker process would
    if (this.policy.isStopped()) this.policy = new HealthPolicy(this.config, this.hooks());
    this.running = true;
    this.schedule();
    this.flush();
  }

  /** Stops every probe (sockets and children released) and applies omega notifiers. */
  stop(): void {
    this.scheduler.stop();
    if (!this.running) return;
    this.running = false;
    this.policy.stop();
    this.dirty = true;
    this.flush();
  }

  /** Applies a new configuration, migrating the state of unchanged checkers (no flapping). */
  reload(config: Config): void {
    this.scheduler.stop();
    this.config = config;
    this.policy = new HealthPolicy(config, this.hooks(), this.policy);
    this.warnUnsupported(config);
    this.dirty = true;
    if (this.running) this.schedule();
    this.flush();
  }

  health(): HealthView {
    return this.policy.health();
  }

  /** The same health keyed for src/lb/desired.ts (its HealthInput shape). */
  lbHealthInput(): LbHealthInput {
    return this.policy.desiredInput();
  }

  snapshot(): CheckManagerSnapshot {
    return {
      ...this.policy.snapshot(),
      running: this.running,
      scheduler: this.scheduler.stats(),
      probes: Object.fromEntries(this.probeStats),
    };
  }

  /** Called with the new HealthView after any change of health, weight or quorum. */
  onChange(cb: (view: HealthView) => void): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }

  private hooks() {
    return {
      logger: this.log,
      wallNow: () => this.opts.clock.wallNow(),
      events: {
        emit: (e: KeepvsEvent) => {
          this.dirty = true;
          this.opts.events.emit(e);
        },
      },
      notify: (script: { argv: readonly string[]; user?: string; group?: string; command: string }, why: string) => {
        this.log.log('info', `Executing [${script.command}] for ${why}`);
        this.opts.runner
          .run(script.argv, { user: script.user, group: script.group })
          .then((r) => {
            if (r.spawnError) this.log.log('warning', `notify script [${script.command}] failed: ${r.spawnError}`);
          })
          .catch(() => {});
      },
    };
  }

  private flush(): void {
    if (!this.dirty) return;
    this.dirty = false;
    const view = this.policy.health();
    for (const l of this.listeners) {
      try {
        l(view);
      } catch {
        // a faulty listener must not stop the checks
      }
    }
  }

  private recordProbe(key: string, up: boolean): void {
    const started = this.probeStarts.get(key);
    const prev = this.probeStats.get(key);
    this.probeStats.set(key, {
      lastMs: started === undefined ? 0 : Math.round((this.opts.clock.now() - started) * 10) / 10,
      lastAt: this.opts.clock.wallNow(),
      lastUp: up,
      consecutiveFailures: up ? 0 : (prev?.consecutiveFailures ?? 0) + 1,
      probes: (prev?.probes ?? 0) + 1,
    });
  }

  private schedule(): void {
    const policy = this.policy;
    const keys = policy.checkerKeys();
    keys.forEach((key, i) => {
      const c = policy.checker(key)!;
      const cfg = c.config;
      const checker = createChecker(cfg, this.ports, this.config);
      const target = targetOf(c.vs, c.rs, cfg);
      // spread first probes over delay_loop, plus keepalived's random warmup
      const firstDelayMs = (i / keys.length) * cfg.delayLoop * 1000 + this.random() * cfg.warmup * 1000;
      const where = formatTrio(target.address, c.vs.protocol.toLowerCase(), target.port);
      this.scheduler.add({
        key,
        firstDelayMs,
        timeoutMs: timeoutMsOf(cfg),
        timeoutReason: `${cfg.type} to ${where} timed out.`,
        probe: (signal) => {
          this.probeStarts.set(key, this.opts.clock.now());
          return checker.run(target, signal);
        },
        onResult: (result) => {
          if (policy !== this.policy) return Number.POSITIVE_INFINITY;
          this.recordProbe(key, result.up);
          const next = policy.report(key, result);
          this.flush();
          return next;
        },
      });
    });
  }
}
