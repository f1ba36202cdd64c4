/**
 * The LVS side of keepvs in one object: the virtual-server table, the data plane, the health
 * checks, and the rule that joins them: desired(config, health, operator overrides) -> diff ->
 * apply to the table, then to the data plane. Reload swaps the config and applies only the diff.
 */

import { CheckManager } from '../check/check-manager.js';
import type { Config } from '../config/model.js';
import { MemoryDataPlane } from '../dataplane/memory.js';
import { NftDataPlane } from '../dataplane/nft/plane.js';
import type { DataPlane, NodestPolicy } from '../dataplane/port.js';
import { ClusterDataPlane } from '../dataplane/proxy/cluster.js';
import { LB_REPLICA_MODULE } from '../dataplane/proxy/lb-replica.js';
import { ProxyDataPlane } from '../dataplane/proxy/proxy-plane.js';
import { SplitDataPlane } from '../dataplane/split.js';
import { BpfTunKernel, tunPlaneUnavailable } from '../dataplane/tun/kernel.js';
import { TunDataPlane } from '../dataplane/tun/plane.js';
import type { ConnGroup } from '../lb/conn-list.js';
import { type DesiredTable, desiredTable, timeoutsOp, virtualServerId } from '../lb/desired.js';
import { diffTables, type TableState, tableStateOf } from '../lb/diff.js';
import { withReplicaCounters } from '../lb/merge.js';
import { OperatorState, type OperatorStateData } from '../lb/operator.js';
import { LbTable } from '../lb/table.js';
import { type ConnSnapshot, destId, serviceId, type TableOp, type TableSnapshot } from '../lb/types.js';
import { readCtTimeouts } from '../os/conntrack-timeouts.js';
import { openConntrack } from '../os/ctnetlink.js';
import { NodeDialer } from '../os/dialer.js';
import { NodeFileReader } from '../os/file-reader.js';
import { LibNftables } from '../os/libnftables.js';
import { IprouteNetInfo } from '../os/netinfo.js';
import { NftNetlink } from '../os/nft-netlink.js';
import { interfaceMtu, routeGet } from '../os/route.js';
import type { Clock } from '../util/clock.js';
import type { EventSink } from '../util/events.js';
import type { Logger } from '../util/logger.js';
import type { ProcessRunner } from '../util/ports.js';
import type { LvsSnapshot, RealServerHealth } from './status.js';

/** Operator overrides from the API (drain, set weight), kept across reloads. */
export interface AdminOverride {
  readonly weight: number;
  readonly reason: string;
}

/** What an operator changed by hand (keepvsadm ops, API drains/weights): copied to the supervisor. */
export interface OperatorSnapshot {
  readonly table: OperatorStateData;
  /** [`${serviceId}|${destId}`, override] */
  readonly overrides: readonly (readonly [string, AdminOverride])[];
}

export interface LvsServiceDeps {
  readonly clock: Clock;
  readonly runner: ProcessRunner;
  readonly logger: Logger;
  readonly events: EventSink;
  readonly dataplane?: (table: LbTable) => DataPlane;
  readonly expireNodestConn?: boolean;
  /** PROXY header for TCP services without their own proxy_protocol (keepvs --proxy-protocol) */
  readonly proxyProtocol?: 'v1' | 'v2';
  /** UDP flows per proxy process (keepvs --udp-flows) */
  readonly maxUdpFlows?: number;
  /** > 1: a ClusterDataPlane of that many proxy processes, each with a table replica */
  readonly dataplaneWorkers?: number;
  /**
   * Unix sockets of proxy workers the supervisor forked (they outlive this process): the data
   * plane is a ClusterDataPlane controlling them, adopting the table they hold at start.
   */
  readonly proxySockets?: readonly string[];
  /** operator changes of an earlier LVS worker (the supervisor's copy) */
  readonly operator?: OperatorSnapshot;
  /** called after every operator change, with the state to give the next worker */
  readonly onOperatorChange?: (s: OperatorSnapshot) => void;
  /** 'nft': the kernel plane forwards the services (the proxy only those needing it); default proxy */
  readonly plane?: 'nft' | 'proxy';
  /** conntrack entries may come from a sync daemon, not only from the kernel plane's rules */
  readonly flowsFromElsewhere?: () => boolean;
}

const overrideKey = (service: string, dest: string): string => `${service}|${dest}`;
/** The table as ipvsadm shows it, with the kernel plane's connection counts for its services. */
function withKernelCounts(own: TableSnapshot, nft: NftDataPlane): TableSnapshot {
  const byId = new Map(nft.snapshot().services.map((s) => [s.id, s]));
  const templates = nft.templateCounts();
  return {
    ...own,
    services: own.services.map((s) => {
      const k = byId.get(s.id);
      if (!k) return s;
      const dests = new Map(k.dests.map((d) => [d.id, d]));
      let counted = false;
      const merged = s.dests.map((d) => {
        const kd = dests.get(destId(d, d.family));
        if (!kd) return d;
        // NAT/FNAT: nft counter sets (new connections, packets each way); TUN: what the tc-BPF program
        // sent each real server (replies never pass here)
        const c = nft.destCounters(s.id, d);
        if (c) counted = true;
        const stats = c
          ? c.stats
          : d.forward === 'tunnel'
            ? {
                ...d.stats,
                conns: kd.conns ?? d.stats.conns,
                inPkts: kd.inPkts ?? d.stats.inPkts,
                inBytes: kd.inBytes ?? d.stats.inBytes,
              }
            : d.stats;
        return {
          ...d,
          activeConns: kd.activeConns ?? d.activeConns,
          inactConns: kd.inactConns ?? d.inactConns,
          // ipvsadm --persistent-conn: the kernel's persistence map entries of this real server
          ...(s.persistentTimeout !== undefined ? { persistConns: templates.get(`${s.id}|${kd.id}`) ?? 0 } : {}),
          stats,
          ...(c ? { rates: c.rates } : {}),
        };
      });
      const kernelCounted = counted || merged.some((d) => d.forward === 'tunnel');
      const total = <K extends string>(pick: (d: (typeof merged)[number]) => Record<K, number>, fields: readonly K[]) =>
        Object.fromEntries(fields.map((f) => [f, merged.reduce((a, d) => a + pick(d)[f], 0)])) as Record<K, number>;
      return {
        ...s,
        ...(kernelCounted
          ? {
              stats: total((d) => d.stats, ['conns', 'inPkts', 'outPkts', 'inBytes', 'outBytes'] as const),
              ...(counted
                ? { rates: total((d) => d.rates, ['cps', 'inPps', 'outPps', 'inBps', 'outBps'] as const) }
                : {}),
            }
          : {}),
        dests: merged,
      };
    }),
  };
}

/** The proxy's side of expire_nodest_conn, as the table is given it. */
const nodestPolicy = (on: boolean): NodestPolicy => (on ? 'close' : 'keep');

/** The command line's data-plane options, as the proxy takes them. */
const proxyOptions = (deps: LvsServiceDeps) => ({
  ...(deps.proxyProtocol ? { proxyProtocol: { '*': deps.proxyProtocol } } : {}),
  ...(deps.maxUdpFlows ? { maxUdpFlows: deps.maxUdpFlows } : {}),
});

/** expire_nodest_conn: the command line's (deps) turns it on whatever the file says. */
const expireNodestOf = (config: Config, deps: LvsServiceDeps): boolean =>
  (deps.expireNodestConn ?? false) || config.globalDefs.expireNodestConn;

export class LvsService {
  readonly table: LbTable;
  private expireNodest: boolean;
  private dp: DataPlane;
  private cluster: ClusterDataPlane | null = null;
  readonly checks: CheckManager;
  private desired: DesiredTable = { services: [], diagnostics: [] };
  /** services this config manages; services added by hand with keepvsadm are left alone */
  private managed = new Set<string>();
  /** key: overrideKey(serviceId, destId) */
  readonly overrides = new Map<string, AdminOverride>();
  /** keepvsadm's changes on top of the desired table (lb/operator.ts) */
  private readonly operator: OperatorState;
  /** the desired table before operator changes, as of the last sync */
  private base: TableState = { services: [] };
  private pending = Promise.resolve();
  private reported = new Set<string>();
  /** the kernel plane, when --dataplane resolved to nft */
  private nft: NftDataPlane | null = null;
  /** full-NAT source addresses per table service (local_address_group) */
  private localAddresses = new Map<string, readonly string[]>();

  constructor(
    private config: Config,
    private readonly deps: LvsServiceDeps,
  ) {
    this.expireNodest = expireNodestOf(config, deps);
    this.table = new LbTable({ clock: deps.clock, expireNodestConn: this.expireNodest });
    const timeouts = timeoutsOp(config.globalDefs);
    if (timeouts) this.table.apply(timeouts);
    this.operator = new OperatorState(deps.operator?.table);
    for (const [k, o] of deps.operator?.overrides ?? []) this.overrides.set(k, o);
    const hand = this.operator.handTimeouts;
    if (hand) this.table.apply({ op: 'set-timeouts', ...hand });
    // until start() forks the proxy workers, ops only reach the table (nothing listens yet)
    if (!deps.dataplane && deps.plane === 'nft') {
      const net = new IprouteNetInfo(deps.runner);
      // TUN services: the tc-BPF plane, attached where each VIP lives (KV315 refused them if unavailable)
      const tunnel =
        tunPlaneUnavailable() === null
          ? new TunDataPlane({
              kernel: new BpfTunKernel(),
              routes: { resolve: routeGet, mtu: interfaceMtu },
              ingressOf: (key) => net.deviceOf(key.address, key.family),
              expireNodestConn: this.expireNodest,
            })
          : undefined;
      const elements = NftNetlink.open();
      const nft = new NftDataPlane({
        nft: new LibNftables(),
        ...(elements ? { elements } : {}),
        net,
        ...(tunnel ? { tunnel } : {}),
        conntrack: openConntrack(deps.runner, (m) => deps.logger.log('warning', m)),
        logger: deps.logger,
        expireNodestConn: this.expireNodest,
        ctTimeouts: () => readCtTimeouts(),
        ...(deps.flowsFromElsewhere ? { flowsFromElsewhere: deps.flowsFromElsewhere } : {}),
        context: (id) => {
          const laddrs = this.localAddresses.get(id);
          return laddrs ? { localAddresses: laddrs } : undefined;
        },
      });
      this.nft = nft;
      // no service needs the proxy yet (PROXY protocol services will): it stays in-process and idle
      this.dp = new SplitDataPlane(
        nft,
        new ProxyDataPlane(this.table, { expireNodestConn: nodestPolicy(this.expireNodest) }),
        () => false,
      );
    } else
      this.dp = deps.dataplane
        ? deps.dataplane(this.table)
        : this.useCluster()
          ? new MemoryDataPlane()
          : new ProxyDataPlane(this.table, {
              expireNodestConn: nodestPolicy(this.expireNodest),
              ...proxyOptions(deps),
            });
    this.checks = new CheckManager({
      config,
      clock: deps.clock,
      dialer: new NodeDialer(),
      runner: deps.runner,
      files: new NodeFileReader(),
      logger: deps.logger,
      events: deps.events,
    });
    this.checks.onChange(() => void this.sync());
  }

  get dataplane(): DataPlane {
    return this.dp;
  }

  private useCluster(): boolean {
    return (
      !this.deps.dataplane &&
      this.deps.plane !== 'nft' &&
      (this.deps.proxySockets !== undefined || (this.deps.dataplaneWorkers ?? 1) > 1)
    );
  }

  async start(): Promise<void> {
    if (this.useCluster()) {
      this.cluster = await ClusterDataPlane.start({
        workers: this.deps.dataplaneWorkers ?? 1,
        ...(this.deps.proxySockets ? { sockets: this.deps.proxySockets } : {}),
        tableModule: LB_REPLICA_MODULE,
        expireNodestConn: nodestPolicy(this.expireNodest),
        ...proxyOptions(this.deps),
        reconcile: (held) => this.reconcileOps(held),
        onWorkerExit: (index, code, signal) =>
          this.deps.logger.log(
            'error',
            `proxy worker ${index} exited (${signal ?? `code ${code}`}); forking it again in 1 s`,
          ),
      });
      this.dp = this.cluster;
      this.adopt(this.cluster.heldTables());
      this.cluster.reconcileAll();
    }
    await this.sync();
    this.checks.start();
  }

  /**
   * A new LVS worker meeting proxy workers that already forward (the previous one crashed): their
   * table becomes this table, so the first sync sends only what the configuration and operator
   * state change, and their connections and counters stay (IPVS keeps its table while
   * keepalived's checker restarts).
   */
  private adopt(held: readonly (TableSnapshot | null)[]): void {
    const table = held.find((t) => t !== null);
    if (!table || this.table.snapshot().services.length > 0) return;
    const ops = diffTables({ services: [] }, tableStateOf(table));
    for (const op of ops) this.table.apply(op);
    this.managed = new Set(table.services.map((s) => s.id));
    this.adopted = table.services.length;
    this.deps.logger.log(
      'notice',
      `adopted ${table.services.length} virtual services from ${held.filter((t) => t !== null).length} running proxy workers`,
    );
  }

  /** services taken over from running proxy workers at start (0: none were running) */
  adopted = 0;

  /** Recomputes the desired table and applies the difference; serialised. */
  sync(): Promise<void> {
    this.pending = this.pending
      .then(() => this.syncNow())
      .catch((e) => this.deps.logger.log('error', `apply failed: ${e}`));
    return this.pending;
  }

  private wanted(): TableState {
    this.desired = desiredTable(this.config, this.checks.lbHealthInput());
    // log each desired-state problem once, not on every health change
    for (const d of this.desired.diagnostics) {
      if (!this.reported.has(d)) this.deps.logger.log('warning', d);
    }
    this.reported = new Set(this.desired.diagnostics);
    const groups = new Map((this.config.localAddressGroups ?? []).map((g) => [g.name, g.addresses]));
    const vsById = new Map(this.config.virtualServers.map((vs) => [virtualServerId(vs), vs]));
    this.localAddresses = new Map();
    for (const s of this.desired.services) {
      const name = vsById.get(s.virtualServer)?.laddrGroup;
      const laddrs = name ? groups.get(name) : undefined;
      if (laddrs)
        this.localAddresses.set(
          serviceId(s.key),
          laddrs.filter((a) => a.family === s.key.family).map((a) => a.address),
        );
    }
    this.base = {
      services: this.desired.services.map((s) => {
        const sid = serviceId(s.key);
        return {
          key: s.key,
          params: s.params,
          dests: s.dests.map((d) => {
            // the API names a real server by its destId ([2001:db8::11]:80 for IPv6): the same id here
            const o = this.overrides.get(overrideKey(sid, destId(d.dest, s.key.family)));
            return o ? { dest: d.dest, params: { ...d.params, weight: o.weight } } : d;
          }),
        };
      }),
    };
    return this.operator.overlay(this.base);
  }

  private async syncNow(): Promise<void> {
    const want = this.wanted();
    const ids = new Set(want.services.map((s) => serviceId(s.key)));
    const managed = new Set([...this.managed, ...ids]);
    const ops = diffTables(tableStateOf(this.table.snapshot()), want, { managed });
    this.managed = ids;
    if (ops.length === 0) return;
    await this.applyOps(ops);
  }

  /**
   * keepvsadm's ops: applied like any other, and remembered (lb/operator.ts) so that the next
   * sync keeps them and the next LVS worker gets them. Serialised with sync().
   */
  applyOperatorOps(ops: readonly TableOp[]): Promise<{ ok: boolean; error?: string }[]> {
    const run = this.pending.then(async () => {
      const results = await this.applyOps(ops);
      for (const [i, r] of results.entries()) {
        const op = ops[i]!;
        if (r.ok) this.operator.record(op, this.base);
        // every keepvsadm change is logged and published, like the API's actions
        const { target, detail } = describeOp(op);
        this.deps.logger.log(
          r.ok ? 'notice' : 'warning',
          `keepvsadm: ${op.op} ${target}${detail ? ` ${detail}` : ''}${r.ok ? '' : ` refused: ${r.error}`}`,
        );
        if (r.ok)
          this.deps.events.emit({ type: 'admin', action: `keepvsadm ${op.op}`, target, detail, at: Date.now() });
      }
      this.operatorChanged();
      return results;
    });
    this.pending = run.then(
      () => {},
      (e) => this.deps.logger.log('error', `apply failed: ${e}`),
    );
    return run;
  }

  private operatorChanged(): void {
    this.deps.onOperatorChange?.({ table: this.operator.data(), overrides: [...this.overrides] });
  }

  /** Table first, then the data plane, for the ops the table accepted. */
  async applyOps(ops: readonly TableOp[]): Promise<{ ok: boolean; error?: string }[]> {
    const results = ops.map((op) => this.table.apply(op));
    for (const [i, r] of results.entries())
      if (!r.ok) this.deps.logger.log('warning', `table: ${ops[i].op} refused: ${r.error.message}`);
    await this.dp.apply(ops.filter((_, i) => results[i].ok));
    return results.map((r) => (r.ok ? { ok: true } : { ok: false, error: r.error.message }));
  }

  async reload(config: Config): Promise<void> {
    this.config = config;
    this.checks.reload(config);
    this.reloadExpireNodest(config);
    const timeouts = timeoutsOp(config.globalDefs);
    if (timeouts) {
      this.operator.forgetTimeouts();
      this.table.apply(timeouts);
      await this.cluster?.apply([timeouts]);
    }
    await this.sync();
  }

  /**
   * expire_nodest_conn from the reloaded global_defs (or on for good with --expire-nodest-conn):
   * the table, the kernel plane and every proxy worker follow it from the next removed real server.
   */
  private reloadExpireNodest(config: Config): void {
    const on = expireNodestOf(config, this.deps);
    if (on === this.expireNodest) return;
    this.expireNodest = on;
    this.table.expireNodestConn = on;
    this.nft?.setOptions({ expireNodestConn: nodestPolicy(on) });
    const proxy = this.dp instanceof SplitDataPlane ? this.dp.proxy : this.dp;
    proxy.setOptions?.({ expireNodestConn: nodestPolicy(on) });
    this.deps.logger.log('notice', `expire_nodest_conn ${on ? 'on' : 'off'} (reload)`);
  }

  /** True when `dest` is a configured real server of table service `service`. */
  hasRealServer(service: string, dest: string): boolean {
    return this.realServerHealth().some((s) => s.service === service && s.dest === dest);
  }

  setOverride(service: string, dest: string, override: AdminOverride | undefined): void {
    if (override) this.overrides.set(overrideKey(service, dest), override);
    else this.overrides.delete(overrideKey(service, dest));
    this.operatorChanged();
    void this.sync();
  }

  private readonly states = new Map<string, { up: boolean; since: number }>();

  /** When a real server entered its current health state (the first snapshot counts as the start). */
  private sinceOf(key: string, up: boolean): number {
    const s = this.states.get(key);
    if (s && s.up === up) return s.since;
    const now = this.deps.clock.wallNow();
    this.states.set(key, { up, since: now });
    return now;
  }

  /** Joins checker state (keyed by virtual_server) to the table's services. */
  realServerHealth(): RealServerHealth[] {
    const snap = this.checks.snapshot();
    const byVs = new Map(snap.services.map((s) => [s.id, s]));
    const out: RealServerHealth[] = [];
    for (const d of this.desired.services) {
      const vs = byVs.get(d.virtualServer);
      const sid = serviceId(d.key);
      for (const r of vs?.realServers ?? []) {
        out.push({
          service: sid,
          dest: r.id,
          up: r.up,
          weight: r.weight,
          checkers: r.checkers.map((c) => {
            const p = snap.probes[c.key];
            return {
              type: c.type,
              up: c.up,
              reason: c.lastReason,
              ...(p ? { latencyMs: p.lastMs, lastAt: p.lastAt } : {}),
              consecutiveFailures: p?.consecutiveFailures ?? 0,
            };
          }),
          since: this.sinceOf(`${sid}|${r.id}`, r.up),
        });
      }
    }
    return out;
  }

  /**
   * The ops that bring a proxy worker holding `held` (null: a new one) to this table: its
   * timeouts, then only the services and real servers that differ, so that connections stay.
   */
  private reconcileOps(held: TableSnapshot | null): TableOp[] {
    const t = this.table.timeoutsNow();
    return [
      { op: 'set-timeouts', tcp: t.tcp, tcpfin: t.tcpfin, udp: t.udp },
      ...diffTables(held ? tableStateOf(held) : { services: [] }, tableStateOf(this.table.snapshot())),
    ];
  }

  /** The table as ipvsadm shows it: with proxy workers, their replicas' counters summed. */
  tableSnapshot(): TableSnapshot {
    const own = this.table.snapshot();
    if (this.nft) return withKernelCounts(own, this.nft);
    return this.cluster ? withReplicaCounters(own, this.cluster.tableSnapshots()) : own;
  }

  /** Connection entries (ipvsadm -Lc): from every proxy worker when there are several, and conntrack's. */
  async connections(): Promise<ConnSnapshot[]> {
    return (await this.connectionGroups()).flatMap((g) => g.conns);
  }

  /** The same entries by the plane that holds them (the API's connection list). */
  async connectionGroups(): Promise<ConnGroup[]> {
    if (this.nft)
      return [
        { plane: 'proxy', conns: this.table.connections() },
        { plane: 'kernel', conns: this.nft.connections(), unlisted: this.nft.unlistedFlows() },
      ];
    return [{ plane: 'proxy', conns: this.cluster ? await this.cluster.connections() : this.table.connections() }];
  }

  snapshot(): LvsSnapshot {
    return {
      table: this.tableSnapshot(),
      checks: { servers: this.realServerHealth(), detail: this.checks.snapshot() },
      dataplane: this.dataplane.snapshot(),
    };
  }

  /**
   * `keepKernel`: the worker lost its supervisor (SIGKILL): leave the kernel tables forwarding, as
   * IPVS keeps forwarding when keepalived dies, for the next keepvs to rebuild atomically.
   */
  async stop(drainMs = 2000, keepKernel = false): Promise<void> {
    if (keepKernel && this.nft && this.dp instanceof SplitDataPlane) {
      // detached first: stopping the checkers must not reach the kernel tables it leaves forwarding
      await this.nft.detach();
      this.checks.stop();
      await this.dp.proxy.stop(drainMs);
    } else {
      this.checks.stop();
      await this.dp.stop(drainMs);
    }
    this.table.dispose();
  }
}

/** A table op in words, for the log and the event stream. */
export function describeOp(op: TableOp): { target: string; detail: string } {
  switch (op.op) {
    case 'clear':
      return { target: 'all services', detail: '' };
    case 'zero':
      return { target: op.key ? serviceId(op.key) : 'all services', detail: '' };
    case 'set-timeouts':
      return { target: 'timeouts', detail: `tcp ${op.tcp} tcpfin ${op.tcpfin} udp ${op.udp}` };
    case 'add-service':
    case 'edit-service':
      return {
        target: serviceId(op.key),
        detail: `scheduler ${op.params.scheduler}${op.params.persistentTimeout !== undefined ? ` persistent ${op.params.persistentTimeout}` : ''}`,
      };
    case 'del-service':
      return { target: serviceId(op.key), detail: '' };
    case 'add-dest':
    case 'edit-dest':
      return {
        target: `${serviceId(op.key)} ${destId(op.dest, op.key.family)}`,
        detail: `${op.params.forward} weight ${op.params.weight}`,
      };
    case 'del-dest':
      return { target: `${serviceId(op.key)} ${destId(op.dest, op.key.family)}`, detail: '' };
  }
}
