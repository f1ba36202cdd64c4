/**
 * Health-check policy as keepalived applies it (check_api.c, ipwrapper.c), driven by the injected
 * Clock: each checker runs every delay_loop after a random warmup (staggering many servers); a
 * failure is retried `retry` times, delay_before_retry apart, before the server goes down; one
 * success brings it back; `alpha` starts it down. A real server is up when all its checkers are.
 * Per virtual server, the sum of live weights against quorum +- hysteresis gives quorum up/down.
 */
import type { Config, RealServer, VirtualServer } from '../config/model.js';
import { type HealthView, healthKey, serviceKeysOf } from '../lb/desired.js';
import { destId, serviceId } from '../lb/types.js';
import type { Clock, TimerHandle } from '../util/clock.js';
import type { EventSink } from '../util/events.js';
import type { Logger } from '../util/logger.js';
import { createChecker } from './index.js';
import type { CheckIo, HealthChecker } from './types.js';

interface CheckerState {
  readonly id: string;
  readonly fingerprint: string;
  readonly checker: HealthChecker;
  readonly config: RealServer['checkers'][number];
  up: boolean;
  retries: number;
  weight?: number;
  timer?: TimerHandle;
  abort?: AbortController;
  lastReason: string;
  lastDurationMs: number;
  runs: number;
  failures: number;
}

interface RsState {
  readonly id: string;
  readonly rs: RealServer;
  readonly vsLabel: string;
  readonly services: string[];
  readonly destId: string;
  checkers: CheckerState[];
  up: boolean;
  weight: number;
}

interface VsState {
  readonly vs: VirtualServer;
  readonly label: string;
  readonly services: string[];
  readonly servers: RsState[];
  quorumUp: boolean;
}

export interface CheckManagerDeps {
  readonly clock: Clock;
  readonly io: CheckIo;
  readonly logger: Logger;
  readonly events: EventSink;
  readonly random?: () => number;
}

export interface RealServerHealthSnapshot {
  readonly service: string;
  readonly dest: string;
  readonly up: boolean;
  readonly weight: number;
  readonly checkers: readonly {
    type: string;
    up: boolean;
    reason: string;
    durationMs: number;
    runs: number;
    failures: number;
  }[];
}

export interface CheckSnapshot {
  readonly servers: readonly RealServerHealthSnapshot[];
  readonly quorum: readonly { service: string; up: boolean }[];
}

function vsLabel(vs: VirtualServer): string {
  const k = vs.key;
  const proto = vs.protocol.toLowerCase();
  if (k.kind === 'fwmark') return `FWM ${k.fwmark}`;
  if (k.kind === 'group') return `[${k.group}]:${proto}`;
  return `[${k.address}]:${proto}:${k.port}`;
}

export class CheckManager {
  private vss: VsState[] = [];
  private readonly listeners = new Set<() => void>();
  private running = false;

  constructor(
    private config: Config,
    private readonly deps: CheckManagerDeps,
  ) {
    this.vss = this.build(config, new Map());
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private changed(): void {
    for (const l of this.listeners) l();
  }

  private build(config: Config, previous: Map<string, CheckerState>): VsState[] {
    const out: VsState[] = [];
    for (const vs of config.virtualServers) {
      const services = serviceKeysOf(vs, config).map(serviceId);
      const label = vsLabel(vs);
      const servers: RsState[] = vs.realServers.map((rs) => {
        const did = destId({ address: rs.address, port: rs.port }, rs.family);
        const id = `${label}|${did}`;
        const checkers = rs.checkers.map((c, i) => {
          const cid = `${id}|${i}|${c.type}`;
          const fingerprint = JSON.stringify({ ...c, loc: undefined });
          const prev = previous.get(cid);
          const st: CheckerState = {
            id: cid,
            fingerprint,
            checker: createChecker(c, this.deps.io, config),
            config: c,
            up: prev && prev.fingerprint === fingerprint ? prev.up : !c.alpha,
            retries: 0,
            lastReason: prev?.lastReason ?? 'not checked yet',
            lastDurationMs: prev?.lastDurationMs ?? 0,
            runs: prev?.runs ?? 0,
            failures: prev?.failures ?? 0,
            ...(prev?.weight !== undefined ? { weight: prev.weight } : {}),
          };
          return st;
        });
        const up = checkers.every((c) => c.up);
        return { id, rs, vsLabel: label, services, destId: did, checkers, up, weight: this.rsWeight(rs, checkers) };
      });
      const st: VsState = { vs, label, services, servers, quorumUp: true };
      st.quorumUp = this.quorumOk(st, true);
      out.push(st);
    }
    return out;
  }

  private rsWeight(rs: RealServer, checkers: CheckerState[]): number {
    const dyn = checkers.find((c) => c.weight !== undefined);
    return dyn?.weight ?? rs.weight;
  }

  /** keepalived update_quorum_state: gain at >= quorum + hysteresis, lose below quorum - hysteresis. */
  private quorumOk(v: VsState, current: boolean): boolean {
    const sum = v.servers.filter((s) => s.up).reduce((n, s) => n + s.weight, 0);
    if (sum === 0 && v.servers.length > 0) return false;
    if (current) return sum >= v.vs.quorum - v.vs.hysteresis;
    return sum >= v.vs.quorum + v.vs.hysteresis;
  }

  start(): void {
    this.running = true;
    for (const v of this.vss)
      for (const s of v.servers) for (const c of s.checkers) this.schedule(v, s, c, this.warmupDelay(c));
  }

  private warmupDelay(c: CheckerState): number {
    // spread first checks over [0, warmup] so many servers do not start in one burst
    return (this.deps.random ?? Math.random)() * c.config.warmup * 1000;
  }

  private schedule(v: VsState, s: RsState, c: CheckerState, delayMs: number): void {
    c.timer?.cancel();
    if (!this.running) return;
    c.timer = this.deps.clock.setTimer(delayMs, () => void this.runOnce(v, s, c));
  }

  private async runOnce(v: VsState, s: RsState, c: CheckerState): Promise<void> {
    if (!this.running) return;
    const ac = new AbortController();
    c.abort = ac;
    const started = this.deps.clock.now();
    // every check has a hard deadline, whatever the checker does
    const hard = this.deps.clock.setTimer(
      (c.config.connectTimeout + 1) * 1000 + (c.config.type === 'MISC_CHECK' ? c.config.miscTimeout * 1000 : 0),
      () => ac.abort(),
    );
    let result: { ok: boolean; reason: string; weight?: number };
    try {
      result = await c.checker.run({ address: s.rs.address, port: s.rs.port, weight: s.rs.weight }, ac.signal);
    } catch (e) {
      result = { ok: false, reason: `checker error: ${e instanceof Error ? e.message : String(e)}` };
    }
    hard.cancel();
    if (!this.running || c.abort !== ac) return;
    c.lastDurationMs = this.deps.clock.now() - started;
    c.runs++;
    this.record(v, s, c, result);
  }

  /** The retry policy, separated from I/O so tests can drive it with a fake clock. */
  record(v: VsState, s: RsState, c: CheckerState, result: { ok: boolean; reason: string; weight?: number }): void {
    c.lastReason = result.reason;
    const cfg = c.config;
    if (result.ok) {
      c.retries = 0;
      const weightChanged = result.weight !== undefined && result.weight !== c.weight;
      if (result.weight !== undefined) c.weight = result.weight;
      if (!c.up) {
        c.up = true;
        this.deps.logger.log('info', result.reason);
        this.update(v, s, `${result.reason}`);
      } else if (weightChanged) this.update(v, s, result.reason);
      this.schedule(v, s, c, cfg.delayLoop * 1000);
      return;
    }
    c.failures++;
    if (c.up && c.retries < cfg.retry) {
      c.retries++;
      if (this.deps.logger) this.deps.logger.log('debug', `${result.reason}; retry ${c.retries} of ${cfg.retry}`);
      this.schedule(v, s, c, cfg.delayBeforeRetry * 1000);
      return;
    }
    c.retries = 0;
    if (c.up) {
      c.up = false;
      this.deps.logger.log('warning', result.reason);
      this.update(v, s, result.reason);
    } else if (cfg.logAllFailures) this.deps.logger.log('warning', result.reason);
    this.schedule(v, s, c, cfg.delayLoop * 1000);
  }

  private update(v: VsState, s: RsState, reason: string): void {
    const up = s.checkers.every((c) => c.up);
    const weight = this.rsWeight(s.rs, s.checkers);
    const at = this.deps.clock.wallNow();
    const rsLabel = `[${s.rs.address}]:${v.vs.protocol.toLowerCase()}:${s.rs.port}`;
    if (up !== s.up) {
      s.up = up;
      this.deps.logger.log(
        'notice',
        `${up ? 'Adding' : 'Removing'} service ${rsLabel} ${up ? 'to' : 'from'} VS ${v.label}`,
      );
      for (const svc of v.services)
        this.deps.events.emit({ type: 'rs-health', service: svc, dest: s.destId, up, reason, at });
    }
    if (weight !== s.weight) {
      s.weight = weight;
      for (const svc of v.services)
        this.deps.events.emit({ type: 'rs-weight', service: svc, dest: s.destId, weight, reason, at });
    }
    const q = this.quorumOk(v, v.quorumUp);
    if (q !== v.quorumUp) {
      v.quorumUp = q;
      this.deps.logger.log(
        'notice',
        `${q ? 'Gained' : 'Lost'} quorum ${v.vs.quorum}+${v.vs.hysteresis} for VS ${v.label}`,
      );
      for (const svc of v.services) this.deps.events.emit({ type: 'vs-quorum', service: svc, up: q, at });
    }
    this.changed();
  }

  health(): HealthView {
    const dests = new Map<string, { up: boolean; weight?: number }>();
    const quorumUp = new Map<string, boolean>();
    for (const v of this.vss) {
      for (const svc of v.services) {
        quorumUp.set(svc, v.quorumUp);
        for (const s of v.servers) {
          const dyn = s.checkers.find((c) => c.weight !== undefined);
          dests.set(healthKey(svc, s.destId), { up: s.up, ...(dyn ? { weight: s.weight } : {}) });
        }
      }
    }
    return { dests, quorumUp };
  }

  snapshot(): CheckSnapshot {
    const servers: RealServerHealthSnapshot[] = [];
    const quorum: { service: string; up: boolean }[] = [];
    for (const v of this.vss) {
      for (const svc of v.services) {
        quorum.push({ service: svc, up: v.quorumUp });
        for (const s of v.servers) {
          servers.push({
            service: svc,
            dest: s.destId,
            up: s.up,
            weight: s.weight,
            checkers: s.checkers.map((c) => ({
              type: c.config.type,
              up: c.up,
              reason: c.lastReason,
              durationMs: c.lastDurationMs,
              runs: c.runs,
              failures: c.failures,
            })),
          });
        }
      }
    }
    return { servers, quorum };
  }

  /** Keeps the state of checkers whose configuration did not change, so nothing flaps. */
  reload(config: Config): void {
    const previous = new Map<string, CheckerState>();
    for (const v of this.vss) for (const s of v.servers) for (const c of s.checkers) previous.set(c.id, c);
    const wasRunning = this.running;
    this.stopTimers();
    this.config = config;
    this.vss = this.build(config, previous);
    this.running = wasRunning;
    if (wasRunning) {
      for (const v of this.vss) {
        for (const s of v.servers) {
          for (const c of s.checkers)
            this.schedule(
              v,
              s,
              c,
              previous.has(c.id)
                ? c.config.delayLoop * 1000 * (this.deps.random ?? Math.random)()
                : this.warmupDelay(c),
            );
        }
      }
    }
    this.changed();
  }

  private stopTimers(): void {
    for (const v of this.vss) {
      for (const s of v.servers) {
        for (const c of s.checkers) {
          c.timer?.cancel();
          c.abort?.abort();
          c.abort = undefined;
        }
      }
    }
  }

  stop(): void {
    this.running = false;
    this.stopTimers();
  }
}
