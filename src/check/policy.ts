/**
 * keepalived's health policy, written once for every checker (keepalived check/ipwrapper.c:
 * update_svr_checker_state, perform_svr_state, update_quorum_state, update_svr_wgt,
 * migrate_checkers; check_api.c retry handling). Pure: no timers, no I/O. The scheduler feeds it
 * probe results; it answers with the delay before the next probe and publishes transitions.
 */
import type { Checker as CheckerConfig, Config, RealServer, ScriptSpec, VirtualServer } from '../config/model.js';
import { formatRealServer, formatVirtualServer, realServerDestId, realServerId, virtualServerId } from '../lb/ids.js';
import type { EventSink } from '../util/events.js';
import type { Logger } from '../util/logger.js';
import { sameChecker } from './index.js';
import type { CheckResult, DestHealth, HealthView, LbHealthInput, ServiceHealth } from './types.js';

/** IPVS_WEIGHT_MAX-ish bound of a programmed weight (keepalived real_weight clamps to 0..65535). */
const WEIGHT_MAX = 65535;
/**
 * Checkers whose epilog keeps cycling through retries (delay_before_retry) even while down
 * (check_tcp.c tcp_epilog); the others (check_udp.c, check_misc.c, check_http.c) retry only
 * while up.
 */
const RETRY_WHILE_DOWN: ReadonlySet<CheckerConfig['type']> = new Set(['TCP_CHECK']);

export const realWeight = (w: number): number => Math.max(0, Math.min(WEIGHT_MAX, Math.trunc(w)));

export interface PolicyHooks {
  readonly logger: Logger;
  readonly events: EventSink;
  /** epoch ms for events */
  wallNow(): number;
  /** run a notify script (notify_up/down, quorum_up/down); keepalived appends no arguments */
  notify(script: ScriptSpec, why: string): void;
}

export interface CheckerState {
  readonly key: string;
  readonly config: CheckerConfig;
  readonly alpha: boolean;
  isUp: boolean;
  hasRun: boolean;
  retryIt: number;
  /** last dynamic weight reported (FILE_CHECK/misc_dynamic), for snapshots */
  lastReason: string;
}

export interface RsState {
  readonly id: string;
  readonly rs: RealServer;
  readonly inhibit: boolean;
  alive: boolean;
  effectiveWeight: number;
  numFailed: number;
  readonly checkers: CheckerState[];
}

export interface VsState {
  readonly id: string;
  readonly vs: VirtualServer;
  quorumUp: boolean;
  /** sorry server in the pool (keepalived ISALIVE(vs->s_svr)) */
  sorryActive: boolean;
  readonly rs: RsState[];
}

export interface PolicySnapshot {
  readonly services: readonly {
    readonly id: string;
    readonly quorumUp: boolean;
    readonly sorryActive: boolean;
    readonly weightSum: number;
    readonly realServers: readonly {
      readonly id: string;
      readonly up: boolean;
      readonly weight: number;
      readonly failedCheckers: number;
      readonly checkers: readonly {
        readonly key: string;
        readonly type: string;
        readonly up: boolean;
        readonly hasRun: boolean;
        readonly retries: number;
        readonly lastReason: string;
      }[];
    }[];
  }[];
}

export class HealthPolicy {
  private readonly services: VsState[] = [];
  private readonly byKey = new Map<string, { vs: VsState; rs: RsState; c: CheckerState }>();
  private readonly log: Logger;
  private stopped = false;

  /** Builds the state for `config`; with `previous`, migrates its state as keepalived's reload does. */
  constructor(
    config: Config,
    private readonly hooks: PolicyHooks,
    previous?: HealthPolicy,
  ) {
    this.log = hooks.logger;
    for (const vs of config.virtualServers) {
      const vsId = virtualServerId(vs);
      if (this.services.some((s) => s.id === vsId)) continue; // duplicate VS: the config reports it
      const vsState: VsState = { id: vsId, vs, quorumUp: false, sorryActive: false, rs: [] };
      for (const rs of vs.realServers) {
        const id = realServerDestId(vs, rs);
        if (vsState.rs.some((r) => r.id === id)) continue;
        const rsState: RsState = {
          id,
          rs,
          inhibit: rs.inhibitOnFailure || vs.inhibitOnFailure,
          alive: false,
          effectiveWeight: rs.weight,
          numFailed: 0,
          checkers: [],
        };
        rs.checkers.forEach((c, i) => {
          const alpha = c.alpha || rs.alpha || vs.alpha;
          const cs: CheckerState = {
            key: `${vsId}|${id}|${i}`,
            config: c,
            alpha,
            isUp: !alpha,
            hasRun: false,
            retryIt: 0,
            lastReason: '',
          };
          rsState.checkers.push(cs);
          this.byKey.set(cs.key, { vs: vsState, rs: rsState, c: cs });
        });
        rsState.numFailed = rsState.checkers.filter((c) => !c.isUp).length;
        rsState.alive = rsState.numFailed === 0;
        vsState.rs.push(rsState);
      }
      this.services.push(vsState);
    }
    if (previous) this.migrateFrom(previous);
    else {
      for (const s of this.services) {
        // set_quorum_states, then update_quorum_state(init)
        s.quorumUp = this.weightSum(s) >= s.vs.quorum + s.vs.hysteresis;
        this.updateQuorum(s, true);
      }
    }
  }

  isStopped(): boolean {
    return this.stopped;
  }

  /** Keys of every checker, in configuration order (the scheduler runs one loop per key). */
  checkerKeys(): string[] {
    return [...this.byKey.keys()];
  }

  checker(key: string): { vs: VirtualServer; rs: RealServer; config: CheckerConfig } | undefined {
    const e = this.byKey.get(key);
    return e ? { vs: e.vs.vs, rs: e.rs.rs, config: e.c.config } : undefined;
  }

  /**
   * A probe finished. Applies retry / transition / weight / quorum rules and returns the
   * delay in seconds before the next probe of this checker (delay_before_retry while retrying,
   * else delay_loop).
   */
  report(key: string, result: CheckResult): number {
    const e = this.byKey.get(key);
    if (!e || this.stopped) return Number.POSITIVE_INFINITY;
    const { vs, rs, c } = e;
    const cfg = c.config;
    c.lastReason = result.reason;
    if (result.up) {
      if (result.weight !== undefined) this.updateWeight(vs, rs, result.weight);
      if (!c.isUp || !c.hasRun) {
        if (!c.isUp) this.log.log('info', result.reason);
      }
      c.retryIt = 0;
      this.updateCheckerState(vs, rs, c, true);
      return cfg.delayLoop;
    }
    if (!c.isUp && c.hasRun && !RETRY_WHILE_DOWN.has(cfg.type)) {
      // udp/misc/http epilogs retry only while the checker is up: a down one waits delay_loop
      c.retryIt = 0;
      if (cfg.logAllFailures) this.log.log('info', result.reason);
      // check_http.c epilog: a known-failed url is re-checked after max(delay_before_retry, delay_loop)
      return cfg.type === 'HTTP_GET' || cfg.type === 'SSL_GET'
        ? Math.max(cfg.delayBeforeRetry, cfg.delayLoop)
        : cfg.delayLoop;
    }
    if (c.retryIt < cfg.retry) {
      c.retryIt++;
      if (c.isUp || cfg.logAllFailures)
        this.log.log(
          cfg.logAllFailures ? 'info' : 'debug',
          `${result.reason} Retry ${c.retryIt} of ${cfg.retry} in ${cfg.delayBeforeRetry}s.`,
        );
      return cfg.delayBeforeRetry;
    }
    if (c.isUp || cfg.logAllFailures) {
      this.log.log('info', result.reason);
      if (cfg.retry > 0)
        this.log.log('info', `Check on service ${formatRealServer(vs.vs, rs.rs)} failed after ${cfg.retry} retries.`);
    }
    c.retryIt = 0;
    this.updateCheckerState(vs, rs, c, false);
    return cfg.delayLoop;
  }

  /** Shutdown (keepalived clear_services): with omega, run RS-down and quorum-down notifiers. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    for (const s of this.services) {
      for (const r of s.rs) {
        if (!r.alive && !r.inhibit) continue;
        this.log.log(
          'info',
          `Shutting down service ${formatRealServer(s.vs, r.rs)} from VS ${formatVirtualServer(s.vs)}`,
        );
        if (!r.alive) continue;
        r.alive = false;
        if (s.vs.omega) this.rsNotify(s, r, 'shutdown');
      }
      s.sorryActive = false;
      if (s.quorumUp) {
        s.quorumUp = false;
        if (s.vs.omega) {
          this.hooks.events.emit({ type: 'vs-quorum', service: s.id, up: false, at: this.hooks.wallNow() });
          if (s.vs.quorumDown)
            this.hooks.notify(s.vs.quorumDown, `quorum down (shutdown) for VS ${formatVirtualServer(s.vs)}`);
        }
      }
    }
  }

  health(): HealthView {
    const services: Record<string, ServiceHealth> = {};
    for (const s of this.services) {
      const dests: Record<string, DestHealth> = {};
      for (const r of s.rs) {
        const inPool = this.stopped ? false : r.alive ? !s.sorryActive : r.inhibit;
        dests[r.id] = { up: r.alive, weight: r.alive ? realWeight(r.effectiveWeight) : 0, inPool };
      }
      const ss = s.vs.sorryServer;
      let sorry: ServiceHealth['sorry'];
      if (ss) {
        const dest = realServerDestId(s.vs, ss);
        const inPool = !this.stopped && (s.sorryActive || s.vs.sorryServerInhibit);
        sorry = { dest, up: s.sorryActive, weight: s.sorryActive ? 1 : 0, inPool };
      }
      services[s.id] = sorry ? { quorumUp: s.quorumUp, dests, sorry } : { quorumUp: s.quorumUp, dests };
    }
    return { services };
  }

  /** Health for the lb engine's desired-state builder (see LbHealthInput). */
  lbHealthInput(): LbHealthInput {
    const realServers: Record<string, Record<string, { up: boolean; weight?: number }>> = {};
    const quorum: Record<string, boolean> = {};
    for (const s of this.services) {
      const m: Record<string, { up: boolean; weight?: number }> = {};
      for (const r of s.rs) {
        const up = this.stopped ? false : r.alive;
        m[realServerId(r.rs)] =
          r.effectiveWeight === r.rs.weight ? { up } : { up, weight: realWeight(r.effectiveWeight) };
      }
      realServers[s.id] = m;
      quorum[s.id] = this.stopped ? false : s.quorumUp;
    }
    return { realServers, quorum };
  }

  /**
   * What the desired-state builder programs: the health above plus the verdict itself (who is in
   * the pool with which weight, and the sorry server), so that quorum, hysteresis, the sorry
   * server and inhibit_on_failure are decided here only.
   */
  desiredInput(): LbHealthInput {
    const pool: NonNullable<LbHealthInput['pool']> = Object.fromEntries(
      Object.entries(this.health().services).map(([id, h]) => [
        id,
        h.sorry ? { dests: h.dests, sorry: { inPool: h.sorry.inPool, weight: h.sorry.weight } } : { dests: h.dests },
      ]),
    );
    return { ...this.lbHealthInput(), pool };
  }

  snapshot(): PolicySnapshot {
    return {
      services: this.services.map((s) => ({
        id: s.id,
        quorumUp: s.quorumUp,
        sorryActive: s.sorryActive,
        weightSum: this.weightSum(s),
        realServers: s.rs.map((r) => ({
          id: r.id,
          up: r.alive,
          weight: realWeight(r.effectiveWeight),
          failedCheckers: r.numFailed,
          checkers: r.checkers.map((c) => ({
            key: c.key,
            type: c.config.type,
            up: c.isUp,
            hasRun: c.hasRun,
            retries: c.retryIt,
            lastReason: c.lastReason,
          })),
        })),
      })),
    };
  }

  // --- keepalived ipwrapper.c rules -------------------------------------------------------

  private weightSum(s: VsState): number {
    let sum = 0;
    for (const r of s.rs) if (r.alive) sum += realWeight(r.effectiveWeight);
    return sum;
  }

  private setCheckerState(rs: RsState, c: CheckerState, up: boolean): void {
    if (c.isUp === up) return;
    c.isUp = up;
    if (!up) rs.numFailed++;
    else if (rs.numFailed > 0) rs.numFailed--;
  }

  /** update_svr_checker_state: the RS changes only when this is its first/last failing checker. */
  private updateCheckerState(s: VsState, rs: RsState, c: CheckerState, alive: boolean): void {
    if (c.isUp === alive) {
      if (!c.hasRun) {
        if (c.alpha || !alive) this.rsNotify(s, rs, 'first check');
        c.hasRun = true;
      }
      return;
    }
    c.hasRun = true;
    if (alive) {
      if (rs.numFailed <= 1) this.performSvrState(s, rs, true);
    } else if (rs.numFailed === 0) this.performSvrState(s, rs, false);
    this.setCheckerState(rs, c, alive);
  }

  /** perform_svr_state: add/remove (or enable/disable with inhibit) the RS, notify, re-evaluate quorum. */
  private performSvrState(s: VsState, rs: RsState, alive: boolean): void {
    if (rs.alive === alive) return;
    const verb = alive ? (rs.inhibit ? 'Enabling' : 'Adding') : rs.inhibit ? 'Disabling' : 'Removing';
    const prep = rs.inhibit ? 'of' : alive ? 'to' : 'from';
    this.log.log('info', `${verb} service ${formatRealServer(s.vs, rs.rs)} ${prep} VS ${formatVirtualServer(s.vs)}`);
    rs.alive = alive;
    this.rsNotify(s, rs, alive ? 'checks passed' : 'checks failed');
    this.updateQuorum(s, false);
  }

  private rsNotify(s: VsState, rs: RsState, reason: string): void {
    this.hooks.events.emit({
      type: 'rs-health',
      service: s.id,
      dest: rs.id,
      up: rs.alive,
      reason,
      at: this.hooks.wallNow(),
    });
    const script = rs.alive ? rs.rs.notifyUp : rs.rs.notifyDown;
    if (script) this.hooks.notify(script, `${rs.alive ? 'notify_up' : 'notify_down'} ${formatRealServer(s.vs, rs.rs)}`);
  }

  /** update_svr_wgt */
  private updateWeight(s: VsState, rs: RsState, weight: number): void {
    const oldW = realWeight(rs.effectiveWeight);
    const newW = realWeight(weight);
    rs.effectiveWeight = weight;
    if (oldW === newW) return;
    this.log.log(
      'info',
      `Changing weight from ${oldW} to ${newW} for ${rs.alive ? '' : 'in'}active service ${formatRealServer(s.vs, rs.rs)} of VS ${formatVirtualServer(s.vs)}`,
    );
    this.hooks.events.emit({
      type: 'rs-weight',
      service: s.id,
      dest: rs.id,
      weight: newW,
      reason: 'dynamic weight',
      at: this.hooks.wallNow(),
    });
    this.updateQuorum(s, false);
  }

  /** update_quorum_state: hysteresis around quorum; the sorry server replaces the pool while quorum is lost. */
  private updateQuorum(s: VsState, init: boolean): void {
    const vs = s.vs;
    const sum = this.weightSum(s);
    const threshold = vs.quorum + (s.quorumUp ? -1 : 1) * vs.hysteresis;
    if (!s.quorumUp && sum >= threshold) {
      s.quorumUp = true;
      this.log.log(
        'info',
        `Gained quorum ${vs.quorum}+${vs.hysteresis}=${threshold} <= ${sum} for VS ${formatVirtualServer(vs)}`,
      );
      if (vs.sorryServer && s.sorryActive) {
        this.log.log(
          'info',
          `${vs.sorryServerInhibit ? 'Disabling' : 'Removing'} sorry server ${this.fmtSorry(s)} from VS ${formatVirtualServer(vs)}`,
        );
        s.sorryActive = false;
        this.log.log('info', `Adding alive servers to the pool for VS ${formatVirtualServer(vs)}`);
      }
      this.vsNotify(s);
      return;
    }
    if ((s.quorumUp && (sum === 0 || sum < threshold)) || (init && !s.quorumUp && vs.sorryServer && !s.sorryActive)) {
      s.quorumUp = false;
      this.log.log(
        'info',
        `${init ? 'Starting with quorum down' : 'Lost quorum'} ${vs.quorum}-${vs.hysteresis}=${threshold} > ${sum} for VS ${formatVirtualServer(vs)}`,
      );
      if (vs.sorryServer && !s.sorryActive) {
        this.log.log(
          'info',
          `${vs.sorryServerInhibit ? 'Enabling' : 'Adding'} sorry server ${this.fmtSorry(s)} to VS ${formatVirtualServer(vs)}`,
        );
        this.log.log('info', `Removing alive servers from the pool for VS ${formatVirtualServer(vs)}`);
        s.sorryActive = true;
      }
      this.vsNotify(s);
    }
  }

  private vsNotify(s: VsState): void {
    this.hooks.events.emit({ type: 'vs-quorum', service: s.id, up: s.quorumUp, at: this.hooks.wallNow() });
    const script = s.quorumUp ? s.vs.quorumUp : s.vs.quorumDown;
    if (script)
      this.hooks.notify(script, `${s.quorumUp ? 'quorum_up' : 'quorum_down'} VS ${formatVirtualServer(s.vs)}`);
  }

  private fmtSorry(s: VsState): string {
    const ss = s.vs.sorryServer!;
    return formatRealServer(s.vs, ss);
  }

  /** clear_diff_services / clear_diff_rs / migrate_checkers: carry state so unchanged servers never flap. */
  private migrateFrom(old: HealthPolicy): void {
    const oldById = new Map(old.services.map((s) => [s.id, s]));
    const newIds = new Set(this.services.map((s) => s.id));
    for (const os of old.services) {
      if (!newIds.has(os.id)) this.log.log('info', `Removing Virtual Server ${formatVirtualServer(os.vs)}`);
    }
    for (const s of this.services) {
      const os = oldById.get(s.id);
      if (!os) {
        s.quorumUp = this.weightSum(s) >= s.vs.quorum + s.vs.hysteresis;
        this.updateQuorum(s, true);
        continue;
      }
      s.quorumUp = os.quorumUp;
      s.sorryActive = os.sorryActive && s.vs.sorryServer !== undefined;
      const newRsIds = new Set(s.rs.map((r) => r.id));
      for (const orr of os.rs) {
        if (newRsIds.has(orr.id)) continue;
        this.log.log('info', `service ${formatRealServer(os.vs, orr.rs)} no longer exist`);
        if (orr.alive || orr.inhibit)
          this.log.log(
            'info',
            `Removing service ${formatRealServer(os.vs, orr.rs)} from VS ${formatVirtualServer(os.vs)}`,
          );
        if (orr.alive) {
          orr.alive = false;
          this.rsNotify(s, orr, 'removed from configuration');
        }
      }
      for (const r of s.rs) {
        const orr = os.rs.find((x) => x.id === r.id);
        if (!orr) {
          // a new RS on reload: alpha checkers start down (check_new_rs_state)
          continue;
        }
        r.alive = orr.alive;
        if (orr.rs.weight === r.rs.weight) r.effectiveWeight = orr.effectiveWeight;
        this.migrateCheckers(s, orr, r);
      }
      if (!s.vs.sorryServer && os.sorryActive) {
        this.log.log('info', `Removing sorry server from VS ${formatVirtualServer(s.vs)}`);
      }
      this.updateQuorum(s, true);
    }
  }

  private migrateCheckers(s: VsState, orr: RsState, r: RsState): void {
    const used = new Set<CheckerState>();
    for (const nc of r.checkers) {
      const oc = orr.checkers.find((c) => !used.has(c) && sameChecker(c.config, nc.config));
      if (!oc) continue;
      used.add(oc);
      if (oc.hasRun) nc.isUp = oc.isUp;
      else nc.isUp = oc.isUp;
      nc.hasRun = oc.hasRun;
      nc.lastReason = oc.lastReason;
      // as migrate_checkers: a failed checker needs one success; keep retry progress within bounds
      if (!nc.isUp) nc.retryIt = nc.config.retry;
      else nc.retryIt = Math.min(oc.retryIt, nc.config.retry);
    }
    r.numFailed = r.checkers.filter((c) => c.hasRun && !c.isUp).length;
    const anyRun = r.checkers.some((c) => c.hasRun);
    if (r.numFailed > 0 || (!r.alive && !anyRun)) {
      for (const c of r.checkers) {
        if (c.hasRun) continue;
        if (c.alpha) c.isUp = false;
        c.retryIt = c.config.retry;
      }
    }
    // unrun non-alpha checkers count as up; unrun alpha ones as down
    r.numFailed = r.checkers.filter((c) => !c.isUp).length;
    if (r.numFailed === 0 && !r.alive) this.performSvrState(s, r, true);
    else if (r.numFailed > 0 && r.alive) this.performSvrState(s, r, false);
  }
}
