/**
 * Active-active announcing (docs/scale-out.md): the supervisor's part. Each second it feeds the
 * LVS worker's last snapshot (health per service, data plane) and the maintenance switch to the
 * announcer policy (check/policy-announce.ts, the one owner of the decision) and applies the
 * announced set to the private FRR bgpd (os/frr-bgp.ts). Runs in the supervisor because bgpd must
 * keep announcing while an LVS worker restarts and the kernel plane forwards on; a snapshot older
 * than STALE_MS counts as "data plane down".
 */
import { type AnnounceInput, AnnouncePolicy, type AnnounceRule } from '../check/policy-announce.js';
import type { BgpAnnounce, Config } from '../config/model.js';
import { virtualServerId } from '../lb/ids.js';
import { FrrBgp, type NeighborState, vipPrefix } from '../os/frr-bgp.js';
import { ChildProcessRunner } from '../os/process-runner.js';
import { routeGet } from '../os/route.js';
import type { Clock } from '../util/clock.js';
import type { BgpStatus, LvsSnapshot } from './status.js';

const STALE_MS = 5000;

export function announceRules(c: Config): AnnounceRule[] {
  const byPrefix = new Map<string, { id: string; minHealthy: number }[]>();
  for (const vs of c.virtualServers) {
    if (!vs.bgpAnnounce || vs.key.kind !== 'address') continue;
    const p = vipPrefix(vs.key.address);
    const list = byPrefix.get(p) ?? [];
    list.push({ id: virtualServerId(vs), minHealthy: vs.bgpAnnounce.minHealthy });
    byPrefix.set(p, list);
  }
  return [...byPrefix].map(([prefix, services]) => ({ prefix, services }));
}

/** The announcer's view of an LVS snapshot. */
export function announceInput(lvs: LvsSnapshot | undefined, fresh: boolean, maintenance: boolean): AnnounceInput {
  const services: Record<string, { quorumUp: boolean; healthy: number }> = {};
  // a real server counts when its checks pass and the data plane can send it traffic (DR: MAC known)
  const planes = new Map((lvs?.dataplane.services ?? []).map((s) => [s.id, s]));
  for (const s of lvs?.checks.detail.services ?? []) {
    const plane = planes.get(s.id);
    if (plane && plane.listener !== 'listening') {
      services[s.id] = { quorumUp: s.quorumUp, healthy: 0 };
      continue;
    }
    const notForwarding = new Set((plane?.dests ?? []).filter((d) => d.forwarding === false).map((d) => d.id));
    services[s.id] = {
      quorumUp: s.quorumUp,
      healthy: s.realServers.filter((r) => r.up && r.weight > 0 && !notForwarding.has(r.id)).length,
    };
  }
  return { dataPlaneUp: !!lvs && fresh, maintenance, services };
}

export interface AnnouncerLog {
  log(level: 'error' | 'warning' | 'notice' | 'info', message: string): void;
}

export class BgpAnnouncer {
  private readonly policy: AnnouncePolicy;
  private readonly frr: FrrBgp;
  private bgp: BgpAnnounce;
  private error: string | undefined;
  private started = false;
  private busy = false;
  private applied: string | undefined;
  private neighborStates: NeighborState[] = [];
  private lastNeighbors = new Map<string, string>();

  constructor(
    config: Config,
    private readonly clock: Clock,
    private readonly logger: AnnouncerLog,
  ) {
    this.bgp = config.bgpAnnounce!;
    this.policy = new AnnouncePolicy(clock, this.timers(), announceRules(config));
    this.frr = new FrrBgp({ runner: new ChildProcessRunner(), ...(this.bgp.frrDir ? { dir: this.bgp.frrDir } : {}) });
  }

  private timers() {
    return { holdDownMs: this.bgp.holdDownS * 1000, holdDownMaxMs: this.bgp.holdDownMaxS * 1000 };
  }

  private fail(message: string): void {
    if (this.error !== message) this.logger.log('error', `BGP: ${message}; VIPs are not announced`);
    this.error = message;
  }

  private async routerId(): Promise<string> {
    if (this.bgp.routerId) return this.bgp.routerId;
    const v4 = this.bgp.neighbors.find((n) => n.family === 4);
    if (!v4) throw new Error('bgp_announce needs router_id when every neighbor is IPv6');
    return (await routeGet(v4.address)).source;
  }

  private async ensureStarted(): Promise<boolean> {
    if (this.started) return true;
    const why = FrrBgp.unavailable();
    if (why) {
      this.fail(why);
      return false;
    }
    try {
      await this.frr.start(this.bgp, await this.routerId());
      this.started = true;
      this.applied = undefined;
      this.error = undefined;
      this.logger.log('notice', `BGP: FRR bgpd running for AS ${this.bgp.localAs} (${this.frr.dir})`);
      return true;
    } catch (e) {
      this.fail(`FRR did not start: ${(e as Error).message}`);
      return false;
    }
  }

  /** One evaluation; never throws (errors are logged and shown in the status). */
  async tick(lvs: LvsSnapshot | undefined, lvsAt: number, maintenance: boolean): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const changes = this.policy.step(announceInput(lvs, this.clock.now() - lvsAt < STALE_MS, maintenance));
      for (const c of changes)
        this.logger.log(
          c.announce ? 'notice' : 'warning',
          `BGP: ${c.announce ? 'announcing' : 'withdrawing'} ${c.prefix} (${c.reason})`,
        );
      if (!(await this.ensureStarted())) return;
      if (!this.frr.running()) {
        this.started = false;
        this.fail('bgpd is not running');
        return;
      }
      const want = new Set(this.policy.announced());
      const key = [...want].sort().join(',');
      if (key !== this.applied) {
        await this.frr.apply(want);
        this.applied = key;
      }
      this.neighborStates = await this.frr.neighbors();
      for (const n of this.neighborStates) {
        if (this.lastNeighbors.get(n.address) !== n.state)
          this.logger.log(
            n.state === 'Established' ? 'notice' : 'warning',
            `BGP: neighbor ${n.address} ${n.state}${n.bfd ? ` (BFD ${n.bfd})` : ''}`,
          );
        this.lastNeighbors.set(n.address, n.state);
      }
      this.error = undefined;
    } catch (e) {
      this.applied = undefined;
      this.fail((e as Error).message);
    } finally {
      this.busy = false;
    }
  }

  /** Reload: new rules and timers; a changed block restarts bgpd (its sessions flap once). */
  reconfigure(config: Config): void {
    this.bgp = config.bgpAnnounce!;
    this.policy.configure(announceRules(config), this.timers());
    this.started = false;
    this.applied = undefined;
  }

  /** Stop: every VIP withdrawn first, so the routers move the flows before forwarding stops. */
  async stop(): Promise<void> {
    for (const p of this.policy.announced()) this.logger.log('notice', `BGP: withdrawing ${p} (stopping)`);
    await this.frr.stop(true);
  }

  status(): BgpStatus {
    return {
      speaker: 'frr-bgpd',
      dir: this.frr.dir,
      running: this.started && this.frr.running(),
      ...(this.error ? { error: this.error } : {}),
      neighbors: this.neighborStates,
      vips: this.policy.snapshot(),
    };
  }
}

export const wantsBgp = (c: Config): boolean => !!c.bgpAnnounce && c.virtualServers.some((v) => v.bgpAnnounce);
