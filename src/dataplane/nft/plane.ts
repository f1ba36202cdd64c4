/**
 * The kernel data plane: TableOps -> a model of services (IPVS list order, persistence ids) ->
 * nft commands (render.ts) -> one libnftables transaction per tick, whatever number of ops
 * arrived in it. Owns only its tables; the first transaction rebuilds them atomically (a previous
 * keepvs's rules forward until the commit, so traffic flows across a restart). Counts come from
 * conntrack each second (ipvsadm's ActiveConn/InActConn, -Lnc), and the same loop rewrites the
 * slot maps of the connection-count schedulers (lc, wlc, sed, nq, ovf...) and of thresholds.
 */

import ipaddr from 'ipaddr.js';
import { type ContentBatch, type ElemValue, type SetChange, statKeyText } from '../../codec/nftables.js';
import type { Family } from '../../config/model.js';
import type { UnlistedEntries } from '../../lb/conn-list.js';
import { DEFAULT_TIMEOUTS, mergeTimeouts, stateTimeoutSeconds } from '../../lb/timeouts.js';
import {
  type ConnSnapshot,
  type ConnState,
  type DestParams,
  destId,
  type Endpoint,
  type Rates,
  type ServiceKey,
  type ServiceParams,
  type Stats,
  serviceId,
  type TableOp,
} from '../../lb/types.js';
import type { ConntrackPort, CtCounters, CtEntry, CtService, CtWanted } from '../../os/conntrack.js';
import { type CtTimeouts, ctIdleSeconds } from '../../os/conntrack-timeouts.js';
import { DUMP_KEEPS_UP_MS } from '../../os/conntrack-watch.js';
import type { NftRunner } from '../../os/libnftables.js';
import type { NetInfo } from '../../os/netinfo.js';
import type { NftContentWriter } from '../../os/nft-netlink.js';
import type { Logger } from '../../util/logger.js';
import type {
  DataPlane,
  DataPlaneDiagnostic,
  DataPlaneServiceSnapshot,
  DataPlaneSnapshot,
  RuntimeDataPlaneOptions,
} from '../port.js';
import { quietDestSnapshot } from '../port.js';
import { type KernelDest, type KernelMode, type KernelService, serviceObjects, TABLE } from './model.js';
import {
  addNodest,
  deleteNodest,
  NODEST_SETS,
  type NodestElem,
  type NodestSet,
  nodestElements,
  nodestHooks,
  parseNodestSet,
} from './nodest.js';
import {
  addService,
  baseNetdev,
  baseTable,
  contentPlan,
  DR_MAP_SIZE,
  deleteDeviceChain,
  deleteService,
  deviceChain,
  drDispatchMaps,
  flowClients,
  OPS_REV_MAP,
  OPS_RS_SET,
  opsHooks,
  opsKind,
  opsReplyKeys,
  pinsFlows,
  postrouting,
  RS_GUARD_SET,
  rebuild,
  STAT_SET_SIZE,
  STAT_SETS,
  serviceStatElements,
  setSize,
  statSetCommands,
  updateService,
} from './render.js';

/** Per service, what the config says beyond the TableOps (full-NAT source addresses). */
export interface ServiceContext {
  readonly localAddresses?: readonly string[];
}

export interface NftPlaneDeps {
  readonly nft: NftRunner;
  /**
   * Content-only ticks (weights, real servers up or down, the lc loop) as one nfnetlink batch
   * instead of a libnftables transaction (os/nft-netlink.ts); absent: everything through `nft`.
   */
  readonly elements?: NftContentWriter;
  readonly net: NetInfo;
  readonly conntrack: ConntrackPort;
  readonly logger: Logger;
  readonly context?: (serviceId: string) => ServiceContext | undefined;
  /** expire_nodest_conn: a removed real server's flows are reset */
  readonly expireNodestConn?: boolean;
  /**
   * The tc-BPF TUN plane (src/dataplane/tun/plane.ts): it gets every op too and forwards the services
   * whose real servers use tunnel forwarding, which this plane then leaves alone; absent: TUN
   * services are refused.
   */
  readonly tunnel?: DataPlane & { detach(): Promise<void> };
  /**
   * conntrack's per-state timeouts (the daemon: this namespace's sysctls, conntrack-timeouts.ts);
   * absent: a gone real server's connections are all dropped for the state's whole timeout
   */
  readonly ctTimeouts?: () => CtTimeouts;
  /** conntrack poll period, ms (default 1000; 0 = never, tests) */
  readonly pollMs?: number;
  /**
   * Flows may enter conntrack without passing this plane's rules (a connection-sync daemon commits
   * the peer's): the st_new counters then do not tell that nothing began (noNewFlows).
   */
  readonly flowsFromElsewhere?: () => boolean;
  /** least declared sizes of the stats sets and DR dispatch maps (render.ts; tests make them small) */
  readonly setSizes?: { readonly stats: number; readonly dr: number };
}

/** Elements the sized sets need: distinct stats elements per family, DR services per dispatch map. */
function sizedCounts(services: Iterable<KernelService>): { ip: number; ip6: number; dr: number } {
  const stats = { ip: new Set<string>(), ip6: new Set<string>() };
  const all: KernelService[] = [];
  for (const k of services) {
    all.push(k);
    for (const f of ['ip', 'ip6'] as const) for (const e of serviceStatElements(k, f)) stats[f].add(e);
  }
  return { ip: stats.ip.size, ip6: stats.ip6.size, dr: drMapCount(all) };
}

/** The most elements one DR dispatch map holds (DR services per family, port-0 apart). */
function drMapCount(services: Iterable<KernelService>): number {
  const dr = new Map<string, number>();
  for (const k of services)
    if (k.mode === 'dr' && k.key.kind === 'addr') {
      const m = `${k.family}${k.key.port === 0 ? 'p0' : ''}`;
      dr.set(m, (dr.get(m) ?? 0) + 1);
    }
  return Math.max(0, ...dr.values());
}

interface PlaneDest {
  readonly address: string;
  readonly port: number;
  params: DestParams;
  readonly mark: number;
  lastWeight: number;
  active: number;
  inact: number;
  overloaded: boolean;
  conns: number;
  /** smoothed holding time, s (lc, wlc; 0 = unknown) */
  holdS: number;
}

interface PlaneService {
  readonly key: ServiceKey;
  params: ServiceParams;
  /** IPVS list order: new destinations at the head */
  dests: PlaneDest[];
  nextMark: number;
  /**
   * DR flow pinning, expire_nodest_conn off: removed real servers (`addr|port`) by their mark, until
   * their pinned flows have timed out (render.ts @gone); one back in the service gets its mark again
   * and keeps its flows, as IPVS restores a destination from the trash
   */
  removed: Map<string, { mark: number; until: number }>;
}

/** Elements and counters of `nft -j list set` output: `addr . proto . port` -> packets, bytes. */
export function parseCounterSet(json: string): { key: string; packets: number; bytes: number }[] {
  const out: { key: string; packets: number; bytes: number }[] = [];
  try {
    const doc = JSON.parse(json) as { nftables?: { set?: { elem?: unknown[] } }[] };
    for (const item of doc.nftables ?? [])
      for (const e of item.set?.elem ?? []) {
        const el = (e as { elem?: { val?: { concat?: unknown[] }; counter?: { packets?: number; bytes?: number } } })
          .elem;
        const parts = el?.val?.concat;
        if (parts?.length !== 3) continue;
        out.push({
          key: parts.map(String).join(' . '),
          packets: el?.counter?.packets ?? 0,
          bytes: el?.counter?.bytes ?? 0,
        });
      }
  } catch {}
  return out;
}

/** Elements of a dynamic map (`nft -j list map`): key parts, seconds to expiry, value (a mark). */
export function parseDynamicMap(json: string): { key: (string | number)[]; expiresS: number; mark: number }[] {
  const out: { key: (string | number)[]; expiresS: number; mark: number }[] = [];
  try {
    const doc = JSON.parse(json) as { nftables?: { map?: { elem?: unknown[] } }[] };
    for (const item of doc.nftables ?? [])
      for (const e of item.map?.elem ?? []) {
        if (!Array.isArray(e) || e.length !== 2 || typeof e[1] !== 'number') continue;
        const el = (e[0] as { elem?: { val?: unknown; expires?: number } }).elem;
        const val = el?.val;
        const key =
          typeof val === 'string' || typeof val === 'number' ? [val] : (val as { concat?: unknown[] })?.concat;
        if (!Array.isArray(key) || !key.every((k) => typeof k === 'string' || typeof k === 'number')) continue;
        out.push({ key: key as (string | number)[], expiresS: el?.expires ?? 0, mark: e[1] });
      }
  } catch {}
  return out;
}

/** A stats element (`addr . proto . port`) as set-element bytes take it. */
function statElem(e: string): { key: ElemValue } {
  const [address, protocol, port] = e.split(' . ');
  return { key: { kind: 'addr-proto-port', address, protocol: protocol as 'tcp', port: Number(port) } };
}

const IPV6_FLOW_KEY_REASON =
  'pinned IPv6 DR flow: the flow map keeps only the low 96 bits of the client address (nft 1.0.6 cannot update a dynamic map with a longer key), and the client set has none or several addresses with them';

/** The values of a plain set (`nft -j list set`): addresses. */
function parseSetValues(json: string): string[] {
  const out: string[] = [];
  try {
    const doc = JSON.parse(json) as { nftables?: { set?: { elem?: unknown[] } }[] };
    for (const item of doc.nftables ?? [])
      for (const e of item.set?.elem ?? []) {
        const v = typeof e === 'string' ? e : (e as { elem?: { val?: unknown } }).elem?.val;
        if (typeof v === 'string') out.push(v);
      }
  } catch {}
  return out;
}

/** The low 96 bits of an IPv6 address (header bytes 12-23 of its packets: render.ts flowKey). */
function low96(address: string): bigint | null {
  try {
    const b = ipaddr.IPv6.parse(address).toByteArray();
    let v = 0n;
    for (const x of b.slice(4)) v = (v << 8n) | BigInt(x);
    return v;
  } catch {
    return null;
  }
}

/**
 * An IPv6 flow-map key (low 96 bits of the client address, both ports in one 32-bit word) with its
 * client, when exactly one pinned client has those bits; else null.
 */
function flow6(
  key: readonly (string | number)[],
  clients: Map<bigint, string[]>,
): { client: string; sport: number; dport: number } | null {
  const [low, ports] = key;
  let bits: bigint;
  try {
    bits = BigInt(low);
  } catch {
    return null;
  }
  const found = clients.get(bits);
  if (found?.length !== 1) return null;
  const p = Number(ports);
  return { client: found[0], sport: p >>> 16, dport: p & 0xffff };
}

/** conntrack TCP states as IPVS names them (ip_vs_proto_tcp.c tcp_state_name). */
export function ipvsState(e: CtEntry): ConnState {
  if (e.protocol === 'udp') return 'UDP';
  switch (e.state) {
    case 'ESTABLISHED':
      return 'ESTABLISHED';
    case 'SYN_SENT':
    case 'SYN_RECV':
      return 'SYN_RECV';
    case 'FIN_WAIT':
      return 'FIN_WAIT';
    case 'CLOSE_WAIT':
      return 'CLOSE_WAIT';
    case 'LAST_ACK':
      return 'LAST_ACK';
    case 'TIME_WAIT':
      return 'TIME_WAIT';
    case 'CLOSE':
      return 'CLOSE';
    default:
      return 'NONE';
  }
}

/**
 * A removed real server whose flows are dropped (expire_nodest_conn off, nodest.ts) until `until`
 * (ms), IPVS's entry timeout; then its conntrack entries go and its elements leave the sets. The
 * kernel's element timeout is NODEST_MARGIN_S longer: keepvs deletes them first (a delete of an
 * element the kernel timed out already would fail the transaction); if keepvs is gone, they still go.
 */
interface GoneDest {
  readonly key: ServiceKey;
  readonly dest: Endpoint;
  readonly elems: readonly NodestElem[];
  /** the elements' lifetime (the longest an entry can be dropped): the removal + the state's timeout */
  until: number;
  /**
   * its connections, each dropped until its own IPVS timer would fire (its last forwarded packet +
   * its state's timeout), read once the drop is in; null until then
   */
  conns: { readonly entry: CtEntry; readonly until: number }[] | null;
  /** listed by the keepvs before this one (its connections' own times are not known) */
  readonly adopted?: boolean;
  /** new: not in the kernel yet; in: there; renew: there, to be re-added with a new timeout; out: to delete */
  state: 'new' | 'in' | 'renew' | 'out';
}
export const NODEST_MARGIN_S = 60;

const goneId = (key: ServiceKey, dest: Endpoint): string => `${serviceId(key)}|${dest.address}|${dest.port}`;

const LOAD_SCHEDULERS = new Set(['lc', 'wlc', 'sed', 'nq', 'ovf', 'lblc', 'lblcr', 'twos']);

export class NftDataPlane implements DataPlane {
  private readonly services = new Map<string, PlaneService>();
  /** what the kernel holds, per service id */
  private readonly applied = new Map<string, KernelService>();
  private readonly devices = new Set<string>();
  /** The dispatch rules the device chains hold (drDispatchMaps of the applied services). */
  private deviceMaps = '';
  private readonly dirty = new Set<string>();
  private readonly diagnostics: DataPlaneDiagnostic[] = [];
  private readonly dr = new Map<string, KernelService['dr'] | null>();
  private readonly macs = new Map<string, string>();
  /**
   * DR services whose devices or real servers' MACs were not found at their last flush: looked up
   * again at each poll (a link whose carrier is not back yet has no route; a neighbour answers
   * later), else they would stay uninstalled, or their real servers without traffic, until some
   * other change touched them
   */
  private readonly drPending = new Set<string>();
  private initialized = false;
  /** expire_nodest_conn as a reload set it (setOptions); else deps.expireNodestConn */
  private expireNodest: boolean | undefined;
  private flushing: Promise<void> = Promise.resolve();
  /** expire_nodest_conn: real servers removed since the last flush, their flows flushed after it */
  private expiring: { key: ServiceKey; dest: Endpoint }[] = [];
  /** expire_nodest_conn off: removed NAT/FNAT real servers whose flows are dropped (nodest.ts) */
  private readonly gone = new Map<string, GoneDest>();
  /** the drop rules' (set, protocol) pairs the kernel holds per family ('' = no hook chains) */
  private goneRules: Record<'ip' | 'ip6', string> = { ip: '', ip6: '' };
  private goneTimer: NodeJS.Timeout | null = null;
  /** ipvsadm --set: how long a gone real server's flows stay dropped (its IPVS entries' timeout) */
  private timeouts = { ...DEFAULT_TIMEOUTS };
  /** the previous keepvs's gone real servers were read (adoptGone) */
  private adoptedGone = false;
  /** conntrack's per-state timeouts, read at the first removal */
  private ctTimeouts: CtTimeouts | undefined;
  private scheduled: Promise<void> | null = null;
  private conns: CtEntry[] = [];
  /** stats elements the kernel holds, per family */
  /** Stats elements in the kernel, with the number of services counting each (real servers are shared). */
  private statRefs: Record<'ip' | 'ip6', Map<string, number>> = { ip: new Map(), ip6: new Map() };
  /** the sizes the kernel's sized sets were declared with at the last rebuild */
  private declared = { ip: 0, ip6: 0, dr: 0 };
  /** per real-server element (`addr . proto . port`): counters now, at the last `zero`, and rates */
  private counters = new Map<string, Stats>();
  private zeroBase = new Map<string, Stats>();
  private rates = new Map<string, Rates>();
  private lastSample: { at: number; counters: Map<string, Stats> } | null = null;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  /** NAT ops: real server `addr . udp . port` -> the reverse chain its replies go to, per family */
  private opsRev: Record<'ip' | 'ip6', Map<string, string>> = { ip: new Map(), ip6: new Map() };
  /** NAT ops: whether a family's ops_pre/ops_post hook chains are installed */
  private opsHooked: Record<'ip' | 'ip6', boolean> = { ip: false, ip6: false };
  /** --stats packets/bytes from conntrack accounting (true) or the per-packet `stats` chain */
  private readonly ctCounting: boolean;
  /** conntrack's events followed (followConntrack; null: not asked yet) */
  private followingEvents: boolean | null = null;
  /** what followConntrack last settled: the need and whether events were asked for */
  private countsState: string | null = null;
  /** the last reason the event subscription was refused (said once) */
  private eventsRefused: string | null = null;
  /** per stats element, the last counts of its connections conntrack has destroyed (ctCounting) */
  private ctGone = new Map<string, CtCounters>();
  /** while the poll reads the table: the connections destroyed since the read began */
  private readDead: Set<string> | null = null;
  /** drains the destroy events between polls, so the socket's queue rarely fills */
  private drainTimer: NodeJS.Timeout | null = null;
  private drainFailed = false;
  /** a poll in flight: the timer's next tick skips instead of reading conntrack twice at once */
  private polling = false;
  /** the postrouting commands in the kernel, per family (rewritten only when they change) */
  private postText = '';
  /** transactions run through libnftables (tests, metrics) */
  transactions = 0;
  /** content batches applied over nfnetlink (tests, bench) */
  netlinkBatches = 0;
  /**
   * Per conntrack entry (by its original tuple object, which the events table keeps while the entry
   * does not change), the real server and stats element it counts for: a poll walks every entry,
   * 120 s of TIME_WAIT at the connection rate, and deriving these each second was most of the LVS
   * worker's CPU per new connection (docs/kernel-plane.md). Valid while `keyGen` is unchanged.
   */
  private keyMemo = new WeakMap<object, { gen: number; dest: string | null; stat: string | null }>();
  /** bumped by every change of services or real servers */
  private keyGen = 0;
  /** entries whose keys were derived, not taken from the memo (tests) */
  keyDerivations = 0;

  /** A reload changed expire_nodest_conn: the next removed real server's flows follow it. */
  setOptions(options: RuntimeDataPlaneOptions): void {
    if (options.expireNodestConn) this.expireNodest = options.expireNodestConn === 'close';
    this.deps.tunnel?.setOptions?.(options);
  }

  constructor(private readonly deps: NftPlaneDeps) {
    // packets and bytes per real server from conntrack's own per-connection counters where it can
    // (no rule per packet: docs/kernel-plane.md), else from the `stats` forward chain's counters
    const why = deps.conntrack.countConnections ? deps.conntrack.countConnections() : 'not offered';
    this.ctCounting = why === null;
    if (why !== null && deps.conntrack.countConnections)
      deps.logger.log(
        'warning',
        `kernel data plane: per-connection counters unavailable (${why}): --stats packets and bytes are counted by an nft rule on every forwarded packet`,
      );
    const poll = deps.pollMs ?? 1000;
    if (poll > 0) {
      this.timer = setInterval(() => void this.poll(), poll);
      this.timer.unref();
      if (this.ctCounting) {
        this.drainTimer = setInterval(() => this.drainGone(), Math.max(50, poll / 4));
        this.drainTimer.unref();
      }
    }
  }

  async apply(ops: readonly TableOp[]): Promise<void> {
    for (const op of ops) this.applyOne(op);
    if (!this.initialized) this.dirty.add('*');
    this.followConntrack();
    await Promise.all([this.schedule(), this.deps.tunnel?.apply(ops)]);
  }

  /**
   * What needs each connection counted as it happens: a counting scheduler's slot map (lc, wlc,
   * ...) and a real server's connection thresholds (OVERLOAD). Null: nothing, the counts shown
   * (ActiveConn, InActConn, -Lnc) may come from the last dump.
   */
  private liveCountNeed(): string | null {
    for (const [id, s] of this.services) {
      if (this.tunnelled(s)) continue;
      if (LOAD_SCHEDULERS.has(s.params.scheduler)) return `${id}: ${s.params.scheduler}`;
      const d = s.dests.find((x) => x.params.uThreshold > 0);
      if (d) return `${id}: ${d.address} uthreshold`;
    }
    return null;
  }

  /**
   * Follows conntrack's events while a decision needs live counts (liveCountNeed) and a dump of the
   * table is too slow to give them at each refresh (dumpsKeepUp: on a small table the dump each
   * second is as live, and events cost a few messages per connection); says which. Called at each
   * apply and after each read (the table grows and shrinks).
   */
  private followConntrack(): void {
    const ct = this.deps.conntrack;
    if (!ct.followEvents) return;
    const need = this.liveCountNeed();
    const on = need !== null && !(ct.dumpsKeepUp?.() ?? false);
    const state = `${need ?? ''}|${on}`;
    if (state === this.countsState) return;
    const why = ct.followEvents(on);
    if (why === null) {
      this.countsState = state;
      this.followingEvents = on;
      this.eventsRefused = null;
      this.deps.logger.log(
        'info',
        on
          ? `kernel data plane: following conntrack events: ${need} counts each connection as it happens (a dump of the table is too slow for each second)`
          : need
            ? `kernel data plane: ${need} counts connections from a conntrack dump each second (one takes under ${DUMP_KEEPS_UP_MS} ms; conntrack events when the table grows past that)`
            : 'kernel data plane: connection counts from conntrack dumps (no counting scheduler or threshold): each second on a small table, at most 5% of the time on a large one',
      );
    } else if (on) {
      if (this.eventsRefused !== why)
        this.deps.logger.log(
          'warning',
          `kernel data plane: conntrack events ${why}: connection counts for ${need} come from dumps, each second on a small table, up to 30 s on a large one`,
        );
      this.eventsRefused = why;
      // asked again when the need or the table changes, not at each read
      this.countsState = state;
      this.followingEvents ??= false;
    } else {
      // kept on by the operator (KEEPVS_CT_EVENTS=1)
      if (this.followingEvents === null) this.deps.logger.log('info', `kernel data plane: conntrack events ${why}`);
      this.countsState = state;
      this.followingEvents = true;
    }
  }

  /** A service the TUN plane forwards (its real servers tunnel). */
  private tunnelled(s: PlaneService): boolean {
    return this.deps.tunnel !== undefined && s.dests[0]?.params.forward === 'tunnel';
  }

  private applyOne(op: TableOp): void {
    this.keyGen++;
    switch (op.op) {
      case 'add-service':
      case 'edit-service': {
        const id = serviceId(op.key);
        const s = this.services.get(id);
        if (s) s.params = op.params;
        else this.services.set(id, { key: op.key, params: op.params, dests: [], nextMark: 1, removed: new Map() });
        this.dirty.add(id);
        break;
      }
      case 'del-service': {
        const id = serviceId(op.key);
        const s = this.services.get(id);
        if (s) this.unlinkAll(id, s);
        this.services.delete(id);
        this.dirty.add(id);
        break;
      }
      case 'add-dest':
      case 'edit-dest': {
        const id = serviceId(op.key);
        const s = this.services.get(id);
        if (!s) break;
        const d = s.dests.find((x) => x.address === op.dest.address && x.port === op.dest.port);
        if (d) {
          d.params = op.params;
          if (op.params.weight > 0) d.lastWeight = op.params.weight;
        } else {
          this.comeBack(op.key, op.dest);
          this.addressTaken(op.key, op.dest.address);
          const back = s.removed.get(`${op.dest.address}|${op.dest.port}`);
          s.removed.delete(`${op.dest.address}|${op.dest.port}`);
          s.dests.unshift({
            address: op.dest.address,
            port: op.dest.port,
            params: op.params,
            mark: back ? back.mark : s.nextMark++,
            lastWeight: op.params.weight,
            active: 0,
            inact: 0,
            overloaded: false,
            conns: 0,
            holdS: 0,
          });
        }
        this.dirty.add(id);
        break;
      }
      case 'del-dest': {
        const id = serviceId(op.key);
        const s = this.services.get(id);
        if (!s) break;
        const gone = s.dests.find((x) => x.address === op.dest.address && x.port === op.dest.port);
        s.dests = s.dests.filter((x) => x !== gone);
        this.dirty.add(id);
        // flushed once the transaction that takes it out of the slot map has run (schedule): flushed
        // before, a packet of such a flow (a UDP stream's next datagram, a TCP segment conntrack picks
        // up again) is scheduled through the old map, maybe to the removed server again, and stays
        this.unlinked(id, s, op.dest, gone?.mark);
        break;
      }
      case 'clear':
        for (const [id, s] of this.services) {
          this.unlinkAll(id, s);
          this.dirty.add(id);
        }
        this.services.clear();
        break;
      case 'set-timeouts':
        this.timeouts = mergeTimeouts(this.timeouts, op);
        break;
      case 'zero': {
        // ipvsadm -Z: counters restart from what the kernel holds now (read now: the last poll's
        // values are up to a second old, and what came since would survive the zero)
        if (this.initialized) this.readCounters(Date.now(), this.liveNow());
        const ids = op.key ? [serviceId(op.key)] : [...this.services.keys()];
        for (const id of ids)
          for (const d of this.services.get(id)?.dests ?? []) {
            const k = this.statKey(id, d);
            const c = k ? this.counters.get(k) : undefined;
            if (k && c) this.zeroBase.set(k, c);
          }
        break;
      }
      default:
        break;
    }
  }

  /** A real server left its service: its flows are reset (expire_nodest_conn) or dropped. */
  private unlinked(id: string, s: PlaneService, dest: Endpoint, mark?: number): void {
    if (this.expireNodest ?? this.deps.expireNodestConn) this.expiring.push({ key: s.key, dest });
    else this.keepGone(id, s, s.key, dest, mark);
  }

  /**
   * A deleted service (or ipvsadm -C): IPVS unlinks each of its destinations (ip_vs_ctl.c
   * __ip_vs_del_service -> __ip_vs_unlink_dest clears IP_VS_DEST_F_AVAILABLE), so its established
   * connections are no-dest ones in ip_vs_in, as a removed real server's.
   */
  private unlinkAll(id: string, s: PlaneService): void {
    for (const d of s.dests) this.unlinked(id, s, { address: d.address, port: d.port }, d.mark);
  }

  /** One connection's conntrack entry goes (by its original tuple). */
  private async expireOne(key: ServiceKey, e: CtEntry): Promise<void> {
    const service: CtService = {
      address: e.original.dst,
      port: e.original.dport,
      client: { address: e.original.src, port: e.original.sport },
    };
    await this.deps.conntrack
      .flushDest(e.reply.src, e.reply.sport, e.protocol, key.family, service)
      .catch(() => undefined);
  }

  /** Resets a removed real server's flows: its conntrack entries for this service. */
  private async expire(key: ServiceKey, dest: Endpoint): Promise<void> {
    const ct = this.deps.conntrack;
    if (key.kind === 'fwmark') {
      // any VIP, any protocol: the mark is not in the entry
      for (const p of ['tcp', 'udp']) await ct.flushDest(dest.address, dest.port, p, key.family).catch(() => undefined);
      return;
    }
    // a real server without a port answers from the client's (the service's) port
    const port = dest.port || key.port;
    const service: CtService = { address: key.address, port: key.port };
    await ct.flushDest(dest.address, port, key.protocol, key.family, service).catch(() => undefined);
  }

  /**
   * expire_nodest_conn off: a removed real server's flows are dropped until its entries would expire
   * in IPVS (nodest.ts). Not for DR (no conntrack: the flow map's own, render.ts), TUN (its plane's)
   * or NAT ops (untracked: IPVS keeps no entry for a one-packet connection either).
   */
  private keepGone(id: string, s: PlaneService, key: ServiceKey, dest: Endpoint, mark?: number): void {
    const k = this.applied.get(id);
    if (k && pinsFlows(k) && mark !== undefined && s.params.flowPinTimeout !== undefined) {
      s.removed.set(`${dest.address}|${dest.port}`, { mark, until: Date.now() + s.params.flowPinTimeout * 1000 });
      return;
    }
    if (this.tunnelled(s) || k?.mode === 'dr' || (k && opsKind(k) === 'nat')) return;
    const elems = nodestElements(key, dest, !this.addressElsewhere(s, dest.address));
    if (!elems) {
      this.untold(id, dest.address);
      return;
    }
    const protocol = key.kind === 'addr' ? key.protocol : 'tcp';
    const until = Date.now() + (protocol === 'udp' ? this.timeouts.udp : this.timeouts.tcp) * 1000;
    const gid = goneId(key, dest);
    const was = this.gone.get(gid);
    this.gone.set(gid, { key, dest, elems, until, conns: null, state: was && was.state !== 'new' ? 'renew' : 'new' });
  }

  /** Whether a service other than `s` (or `s` on another port) has a real server at `address`. */
  private addressElsewhere(s: PlaneService | null, address: string, family = s?.key.family): boolean {
    for (const t of this.services.values())
      if (t.key.family === family && t.dests.some((d) => d.address === address && (t !== s || d.port !== 0)))
        return true;
    return false;
  }

  private untold(id: string, address: string): void {
    this.diagnose(
      'DP_NODEST_UNTOLD',
      id,
      `real server ${address} without a port in a fwmark service, its address in another service too: its flows cannot be told apart, they go on until conntrack expires them (expire_nodest_conn resets them)`,
    );
  }

  /**
   * A real server at `address` joined a service: a fwmark service's port-less one listed as gone by
   * its address alone would have this one's flows dropped too; it is unlisted (and said so).
   */
  private addressTaken(key: ServiceKey, address: string): void {
    for (const [gid, g] of this.gone)
      if (
        g.state !== 'out' &&
        g.key.family === key.family &&
        g.elems.some((e) => e.set === 'nodest_rsa') &&
        g.dest.address === address
      ) {
        this.unlist(gid, g);
        this.untold(g.key.kind === 'fwmark' ? serviceId(g.key) : gid, address);
      }
  }

  /** A removed real server is back in its service: IPVS restores it from the trash, its flows go on. */
  private comeBack(key: ServiceKey, dest: Endpoint): void {
    const gid = goneId(key, dest);
    const g = this.gone.get(gid);
    if (g) this.unlist(gid, g);
    // one a previous keepvs listed: by what its elements hold (a fwmark's mark, a port-less real
    // server's port are not in them)
    const elems = new Set((nodestElements(key, dest, true) ?? []).map((e) => `${e.family} ${e.set} ${e.key}`));
    for (const [id, a] of this.gone)
      if (a.adopted && a.elems.some((e) => elems.has(`${e.family} ${e.set} ${e.key}`))) this.unlist(id, a);
  }

  private unlist(gid: string, g: GoneDest): void {
    if (g.state === 'new') this.gone.delete(gid);
    else g.state = 'out';
  }

  /**
   * keepvs restarted: the real servers the previous one listed as gone (their elements outlive it in
   * the nodest sets) are dropped on until their time is up, unless the configuration has them in
   * their service again (IPVS: a destination added again is taken back from the trash). Read
   * before the first transaction rebuilds the tables; the times left are the elements' (minus the
   * margin they were given).
   */
  private adoptGone(): void {
    this.adoptedGone = true;
    const now = Date.now();
    let n = 0;
    for (const f of ['ip', 'ip6'] as const)
      for (const set of NODEST_SETS) {
        const r = this.deps.nft.run(`list set ${f} ${TABLE} ${set}`, true);
        if (!r.ok) continue;
        for (const l of parseNodestSet(f, set, r.output)) {
          if (this.inService(l.key, l.dest)) continue;
          const gid = `adopted|${l.elems.map((e) => `${e.family} ${e.set} ${e.key}`).join(',')}`;
          const until = now + Math.max(0, l.expiresS - NODEST_MARGIN_S) * 1000;
          this.gone.set(gid, {
            key: l.key,
            dest: l.dest,
            elems: l.elems,
            until,
            conns: null,
            adopted: true,
            state: 'new',
          });
          n++;
        }
      }
    if (n)
      this.deps.logger.log(
        'notice',
        `kernel data plane: ${n} removed real servers' connections still dropped (listed by the previous keepvs)`,
      );
  }

  /** Whether a configured service holds this real server (a fwmark one: any of the family's). */
  private inService(key: ServiceKey, dest: Endpoint): boolean {
    for (const s of this.services.values()) {
      if (s.key.family !== key.family || s.key.kind !== key.kind) continue;
      if (key.kind === 'addr' && serviceId(s.key) !== serviceId(key)) continue;
      const port = (d: Endpoint) => d.port || (s.key.kind === 'addr' ? s.key.port : 0);
      if (s.dests.some((d) => d.address === dest.address && port(d) === port(dest))) return true;
    }
    return false;
  }

  /**
   * The gone real servers' commands for this flush: elements in and out of the sets, and the hook
   * chains rewritten when their rules change. `full`: the tables are rebuilt, everything still
   * gone goes in again with what is left of its time.
   */
  private goneCommands(full: boolean): { cmds: string[]; rules: Record<'ip' | 'ip6', string> } {
    const now = Date.now();
    const ttl = (g: GoneDest) => (g.until - now) / 1000 + NODEST_MARGIN_S;
    const cmds: string[] = [];
    for (const g of this.gone.values()) {
      if (full) {
        if (g.state !== 'out') cmds.push(...addNodest(g.elems, () => ttl(g)));
        continue;
      }
      if (g.state === 'out' || g.state === 'renew') cmds.push(...deleteNodest(g.elems));
      if (g.state === 'new' || g.state === 'renew') cmds.push(...addNodest(g.elems, () => ttl(g)));
    }
    const rules = { ip: '', ip6: '' };
    for (const f of ['ip', 'ip6'] as const) {
      const pairs = new Map<string, readonly [NodestSet, string]>();
      for (const g of this.gone.values())
        if (g.state !== 'out')
          for (const e of g.elems) if (e.family === f) pairs.set(`${e.set} ${e.protocol}`, [e.set, e.protocol]);
      const list = [...pairs.values()].sort(
        (a, b) => NODEST_SETS.indexOf(a[0]) - NODEST_SETS.indexOf(b[0]) || a[1].localeCompare(b[1]),
      );
      rules[f] = list.map((p) => p.join(' ')).join(',');
      const had = full ? '' : this.goneRules[f];
      if (rules[f] !== had) cmds.push(...nodestHooks(f, list, had !== ''));
    }
    return { cmds, rules };
  }

  /** After a commit: what went in is in, what went out is forgotten; the timer for the next expiry. */
  private goneCommitted(rules: Record<'ip' | 'ip6', string>): void {
    const fresh: GoneDest[] = [];
    for (const [gid, g] of this.gone) {
      if (g.state === 'out') this.gone.delete(gid);
      else {
        if (g.state !== 'in') fresh.push(g);
        g.state = 'in';
      }
    }
    this.goneRules = rules;
    this.armGoneTimer();
    if (fresh.length) void this.measureGone(fresh);
  }

  /**
   * When each of a gone real server's connections would expire in IPVS. Its timer restarts (with the
   * state's timeout) on each packet it forwards (ip_vs_conn.c ip_vs_conn_put -> mod_timer), and not
   * on the packets ip_vs_in drops for a no-dest connection (__ip_vs_conn_put, before ip_vs_set_state),
   * so it fires the state's timeout after the last packet forwarded, not after the removal. Read after
   * the drop is in: conntrack's timeout, refreshed by every packet until then, tells that packet.
   */
  private async measureGone(fresh: readonly GoneDest[]): Promise<void> {
    // adopted: the drop has been refreshing conntrack's timeouts since the removal
    const gs = fresh.filter((g) => !g.adopted);
    if (!gs.length || !this.deps.ctTimeouts) return;
    const ct = this.deps.conntrack;
    // one read for every server removed in this transaction
    const vips = new Set(
      gs.map((g) => (g.key.kind === 'addr' ? `${g.key.family}|${g.key.address}` : `${g.key.family}|*`)),
    );
    const wanted: CtWanted = (f, dst) => vips.has(`${f}|${dst}`) || vips.has(`${f}|*`);
    let entries: CtEntry[];
    try {
      entries = await (ct.listFresh ? ct.listFresh(wanted) : ct.list(wanted));
    } catch {
      return; // then the whole lifetime, as before
    }
    const times = (this.ctTimeouts ??= this.deps.ctTimeouts());
    const now = Date.now();
    for (const g of gs) {
      if (this.gone.get(goneId(g.key, g.dest)) !== g || g.state !== 'in') continue;
      const key = g.key;
      const port = g.dest.port || (key.kind === 'addr' ? key.port : 0);
      const conns: { entry: CtEntry; until: number }[] = [];
      let last = now;
      for (const e of entries) {
        if (e.family !== key.family || e.reply.src !== g.dest.address || (port !== 0 && e.reply.sport !== port))
          continue;
        if (
          key.kind === 'addr' &&
          (e.original.dst !== key.address ||
            e.protocol !== key.protocol ||
            (key.port !== 0 && e.original.dport !== key.port))
        )
          continue;
        if (e.original.dst === e.reply.src && e.original.dport === e.reply.sport) continue; // not DNATed
        const idle = ctIdleSeconds(e, times);
        const t = stateTimeoutSeconds(ipvsState(e), this.timeouts);
        // never past the elements' own lifetime (their kernel timeout)
        const until = idle === null ? g.until : Math.min(g.until, now + (t - idle) * 1000);
        conns.push({ entry: e, until });
        last = Math.max(last, until);
      }
      g.conns = conns;
      g.until = last;
    }
    this.armGoneTimer();
  }

  private armGoneTimer(): void {
    if (this.goneTimer) clearTimeout(this.goneTimer);
    this.goneTimer = null;
    if (this.stopped) return;
    let next = Number.POSITIVE_INFINITY;
    for (const g of this.gone.values()) {
      if (g.state !== 'in') continue;
      // its own end too: with no connection left (or none found) it is due at once
      next = Math.min(next, g.until);
      for (const c of g.conns ?? []) next = Math.min(next, c.until);
    }
    for (const s of this.services.values()) for (const r of s.removed.values()) next = Math.min(next, r.until);
    if (next === Number.POSITIVE_INFINITY) return;
    this.goneTimer = setTimeout(() => void this.goneExpired(), Math.max(0, next - Date.now()));
    this.goneTimer.unref();
  }

  /**
   * Entries of gone real servers expired (as IPVS's would, their timer never restarted by the
   * dropped packets): their conntrack entries go first, then the drop, so no packet of theirs
   * reaches the real server again (a later one finds no entry, and is scheduled as a new flow).
   */
  private async goneExpired(): Promise<void> {
    this.goneTimer = null;
    const now = Date.now();
    // connections whose own time is up: each entry goes (its next packet is a new flow)
    for (const g of this.gone.values()) {
      if (g.state !== 'in' || !g.conns) continue;
      const over = g.conns.filter((c) => c.until <= now);
      if (!over.length) continue;
      g.conns = g.conns.filter((c) => c.until > now);
      for (const c of over) await this.expireOne(g.key, c.entry);
    }
    const due = [...this.gone.values()].filter((g) => g.state === 'in' && g.until <= now);
    for (const g of due) await this.expire(g.key, g.dest);
    for (const g of due) if (g.state === 'in') g.state = 'out';
    // DR: the pinned flows timed out by now, the marks leave @gone
    let dr = false;
    for (const [id, s] of this.services)
      for (const [k, r] of s.removed)
        if (r.until <= now) {
          s.removed.delete(k);
          this.dirty.add(id);
          dr = true;
        }
    if (due.length || dr) await this.schedule();
    else this.armGoneTimer();
  }

  /** Coalesces everything applied in this tick into one transaction. */
  private schedule(): Promise<void> {
    if (this.scheduled) return this.scheduled;
    this.scheduled = new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
      this.scheduled = null;
      this.flushing = this.flushing
        .then(() => {
          // the removals this flush carries (it takes the dirty set at once, before its first await)
          const expiring = this.expiring.splice(0);
          return this.flush().finally(() => {
            for (const x of expiring) void this.expire(x.key, x.dest);
          });
        })
        .catch((e) => this.fail(`${e}`));
      return this.flushing;
    });
    return this.scheduled;
  }

  private fail(message: string): void {
    this.deps.logger.log('error', `kernel data plane: ${message}`);
    this.diagnose('DP_NFT_FAILED', '*', message);
  }

  private diagnose(code: string, service: string, message: string): void {
    if (this.diagnostics.some((d) => d.code === code && d.service === service && d.message === message)) return;
    this.diagnostics.push({ code, service, message });
    if (this.diagnostics.length > 100) this.diagnostics.shift();
    this.deps.logger.log('warning', `kernel data plane: ${service}: ${message}`);
  }

  private modeOf(id: string, s: PlaneService): KernelMode | null {
    const forwards = new Set(s.dests.map((d) => d.params.forward));
    if (forwards.size > 1)
      this.diagnose(
        'DP_MIXED_FORWARD',
        id,
        `real servers with different forwarding methods (${[...forwards].join(', ')}); the first one's is used`,
      );
    const f = s.dests[0]?.params.forward;
    if (f === undefined) return this.applied.get(id)?.mode ?? 'nat';
    if (f === 'route') return 'dr';
    if (f === 'fullnat') return 'fullnat';
    if (f === 'tunnel') {
      if (this.deps.tunnel) return null; // the TUN plane's
      this.diagnose(
        'DP_UNSUPPORTED_FORWARD',
        id,
        'TUN forwarding needs the tc-BPF IPIP program, which this kernel plane does not have yet; service not installed',
      );
      return null;
    }
    return 'nat';
  }

  /** DR: ingress device (where the VIP lives), egress device and MAC towards the real servers, their MACs. */
  private async drInfo(id: string, s: PlaneService): Promise<KernelService['dr'] | null> {
    const net = this.deps.net;
    if (s.key.kind === 'fwmark') {
      this.diagnose(
        'DP_UNSUPPORTED_FWMARK',
        id,
        'fwmark services cannot use DR: the netdev ingress hook runs before marking',
      );
      return null;
    }
    let info = this.dr.get(id);
    if (!info) {
      const ingress = await net.deviceOf(s.key.address, s.key.family);
      const first = s.dests[0];
      const egress = first ? await net.routeDevice(first.address, s.key.family) : ingress;
      const egressMac = egress ? await net.linkMac(egress) : null;
      if (!ingress || !egress || !egressMac) {
        this.diagnose(
          'DP_DR_NO_ROUTE',
          id,
          `no device found for the VIP or the real servers (ingress ${ingress}, egress ${egress}); looked up again each second`,
        );
        this.drPending.add(id);
        return null;
      }
      info = { ingress, egress, egressMac };
      this.dr.set(id, info);
    }
    let pending = false;
    for (const d of s.dests) {
      const k = `${info.egress}|${d.address}`;
      if (!this.macs.has(k)) {
        const mac = await net.neighbourMac(d.address, s.key.family, info.egress);
        if (mac) this.macs.set(k, mac);
        else {
          pending = true;
          this.diagnose(
            'DP_DR_NO_MAC',
            id,
            `real server ${d.address}: no MAC on ${info.egress} yet; no traffic until it answers`,
          );
        }
      }
    }
    if (pending) this.drPending.add(id);
    else this.drPending.delete(id);
    return info;
  }

  private async kernelService(id: string): Promise<KernelService | null> {
    const s = this.services.get(id);
    if (!s) return null;
    const mode = this.modeOf(id, s);
    if (!mode) return null;
    const family: Family = s.key.family;
    let dr: KernelService['dr'] | undefined;
    if (mode === 'dr') {
      const info = await this.drInfo(id, s);
      if (!info) return null;
      dr = info;
    }
    const ctx = this.deps.context?.(id);
    const dests: KernelDest[] = s.dests.map((d) => {
      const mac = dr ? this.macs.get(`${dr.egress}|${d.address}`) : undefined;
      return {
        address: d.address,
        port: d.port,
        weight: d.params.weight,
        lastWeight: d.lastWeight,
        overloaded: d.overloaded,
        activeConns: d.active,
        inactConns: d.inact,
        ...(d.holdS > 0 ? { holdS: d.holdS } : {}),
        mark: d.mark,
        ...(mac ? { mac } : {}),
      };
    });
    const ops = s.params.ops && s.key.kind === 'addr' && s.key.protocol === 'udp';
    if (ops && opsKind({ params: s.params, key: s.key, mode }) === null)
      this.diagnose(
        'DP_OPS_PER_FLOW',
        id,
        mode === 'fullnat'
          ? 'ops under full-NAT: a reply reaches the client only through the connection entry that holds its address, so datagrams are scheduled per flow'
          : 'ops on a port-0 service: replies cannot be told apart by port without a connection entry, so datagrams are scheduled per flow',
      );
    if (mode === 'dr' && !ops && !['sh', 'dh', 'mh', 'fo'].includes(s.params.scheduler))
      this.diagnose(
        'DP_DR_HASHED',
        id,
        `DR has no connection table here: scheduler ${s.params.scheduler} runs as a weighted Maglev hash of source address and port (flows split by weight, the same on every director), not in ${s.params.scheduler} order`,
      );
    if (mode === 'fullnat' && !(ctx?.localAddresses?.length ?? 0))
      this.diagnose('DP_FNAT_NO_LADDR', id, 'full-NAT without local addresses (laddr_group_name): SNAT not installed');
    return {
      id,
      key: s.key,
      family,
      params: s.params,
      mode,
      dests,
      ...(ctx?.localAddresses ? { localAddresses: ctx.localAddresses } : {}),
      ...(dr ? { dr } : {}),
      ...(s.removed.size ? { goneMarks: [...s.removed.values()].map((r) => r.mark).sort((a, b) => a - b) } : {}),
    };
  }

  private async flush(): Promise<void> {
    if (this.stopped) return;
    if (!this.initialized && !this.adoptedGone) this.adoptGone();
    const full = !this.initialized || this.dirty.has('*');
    const ids = full ? new Set([...this.services.keys(), ...this.applied.keys()]) : new Set(this.dirty);
    this.dirty.clear();
    const next = new Map<string, KernelService | null>();
    for (const id of ids) if (id !== '*') next.set(id, await this.kernelService(id));
    const cmds: string[] = [];
    const target = new Map(this.applied);
    const min = this.deps.setSizes ?? { stats: STAT_SET_SIZE, dr: DR_MAP_SIZE };
    let declared = this.declared;
    if (full) {
      target.clear();
      // sized from the count when there are more than the default sizes hold
      const n = sizedCounts([...next.values()].filter((k): k is KernelService => !!k));
      declared = { ip: setSize(n.ip, min.stats), ip6: setSize(n.ip6, min.stats), dr: setSize(n.dr, min.dr) };
      cmds.push(
        ...rebuild([`ip ${TABLE}`, `ip6 ${TABLE}`, `netdev ${TABLE}`]),
        ...baseTable('ip', declared.ip, !this.ctCounting),
        ...baseTable('ip6', declared.ip6, !this.ctCounting),
        ...baseNetdev(declared.dr),
      );
    }
    for (const [id, ks] of next) {
      const before = full ? undefined : this.applied.get(id);
      if (
        before &&
        (!ks ||
          ks.mode !== before.mode ||
          (before.mode === 'dr') !== (ks.mode === 'dr') ||
          (opsKind(before) === 'nat') !== (opsKind(ks) === 'nat'))
      ) {
        cmds.push(...deleteService(before));
        target.delete(id);
      }
      if (!ks) continue;
      const prev = target.get(id);
      if (!prev) cmds.push(...addService(ks));
      else cmds.push(...updateService(prev, ks));
      target.set(id, ks);
    }
    // ingress chains for the devices DR services arrive on
    const wantDevices = new Set([...target.values()].flatMap((k) => (k.dr ? [k.dr.ingress] : [])));
    const haveDevices = full ? new Set<string>() : this.devices;
    const deviceCmds: string[] = [];
    const maps = drDispatchMaps(target.values());
    const mapsText = maps.join(',');
    const mapsChanged = full || mapsText !== this.deviceMaps;
    for (const d of wantDevices)
      if (!haveDevices.has(d)) deviceCmds.push(...deviceChain(d, maps));
      else if (mapsChanged) deviceCmds.push(...deviceChain(d, maps, true));
    for (const d of haveDevices) if (!wantDevices.has(d)) deviceCmds.push(...deleteDeviceChain(d));
    // DR service chains must exist before a device chain jumps into the dispatch: add devices last,
    // remove them first
    const removing = deviceCmds.filter((c) => c.startsWith('delete'));
    const adding = deviceCmds.filter((c) => !c.startsWith('delete'));
    const fnatTouched =
      full || [...next.values(), ...[...ids].map((i) => this.applied.get(i))].some((k) => k?.mode === 'fullnat');
    const all = [...target.values()];
    let post = fnatTouched ? [...postrouting('ip', all), ...postrouting('ip6', all)] : [];
    const postText = fnatTouched ? post.join('\n') : this.postText;
    if (!full && postText === this.postText) post = [];
    const ops = this.opsCommands(full, ids, next, target);
    // only the services this tick touches: a weight change must not walk every real server
    const statNext = { ip: new Map<string, number>(), ip6: new Map<string, number>() };
    const statChanges: SetChange[] = [];
    const stats = (['ip', 'ip6'] as const).flatMap((f) => {
      const refs = statNext[f];
      if (full) {
        for (const k of all) for (const e of serviceStatElements(k, f)) refs.set(e, (refs.get(e) ?? 0) + 1);
        return statSetCommands(f, [...refs.keys()], []);
      }
      const have = this.statRefs[f];
      const count = (e: string, by: number) => refs.set(e, (refs.get(e) ?? have.get(e) ?? 0) + by);
      for (const [id, ks] of next) {
        for (const e of serviceStatElements(this.applied.get(id), f)) count(e, -1);
        for (const e of serviceStatElements(ks, f)) count(e, 1);
      }
      const added = [...refs].filter(([e, n]) => n > 0 && !have.has(e)).map(([e]) => e);
      const gone = [...refs].filter(([e, n]) => n <= 0 && have.has(e)).map(([e]) => e);
      if (added.length || gone.length)
        for (const set of [...STAT_SETS, RS_GUARD_SET])
          statChanges.push({ family: f, table: TABLE, set, del: gone.map(statElem), add: added.map(statElem) });
      return statSetCommands(f, added, gone);
    });
    if (!full) {
      // a change that outgrows a sized set (the kernel would refuse its elements: ENFILE) rebuilds
      // the tables with sizes from the new count, in one transaction as any rebuild
      // counted without copying the ruleset's maps: a weight change must not cost in proportion to
      // the services (the 1,000 x 10 ruleset's 10,000 stats elements, bench/kernel-weight.ts)
      const live = (f: 'ip' | 'ip6') => {
        const refs = this.statRefs[f];
        let n = 0;
        for (const c of refs.values()) if (c > 0) n++;
        for (const [e, c] of statNext[f]) n += (c > 0 ? 1 : 0) - ((refs.get(e) ?? 0) > 0 ? 1 : 0);
        return n;
      };
      const grown = { ip: live('ip'), ip6: live('ip6'), dr: drMapCount(target.values()) };
      const over = (['ip', 'ip6', 'dr'] as const).filter((k) => grown[k] > declared[k]);
      if (over.length) {
        this.deps.logger.log(
          'info',
          `kernel data plane: ${over.map((k) => `${grown[k]} ${k === 'dr' ? 'DR services' : `${k} real servers`} outgrow the declared size ${declared[k]}`).join('; ')}: rebuilding the keepvs tables with larger sets (their counters start again)`,
        );
        for (const id of ids) this.dirty.add(id);
        this.dirty.add('*');
        await this.flush();
        return;
      }
    }
    const gone = this.goneCommands(full);
    const batch = [...removing, ...ops.removing, ...cmds, ...post, ...stats, ...gone.cmds, ...ops.adding, ...adding];
    if (batch.length === 0) return;
    const commit = () => {
      this.initialized = true;
      this.declared = declared;
      this.applied.clear();
      for (const [id, k] of target) this.applied.set(id, k);
      this.devices.clear();
      for (const d of wantDevices) this.devices.add(d);
      this.deviceMaps = mapsText;
      for (const f of ['ip', 'ip6'] as const) {
        const refs = full ? new Map<string, number>() : this.statRefs[f];
        for (const [e, n] of statNext[f]) {
          if (n > 0) refs.set(e, n);
          else {
            refs.delete(e);
            // as the nft counter element it stood beside, a removed real server's history goes
            this.ctGone.delete(e);
          }
        }
        this.statRefs[f] = refs;
      }
      this.postText = postText;
      this.opsRev = ops.rev;
      this.opsHooked = ops.hooked;
      this.goneCommitted(gone.rules);
    };
    const content =
      full || deviceCmds.length || post.length || ops.removing.length || ops.adding.length || gone.cmds.length
        ? null
        : this.contentBatch(next, statChanges);
    if (content && this.deps.elements) {
      const r = this.deps.elements.apply(content);
      if (r?.ok) {
        this.netlinkBatches++;
        commit();
        return;
      }
      if (r && !r.ok) {
        this.deps.logger.log(
          'warning',
          `kernel data plane: element update over netlink refused (${r.error}); ${r.unknown ? 'rebuilding the keepvs tables' : 'applying it through libnftables'}`,
        );
        if (r.unknown) {
          this.dirty.add('*');
          await this.flush();
          return;
        }
      }
    }
    const r = this.deps.nft.run(`${batch.join('\n')}\n`);
    this.transactions++;
    if (!r.ok) {
      const err = r.error.split('\n').slice(0, 6).join(' | ');
      if (!full) {
        // the kernel and the model disagree: rebuild everything in one transaction
        this.fail(`update refused (${err}); rebuilding the keepvs tables`);
        this.dirty.add('*');
        await this.flush();
        return;
      }
      this.fail(`ruleset refused: ${err}`);
      return;
    }
    commit();
  }

  /**
   * NAT ops: the @ops_rs / @ops_rev elements of the real servers of every NAT ops service in `target`,
   * and the hook chains while a family has one. A real server in two ops services (or in an ops and a
   * per-flow UDP service) sends its untracked replies one way: the first service's, reported.
   * Computed only when a touched service is or was one (ops services are few; a weight change of any
   * other service walks nothing here).
   */
  private opsCommands(
    full: boolean,
    ids: ReadonlySet<string>,
    next: ReadonlyMap<string, KernelService | null>,
    target: ReadonlyMap<string, KernelService>,
  ): {
    removing: string[];
    adding: string[];
    rev: Record<'ip' | 'ip6', Map<string, string>>;
    hooked: Record<'ip' | 'ip6', boolean>;
  } {
    const touched =
      full || [...next.values(), ...[...ids].map((i) => this.applied.get(i))].some((k) => k && opsKind(k) === 'nat');
    const have = full ? { ip: new Map<string, string>(), ip6: new Map<string, string>() } : this.opsRev;
    const hooked = full ? { ip: false, ip6: false } : this.opsHooked;
    if (!touched) return { removing: [], adding: [], rev: have, hooked };
    const want = { ip: new Map<string, string>(), ip6: new Map<string, string>() };
    const udpDests = { ip: new Map<string, string>(), ip6: new Map<string, string>() };
    for (const k of target.values()) {
      const f = k.family === 6 ? 'ip6' : 'ip';
      if (k.key.kind === 'addr' && k.key.protocol === 'udp' && opsKind(k) !== 'nat' && k.mode !== 'dr')
        for (const d of k.dests) udpDests[f].set(`${d.address} . udp . ${d.port}`, k.id);
    }
    const owners = { ip: new Map<string, string>(), ip6: new Map<string, string>() };
    for (const k of target.values()) {
      const f = k.family === 6 ? 'ip6' : 'ip';
      for (const e of opsReplyKeys(k)) {
        const owner = owners[f].get(e);
        const other = owner ?? udpDests[f].get(e);
        if (other && other !== k.id)
          this.diagnose(
            'DP_OPS_SHARED_RS',
            k.id,
            `real server ${e.split(' . ')[0]} port ${e.split(' . ')[2]} is also in ${other}: its untracked UDP replies are all rewritten to ${owner ?? k.id}'s VIP`,
          );
        if (!owner) {
          owners[f].set(e, k.id);
          want[f].set(e, serviceObjects(k.id).rev);
        }
      }
    }
    const removing: string[] = [];
    const adding: string[] = [];
    const nextHooked = { ...hooked };
    for (const f of ['ip', 'ip6'] as const) {
      const t = `${f} ${TABLE}`;
      const gone = [...have[f]].filter(([e, c]) => want[f].get(e) !== c).map(([e]) => e);
      const added = [...want[f]].filter(([e, c]) => have[f].get(e) !== c);
      if (gone.length)
        removing.push(
          `delete element ${t} ${OPS_REV_MAP} { ${gone.join(', ')} }`,
          `delete element ${t} ${OPS_RS_SET} { ${gone.join(', ')} }`,
        );
      if (added.length)
        adding.push(
          `add element ${t} ${OPS_REV_MAP} { ${added.map(([e, c]) => `${e} : goto ${c}`).join(', ')} }`,
          `add element ${t} ${OPS_RS_SET} { ${added.map(([e]) => e).join(', ')} }`,
        );
      const on = [...target.values()].some((k) => opsKind(k) === 'nat' && (k.family === 6 ? 'ip6' : 'ip') === f);
      if (on && !hooked[f]) adding.push(...opsHooks(f, true));
      if (!on && hooked[f]) removing.unshift(...opsHooks(f, false));
      nextHooked[f] = on;
    }
    return { removing, adding, rev: want, hooked: nextHooked };
  }

  /**
   * The tick as set-element and modulus changes only, or null when it changes anything else
   * (a service added or removed, a rule, a declaration): then libnftables runs it.
   */
  private contentBatch(next: Map<string, KernelService | null>, stats: SetChange[]): ContentBatch | null {
    const sets: SetChange[] = [];
    const moduli: ContentBatch['moduli'][number][] = [];
    for (const [id, ks] of next) {
      const before = this.applied.get(id);
      if (!before && !ks) continue;
      if (!before || !ks) return null;
      const plan = contentPlan(before, ks);
      if (!plan) return null;
      sets.push(...plan.sets);
      moduli.push(...plan.moduli);
    }
    return { sets: [...sets, ...stats], moduli };
  }

  /** The stats element of a destination of service `id` (NAT/FNAT with a protocol and port), or null. */
  private statKey(id: string, d: { address: string; port: number }): string | null {
    const s = this.services.get(id);
    if (s?.key.kind !== 'addr' || d.port === 0) return null;
    return `${d.address} . ${s.key.protocol} . ${d.port}`;
  }

  /** The stats element a conntrack entry counts for (a flow of one of our NAT/FNAT services), or null. */
  private ctStatKey(e: CtEntry): string | null {
    const k = this.entryKeys(e).stat;
    return k && this.statRefs[e.family === 6 ? 'ip6' : 'ip'].has(k) ? k : null;
  }

  /** destKey and the stats element of `e`, from the memo while services and real servers are unchanged. */
  private entryKeys(e: CtEntry): { dest: string | null; stat: string | null } {
    const m = this.keyMemo.get(e.original);
    if (m && m.gen === this.keyGen) return m;
    this.keyDerivations++;
    const dest = this.deriveDestKey(e);
    let stat: string | null = null;
    if (dest) {
      const [id, address, port] = dest.split('|') as [string, string, string];
      stat = this.statKey(id, { address, port: Number(port) });
    }
    const next = { gen: this.keyGen, dest, stat };
    this.keyMemo.set(e.original, next);
    return next;
  }

  private addCounts(into: Map<string, CtCounters>, e: CtEntry): void {
    const c = e.counters;
    const k = c ? this.ctStatKey(e) : null;
    if (!c || !k) return;
    // the sums are this map's own objects (never an entry's counters), added to in place
    const p = into.get(k);
    if (!p) {
      into.set(k, { ...c });
      return;
    }
    const q = p as { -readonly [K in keyof CtCounters]: number };
    q.origPackets += c.origPackets;
    q.origBytes += c.origBytes;
    q.replyPackets += c.replyPackets;
    q.replyBytes += c.replyBytes;
  }

  /** Per stats element, the counts of the live entries (those in `dead` went during the read: ctGone has them). */
  private liveCounts(entries: readonly CtEntry[], dead: ReadonlySet<string>): Map<string, CtCounters> {
    const live = new Map<string, CtCounters>();
    for (const e of entries) if (e.counters && (dead.size === 0 || !dead.has(tupleKey(e)))) this.addCounts(live, e);
    return live;
  }

  /**
   * The live counts read now, synchronously (ipvsadm -Z restarts from the values at that moment),
   * or undefined without conntrack counting. Without a synchronous reader, the last poll's.
   */
  private liveNow(): Map<string, CtCounters> | undefined {
    if (!this.ctCounting) return undefined;
    const ct = this.deps.conntrack;
    this.drainGone();
    const entries = ct.listSync ? ct.listSync(this.wantedConns()) : this.conns;
    // destroyed since: from their events only (a poll's read in flight keeps its own dead set)
    const before = new Set<string>();
    const keep = this.readDead;
    this.readDead = before;
    this.drainGone();
    this.readDead = keep;
    if (keep) for (const k of before) keep.add(k);
    return this.liveCounts(entries, before);
  }

  /** Adds the destroy events queued now to ctGone (and, while a read runs, to its dead set). */
  private drainGone(): void {
    let gone: CtEntry[];
    try {
      gone = this.deps.conntrack.drainDestroyed?.() ?? [];
    } catch (e) {
      // the kernel keeps the events (reliable delivery): a later drain gets them
      if (!this.drainFailed)
        this.deps.logger.log('error', `kernel data plane: ${(e as Error).message}: --stats lag until it is read`);
      this.drainFailed = true;
      return;
    }
    this.drainFailed = false;
    for (const e of gone) {
      this.addCounts(this.ctGone, e);
      this.readDead?.add(tupleKey(e));
    }
  }

  /**
   * Reads the counter sets (one small JSON listing each), adds conntrack's per-connection counts
   * (`live` entries and ctGone) when those count packets, and derives per-second rates.
   */
  private readCounterSets(): Map<string, Stats> {
    const next = new Map<string, Stats>();
    const get = (k: string): Stats => next.get(k) ?? { conns: 0, inPkts: 0, outPkts: 0, inBytes: 0, outBytes: 0 };
    for (const f of ['ip', 'ip6'] as const) {
      if (this.statRefs[f].size === 0) continue;
      for (const set of STAT_SETS) {
        for (const { key, packets, bytes } of this.counterSet(f, set)) {
          const c = get(key);
          if (set === 'st_new') next.set(key, { ...c, conns: packets });
          else if (set === 'st_in') next.set(key, { ...c, inPkts: packets, inBytes: bytes });
          else next.set(key, { ...c, outPkts: packets, outBytes: bytes });
        }
      }
    }
    return next;
  }

  /**
   * No new flow since the last sample, by the st_new counters in `sets` (read now) against it; only
   * when every real server of a NAT or full-NAT service is counted there (a port-0 one is not, nor
   * are a fwmark service's) and no flow comes from elsewhere (conntrackd).
   */
  private noNewFlows(sets: ReadonlyMap<string, Stats>): boolean {
    const prev = this.lastSample?.counters;
    if (!prev || prev.size !== sets.size || sets.size === 0 || this.deps.flowsFromElsewhere?.()) return false;
    for (const ks of this.applied.values()) {
      if (ks.mode === 'dr') continue; // netdev: its flows make no conntrack entry
      if (ks.key.kind !== 'addr' || ks.dests.some((d) => d.port === 0)) return false;
    }
    for (const [k, c] of sets) if (prev.get(k)?.conns !== c.conns) return false;
    return true;
  }

  private readCounters(now: number, live?: ReadonlyMap<string, CtCounters>, sets = this.readCounterSets()): void {
    const next = new Map(sets);
    const get = (k: string): Stats => next.get(k) ?? { conns: 0, inPkts: 0, outPkts: 0, inBytes: 0, outBytes: 0 };
    // with ctCounting, st_in/st_out count only UDP ops datagrams (untracked: no conntrack entry)
    if (live)
      for (const src of [live, this.ctGone])
        for (const [k, a] of src) {
          if (!next.has(k)) continue;
          const c = get(k);
          next.set(k, {
            ...c,
            inPkts: c.inPkts + a.origPackets,
            inBytes: c.inBytes + a.origBytes,
            outPkts: c.outPkts + a.replyPackets,
            outBytes: c.outBytes + a.replyBytes,
          });
        }
    const prev = this.lastSample;
    if (prev) {
      const dt = (now - prev.at) / 1000;
      for (const [k, c] of next) {
        const p = prev.counters.get(k);
        if (!p || dt <= 0) continue;
        const per = (a: number, b: number) => Math.max(0, (a - b) / dt);
        this.rates.set(k, {
          cps: per(c.conns, p.conns),
          inPps: per(c.inPkts, p.inPkts),
          outPps: per(c.outPkts, p.outPkts),
          inBps: per(c.inBytes, p.inBytes),
          outBps: per(c.outBytes, p.outBytes),
        });
      }
    }
    this.lastSample = { at: now, counters: next };
    this.counters = next;
  }

  /**
   * One counter set's elements: over nfnetlink when the writer can (no JSON: a 10,000-element set
   * listed through libnftables took 27 ms), else through libnftables.
   */
  private counterSet(f: 'ip' | 'ip6', set: string): { key: string; packets: number; bytes: number }[] {
    const dumped = this.deps.elements?.listSet?.(f, TABLE, set);
    if (dumped)
      return dumped.flatMap((e) => {
        const key = statKeyText(e.key, f === 'ip' ? 4 : 6);
        return key ? [{ key, packets: e.counter?.packets ?? 0, bytes: e.counter?.bytes ?? 0 }] : [];
      });
    const r = this.deps.nft.run(`list set ${f} ${TABLE} ${set}`, true);
    return r.ok ? parseCounterSet(r.output) : [];
  }

  /** ipvsadm --stats / --rate of one destination, from the nft counters (null when not counted). */
  destCounters(id: string, d: { address: string; port: number }): { stats: Stats; rates: Rates } | null {
    const k = this.statKey(id, d);
    const c = k ? this.counters.get(k) : undefined;
    if (!k || !c) return null;
    const b = this.zeroBase.get(k);
    const sub = (x: number, y = 0) => Math.max(0, x - y);
    return {
      stats: {
        conns: sub(c.conns, b?.conns),
        inPkts: sub(c.inPkts, b?.inPkts),
        outPkts: sub(c.outPkts, b?.outPkts),
        inBytes: sub(c.inBytes, b?.inBytes),
        outBytes: sub(c.outBytes, b?.outBytes),
      },
      rates: this.rates.get(k) ?? { cps: 0, inPps: 0, outPps: 0, inBps: 0, outBps: 0 },
    };
  }

  /** Reads conntrack, counts per destination, and reschedules load-driven slot maps when counts moved. */
  async poll(): Promise<void> {
    // one at a time: reading a table of 100,000+ TIME_WAIT entries can outlast the period
    // (docs/kernel-plane.md, the lc loop live at 1,000 connections/s); overlapping reads only pile up
    if (this.stopped || this.polling) return;
    this.polling = true;
    try {
      await this.pollOnce();
    } finally {
      this.polling = false;
    }
  }

  private async pollOnce(): Promise<void> {
    // destroyed before the read: not in it, their last counts go to ctGone
    if (this.ctCounting) {
      this.drainGone();
      this.readDead = new Set();
    }
    // the counter sets first: without a new flow since the last poll a settled table needs no read
    const sets = this.initialized ? this.readCounterSets() : undefined;
    const entries = await this.deps.conntrack.list(this.wantedConns(), {
      noNewFlows: sets !== undefined && this.noNewFlows(sets),
    });
    this.conns = entries;
    let live: Map<string, CtCounters> | undefined;
    if (this.ctCounting) {
      // destroyed during or after the read: counted from their events, not from the read
      this.drainGone();
      live = this.liveCounts(entries, this.readDead ?? new Set<string>());
      this.readDead = null;
    }
    if (this.initialized) this.readCounters(Date.now(), live, sets);
    const counts = new Map<string, { active: number; inact: number }>();
    for (const e of entries) {
      const k = this.destKey(e);
      if (!k) continue;
      const c = counts.get(k) ?? { active: 0, inact: 0 };
      if (ipvsState(e) === 'ESTABLISHED') c.active++;
      else c.inact++;
      counts.set(k, c);
    }
    let changed = false;
    for (const id of this.drPending) {
      this.drPending.delete(id);
      if (!this.services.has(id)) continue;
      this.dirty.add(id);
      changed = true;
    }
    for (const [id, s] of this.services) {
      for (const d of s.dests) {
        const c = counts.get(`${id}|${d.address}|${d.port}`) ?? { active: 0, inact: 0 };
        d.active = c.active;
        d.inact = c.inact;
        if (s.params.scheduler === 'lc' || s.params.scheduler === 'wlc') this.estimateHold(id, s, d);
        // IPVS thresholds (ip_vs_dest_totalconns vs u_threshold, back below l_threshold or 3/4 of it)
        const total = c.active + c.inact;
        const u = d.params.uThreshold;
        if (u > 0) {
          const l = d.params.lThreshold > 0 ? d.params.lThreshold : Math.floor((u * 3) / 4);
          const over = d.overloaded ? total >= l || total >= u : total >= u;
          if (over !== d.overloaded) {
            d.overloaded = over;
            this.dirty.add(id);
            changed = true;
          }
        }
      }
      if (LOAD_SCHEDULERS.has(s.params.scheduler)) {
        this.dirty.add(id);
        changed = true;
      }
    }
    // the table's size decides between dumps and events (followConntrack)
    this.followConntrack();
    if (changed) await this.schedule();
  }

  /**
   * Little's law for the lc loop: a server's holding time is its active connections over its new
   * connections per second (the st_new counter's rate), smoothed over polls. Only for a real server
   * counted by this service alone (a shared counter mixes services) and while connections arrive.
   */
  private estimateHold(id: string, s: PlaneService, d: PlaneDest): void {
    const k = this.statKey(id, d);
    const fam = s.key.family === 6 ? 'ip6' : 'ip';
    if (!k || this.statRefs[fam].get(k) !== 1) return;
    const rate = this.rates.get(k)?.cps ?? 0;
    if (rate <= 0) return;
    // + 0.5: short connections often all closed when sampled; the estimate never reaches 0
    const h = (d.active + 0.5) / rate;
    d.holdS = d.holdS > 0 ? (d.holdS + h) / 2 : h;
  }

  /**
   * Which conntrack entries can be keepvs's, by their original destination: a VIP of an address
   * service (destKey's first test), so the reader parses no other line in full (a director's table
   * also holds its own and other NAT flows). A fwmark service matches any destination: all then.
   */
  private wantedConns(): CtWanted | undefined {
    // one function while the services are unchanged: the table knows a quiet read by it (ListHint)
    if (this.wantedMemo?.gen === this.keyGen) return this.wantedMemo.wanted;
    // a set per family: the test runs for every entry of every read, without building a key
    const vips = { 4: new Set<string>(), 6: new Set<string>() };
    let wanted: CtWanted | undefined = (family, dst) => vips[family].has(dst);
    for (const s of this.services.values()) {
      if (s.key.kind !== 'addr') {
        wanted = undefined;
        break;
      }
      vips[s.key.family].add(s.key.address);
    }
    this.wantedMemo = { gen: this.keyGen, wanted };
    return wanted;
  }

  private wantedMemo: { gen: number; wanted: CtWanted | undefined } | null = null;

  /** `${serviceId}|${rs}|${port}` of a conntrack entry the kernel plane made (DNAT by one of our services). */
  private destKey(e: CtEntry): string | null {
    return this.entryKeys(e).dest;
  }

  private deriveDestKey(e: CtEntry): string | null {
    const proto = e.protocol;
    if (proto !== 'tcp' && proto !== 'udp' && proto !== 'sctp') return null;
    const o = e.original;
    const r = e.reply;
    if (o.dst === r.src && o.dport === r.sport) return null; // not DNATed
    const a = e.family === 6 ? `[${o.dst}]` : o.dst;
    for (const id of [`${proto}:${a}:${o.dport}`, `${proto}:${a}:0`]) {
      const s = this.services.get(id);
      if (s?.dests.some((d) => d.address === r.src && (d.port === r.sport || d.port === 0)))
        return `${id}|${r.src}|${s.dests.find((d) => d.address === r.src && (d.port === r.sport || d.port === 0))?.port}`;
    }
    for (const [id, s] of this.services) {
      if (s.key.kind !== 'fwmark' || s.key.family !== e.family) continue;
      const d = s.dests.find((x) => x.address === r.src);
      if (d) return `${id}|${d.address}|${d.port}`;
    }
    return null;
  }

  /**
   * The persistence maps (IPVS's templates: client port 0, state NONE, the persistence timeout left)
   * and the IPv4 DR flow maps (a pinned flow; the map holds no TCP state: NONE) of installed services,
   * read when asked (one small listing per map: 0.05 ms each in a 1,000-service ruleset).
   * IPv6 flow keys hold only 96 bits of the client address, so those flows are not listed.
   */
  private readDynamicMaps(templatesOnly = false): ConnSnapshot[] {
    const out: ConnSnapshot[] = [];
    for (const [id, ks] of this.applied) {
      const persistent = ks.params.persistentTimeout !== undefined;
      const pinned = !templatesOnly && pinsFlows(ks);
      if (!persistent && !pinned) continue;
      const o = serviceObjects(id);
      const table = ks.mode === 'dr' ? `netdev ${TABLE}` : `${ks.family === 6 ? 'ip6' : 'ip'} ${TABLE}`;
      const r = this.deps.nft.run(`list map ${table} ${persistent ? o.persist : o.flows}`, true);
      if (!r.ok) continue;
      const k = ks.key;
      const protocol = k.kind === 'addr' ? k.protocol : 'tcp';
      const vip =
        k.kind === 'addr'
          ? { address: k.address, port: k.port }
          : { address: ks.family === 4 ? '0.0.0.0' : '::', port: k.fwmark };
      const clients = pinned && ks.family === 6 ? this.flowClients(id) : null;
      for (const e of parseDynamicMap(r.output)) {
        const d = ks.dests.find((x) => x.mark === e.mark);
        if (!d) continue; // a removed server's mark: no destination (it expires)
        let [client, sport, dport] = e.key;
        if (clients) {
          const f = flow6(e.key, clients);
          if (!f) continue; // its client not told (unlistedFlows counts it)
          [client, sport, dport] = [f.client, f.sport, f.dport];
        }
        out.push({
          protocol,
          client: { address: String(client), port: persistent ? 0 : Number(sport) },
          virtual: persistent ? vip : { address: vip.address, port: Number(dport) },
          // IPVS: a template's port is the destination's (0 in a port-0 service); DR keeps the VIP's
          dest: { address: d.address, port: persistent ? d.port : d.port || Number(dport) },
          family: ks.family,
          state: 'NONE',
          expiresInMs: e.expiresS * 1000,
          template: persistent,
          service: id,
          realServer: destId({ address: d.address, port: d.port }, ks.family),
          ...(persistent ? {} : { pinned: true }),
        });
      }
    }
    return out;
  }

  /** An IPv6 DR service's pinned clients (render.ts flowClients), by the low 96 bits of their address. */
  private flowClients(id: string): Map<bigint, string[]> {
    const out = new Map<bigint, string[]>();
    const r = this.deps.nft.run(`list set netdev ${TABLE} ${flowClients(id)}`, true);
    if (!r.ok) return out;
    for (const a of parseSetValues(r.output)) {
      const low = low96(a);
      if (low === null) continue;
      out.set(low, [...(out.get(low) ?? []), a]);
    }
    return out;
  }

  /**
   * ipvsadm's PersistConn of kernel services: templates per real server (`service|realServer`),
   * from the persistence maps (one listing per persistent service, read when asked).
   */
  templateCounts(): Map<string, number> {
    const out = new Map<string, number>();
    if (!this.initialized) return out;
    for (const t of this.readDynamicMaps(true)) {
      const k = `${t.service}|${t.realServer}`;
      out.set(k, (out.get(k) ?? 0) + 1);
    }
    return out;
  }

  /**
   * IPv6 DR flow-map entries, counted per real server: -Lnc cannot list them, as their key holds
   * only the low 96 bits of the client address (render.ts flowKey: nft 1.0.6 aborts on a dynamic
   * map update with a key over 16 bytes). The API reports the counts so they are not hidden.
   */
  unlistedFlows(): UnlistedEntries[] {
    const out: UnlistedEntries[] = [];
    for (const [id, ks] of this.applied) {
      if (!pinsFlows(ks) || ks.family !== 6) continue;
      const r = this.deps.nft.run(`list map netdev ${TABLE} ${serviceObjects(id).flows}`, true);
      if (!r.ok) continue;
      const counts = new Map<number, number>();
      const clients = this.flowClients(id);
      for (const e of parseDynamicMap(r.output))
        if (!flow6(e.key, clients)) counts.set(e.mark, (counts.get(e.mark) ?? 0) + 1);
      for (const d of ks.dests) {
        const count = counts.get(d.mark) ?? 0;
        if (count > 0)
          out.push({
            service: id,
            realServer: destId({ address: d.address, port: d.port }, ks.family),
            kind: 'pinned',
            count,
            reason: IPV6_FLOW_KEY_REASON,
          });
      }
    }
    return out;
  }

  /** -Lnc: the conntrack entries of kernel services in IPVS's terms, then templates and pinned flows. */
  connections(): ConnSnapshot[] {
    const out: ConnSnapshot[] = [];
    for (const e of this.conns) {
      const k = this.destKey(e);
      if (!k) continue;
      const [service, address, port] = k.split('|');
      out.push({
        protocol: e.protocol as 'tcp' | 'udp' | 'sctp',
        client: { address: e.original.src, port: e.original.sport },
        virtual: { address: e.original.dst, port: e.original.dport },
        dest: { address: e.reply.src, port: e.reply.sport },
        family: e.family,
        state: ipvsState(e),
        expiresInMs: e.timeout * 1000,
        template: false,
        service,
        realServer: destId({ address, port: Number(port) }, e.family),
      });
    }
    return [...out, ...(this.initialized ? this.readDynamicMaps() : [])];
  }

  /** True when this plane forwards `id` (for the table view). */
  has(id: string): boolean {
    return this.services.has(id);
  }

  snapshot(): DataPlaneSnapshot {
    const services: DataPlaneServiceSnapshot[] = [];
    for (const [id, s] of this.services) {
      if (this.tunnelled(s)) continue;
      const installed = this.applied.has(id);
      services.push({
        id,
        key: s.key,
        protocol: s.key.kind === 'addr' ? s.key.protocol : 'tcp',
        listener: installed ? 'listening' : 'failed',
        boundPort: s.key.kind === 'addr' ? s.key.port : 0,
        ...(installed ? {} : { error: 'not installed in the kernel (see diagnostics)' }),
        noDest: 0,
        connectFailures: 0,
        open: s.dests.reduce((a, d) => a + d.active + d.inact, 0),
        dests: s.dests.map((d) => {
          const snap = quietDestSnapshot(
            destId({ address: d.address, port: d.port }, s.key.family),
            d,
            d.active,
            d.inact,
          );
          // DR: no traffic until the real server's MAC is known (the BGP announcer waits for it)
          const dr = this.dr.get(id);
          return dr === undefined ? snap : { ...snap, forwarding: !!dr && this.macs.has(`${dr.egress}|${d.address}`) };
        }),
      });
    }
    const tun = this.deps.tunnel?.snapshot();
    return {
      kind: tun?.services.length ? 'nft+tun' : 'nft',
      workers: 0,
      services: [...services, ...(tun?.services ?? [])],
      diagnostics: [...this.diagnostics, ...(tun?.diagnostics ?? [])],
    };
  }

  /** Graceful stop removes keepvs's tables (keepalived clears its virtual servers on exit). */
  async stop(drainMs: number): Promise<void> {
    await this.flushing;
    await this.deps.tunnel?.stop(drainMs);
    this.halt();
    this.deps.nft.run(rebuild([`ip ${TABLE}`, `ip6 ${TABLE}`, `netdev ${TABLE}`]).join('\n'));
  }

  /** Stops without touching the kernel: the tables keep forwarding until the next keepvs rebuilds them. */
  async detach(): Promise<void> {
    await this.flushing;
    await this.deps.tunnel?.detach();
    this.halt();
  }

  private halt(): void {
    this.stopped = true;
    if (this.goneTimer) clearTimeout(this.goneTimer);
    this.goneTimer = null;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.drainTimer) clearInterval(this.drainTimer);
    this.drainTimer = null;
    this.deps.conntrack.close?.();
  }
}

/** A connection's identity among the live entries: protocol and original tuple. */
function tupleKey(e: CtEntry): string {
  const o = e.original;
  return `${e.family}|${e.protocol}|${o.src}|${o.sport}|${o.dst}|${o.dport}`;
}
