/**
 * The VRRP driver: binds each instance's state machine (instance.ts) to the clock, a raw socket
 * per interface and family, the VIPs and gratuitous ARPs. Receive checks live in receive.ts, the
 * sync-group policy in sync-group.ts, the `ip` commands behind IpPort (src/os/ip-commands.ts).
 * A reload touches only the instances whose configuration changed (keepalived keeps the others'
 * state); a stop sends every priority-0 advert before it removes any address.
 */
import { networkInterfaces } from 'node:os';
import { encodeAhPacket } from '../codec/ah.js';
import { encodeIpv4 } from '../codec/ipv4.js';
import { AUTH_AH, AUTH_NONE, AUTH_PASS, encodeVrrp, passAuthData, VRRP_PROTOCOL } from '../codec/vrrp.js';
import type { Config, IpAddressEntry, VrrpInstance } from '../config/model.js';
import type { IpPort } from '../os/ip-commands.js';
import type { Clock, TimerHandle } from '../util/clock.js';
import type { EventSink, VrrpStateName } from '../util/events.js';
import type { Logger } from '../util/logger.js';
import {
  type InstanceEvent,
  type InstanceParams,
  type InstanceState,
  initialState,
  nextDeadline,
  step,
} from './instance.js';
import { checkAdvert, type Received, seen } from './receive.js';
import { type VrrpInstanceStatus, vipStatuses } from './status.js';
import { SyncGroups } from './sync-group.js';
import { syncGroupStateAfter } from './sync-group-state.js';

export type { Received } from './receive.js';

/** A raw VRRP socket (real ones: src/os/vrrp-socket.ts). */
export interface VrrpSocketPort {
  /** IPv4: a whole IP packet (the driver builds the header: source, TTL 255); IPv6: the VRRP message sent from `src` */
  send(packet: Uint8Array, destination: string, src: string): boolean;
  close(): void;
}

export interface VrrpIo {
  /** `ah`: an IPv4 socket for IP protocol 51 */
  openSocket(ifname: string, family: 4 | 6, onPacket: (r: Received) => void, ah: boolean): VrrpSocketPort;
  gratuitousArp(ifname: string, vip: string, count: number): void;
  unsolicitedNa(ifname: string, vip: string, count: number): void;
  ip: IpPort;
  /** the interface's primary address (IPv4) or link-local one (IPv6, RFC 5798 §5.1.2.1) */
  primaryAddress?(ifname: string, family: 4 | 6): string | undefined;
  /**
   * Connection sync (docs/conn-sync.md): told of each MASTER, BACKUP and FAULT. Becoming MASTER
   * awaits it before the VIPs are added, so the peer's flows are in the kernel before the first
   * packet for them arrives (committed later, a packet would be scheduled afresh).
   */
  syncRole?(instance: string, to: 'MASTER' | 'BACKUP' | 'FAULT'): Promise<void>;
}

interface Shared {
  readonly socket: VrrpSocketPort;
  readonly members: Running[];
}

interface Running {
  config: VrrpInstance;
  params: InstanceParams;
  state: InstanceState;
  readonly key: string;
  readonly source: string;
  readonly shared: Shared;
  readonly sockKey: string;
  /** use_vmac (IPv4): adverts leave from the VMAC, but are received on the parent (below) */
  readonly vmacSender?: VrrpSocketPort;
  timer?: TimerHandle;
  garpTimer?: TimerHandle;
  /** the second re-announcement after a lower-priority advert (garp_lower_prio_delay) */
  lowerPrioGarpTimer?: TimerHandle;
  /** garp_master_refresh: the next periodic announcement while MASTER */
  refreshTimer?: TimerHandle;
  readonly transitions: { from: VrrpStateName; to: VrrpStateName; reason: string; at: number }[];
  /** keepalived's ipsecah_counter: the last AH sequence number sent or accepted */
  ahSeq: number;
  ipId: number;
  /** FAULT imposed by a sync-group member rather than by this instance's own tracking */
  syncFault: boolean;
  /** keepalived's wantstate MASTER (sync groups) */
  wantsMaster: boolean;
  readonly stats: Record<string, number>;
  /** drop reasons already logged since the last transition (keepalived's rate-limited log) */
  readonly logged: Set<string>;
  /** address and route changes of this instance, one after the other */
  ops: Promise<void>;
  /** the VIPs now on the interface (what leaving MASTER removes) */
  held?: {
    vips: VrrpInstance['virtualIpaddresses'];
    routes: VrrpInstance['virtualRoutes'];
    rules: VrrpInstance['virtualRules'];
  };
  stopped: boolean;
}

function hostPrimaryAddress(ifname: string, family: 4 | 6): string | undefined {
  const addrs = networkInterfaces()[ifname] ?? [];
  if (family === 4) return addrs.find((a) => a.family === 'IPv4' && !a.internal)?.address;
  return addrs.find((a) => a.family === 'IPv6' && a.address.toLowerCase().startsWith('fe80'))?.address.split('%')[0];
}

/** where the VIPs go: the VMAC interface with use_vmac, else the instance's interface */
const vipDev = (i: VrrpInstance) => i.vmac?.name ?? i.interface;
/** with use_vmac, VIPs written on the instance's interface go on the VMAC interface (keepalived) */
const placed = (i: VrrpInstance, entries: readonly IpAddressEntry[]): IpAddressEntry[] =>
  entries.map((v) => (i.vmac && (v.dev === undefined || v.dev === i.interface) ? { ...v, dev: i.vmac.name } : v));
/** RFC 5798 §7.3: 00-00-5E-00-01-VRID (IPv4), 00-00-5E-00-02-VRID (IPv6) */
export const virtualMac = (i: VrrpInstance) =>
  `00:00:5e:00:0${i.family === 6 ? 2 : 1}:${i.vrid.toString(16).padStart(2, '0')}`;
/** adverts leave from the VMAC (RFC 5798 §7.3) unless vmac_xmit_base; IPv6 always from the parent (its link-local) */
const advertDev = (i: VrrpInstance) => (i.vmac && !i.vmac.xmitBase && i.family === 4 ? i.vmac.name : i.interface!);

/** what decides whether a reload leaves an instance alone: everything but its place in the file */
const instanceKey = (i: VrrpInstance) => JSON.stringify({ ...i, loc: undefined });
/** changes that make it another virtual router: stop the old one, start the new one */
const identity = (i: VrrpInstance) =>
  JSON.stringify([
    i.interface,
    i.vrid,
    i.family,
    i.version,
    i.authentication?.type,
    i.srcIp,
    i.unicastPeers.length > 0,
  ]);
const entryKey = (e: { loc?: unknown }) => JSON.stringify({ ...e, loc: undefined });
const minus = <T extends { loc?: unknown }>(a: readonly T[], b: readonly T[]) => {
  const keys = new Set(b.map(entryKey));
  return a.filter((e) => !keys.has(entryKey(e)));
};

export class VrrpDriver {
  private readonly running = new Map<string, Running>();
  /** vrrp_sync_group name -> the group's own state, for its notify scripts */
  private readonly groupStates = new Map<string, VrrpStateName>();
  private readonly notRun = new Map<string, string>();
  private readonly sockets = new Map<string, Shared>();
  private sync: SyncGroups;
  private stopping = false;
  /** called right after any state change, before its event: the status API sees it at once */
  onStateChange?: () => void;

  constructor(
    private config: Config,
    private readonly clock: Clock,
    private readonly io: VrrpIo,
    private readonly logger: Logger,
    private readonly events: EventSink,
  ) {
    this.sync = new SyncGroups(config.syncGroups);
  }

  private params(i: VrrpInstance, primary: string): InstanceParams {
    return {
      version: i.version,
      priority: i.priority,
      advertIntMs: i.advertInt * 1000,
      preempt: !i.nopreempt,
      preemptDelayMs: i.preemptDelay * 1000,
      initialMaster: i.initialState === 'MASTER',
      primaryAddress: primary,
      downTimerAdverts: i.downTimerAdverts,
      lowerPrioNoAdvert: i.lowerPrioNoAdvert,
    };
  }

  private logFailures(failures: string[], owner: string): void {
    for (const f of failures) this.logger.log('error', `${owner}: ${f}`);
  }

  /** static_ipaddress / static_routes / static_rules: set at start (with or without vrrp_instance), removed at stop. */
  private async statics(op: 'add' | 'del', c: Pick<Config, 'staticIpaddresses' | 'staticRoutes' | 'staticRules'>) {
    this.logFailures(await this.io.ip.addresses(op, c.staticIpaddresses), 'static_ipaddress');
    this.logFailures(await this.io.ip.routes(op, c.staticRoutes), 'static_routes');
    this.logFailures(await this.io.ip.rules(op, c.staticRules), 'static_rules');
  }

  /** use_vmac: the macvlan must exist before its socket is opened */
  private async vmacs(op: 'add' | 'del', instances: readonly VrrpInstance[]): Promise<void> {
    for (const i of instances)
      if (i.vmac && i.interface)
        this.logFailures(await this.io.ip.vmac(op, i.vmac.name, i.interface, virtualMac(i)), `(${i.name}) use_vmac`);
  }

  async start(): Promise<void> {
    await this.statics('add', this.config);
    await this.vmacs('add', this.config.vrrpInstances);
    for (const i of this.config.vrrpInstances) this.startInstance(i);
    // keepalived removes VIPs a crash may have left behind before the elections begin
    await Promise.all([...this.running.values()].map((r) => r.ops));
  }

  private startInstance(i: VrrpInstance, carried?: InstanceState): Running | undefined {
    this.notRun.delete(i.name);
    const why = this.unsupported(i);
    if (why) {
      this.notRun.set(i.name, why);
      this.logger.log('warning', `(${i.name}) not started: ${why}`);
      return undefined;
    }
    const ifname = advertDev(i);
    // the parent's address: a VMAC interface has none of its own (keepalived does the same)
    const source = i.srcIp ?? (this.io.primaryAddress ?? hostPrimaryAddress)(i.interface!, i.family);
    if (!source) {
      this.notRun.set(i.name, `interface ${i.interface} has no ${i.family === 4 ? 'IPv4' : 'IPv6 link-local'} address`);
      this.logger.log('warning', `(${i.name}) not started: ${this.notRun.get(i.name)}`);
      return undefined;
    }
    const ah = i.authentication?.type === 'AH';
    // Received on the instance's interface, also with use_vmac: a peer's adverts come from the same
    // virtual MAC as our own macvlan's, and a bridge-mode macvlan does not get multicast whose
    // source MAC is its own (the kernel takes it for its own frame coming back)
    const sockKey = `${i.interface}/${i.family}${ah ? '/ah' : ''}`;
    let shared = this.sockets.get(sockKey);
    if (!shared) {
      try {
        const members: Running[] = [];
        const socket = this.io.openSocket(i.interface!, i.family, (rcv) => this.onPacket(members, rcv), ah);
        shared = { socket, members };
        this.sockets.set(sockKey, shared);
      } catch (e) {
        this.notRun.set(i.name, `cannot open the VRRP socket: ${e instanceof Error ? e.message : e}`);
        this.logger.log('error', `(${i.name}) ${this.notRun.get(i.name)}`);
        return undefined;
      }
    }
    let vmacSender: VrrpSocketPort | undefined;
    if (ifname !== i.interface) {
      try {
        vmacSender = this.io.openSocket(ifname, i.family, () => {}, ah);
      } catch (e) {
        this.notRun.set(i.name, `cannot open the VRRP socket on ${ifname}: ${e instanceof Error ? e.message : e}`);
        this.logger.log('error', `(${i.name}) ${this.notRun.get(i.name)}`);
        if (shared.members.length === 0) {
          shared.socket.close();
          this.sockets.delete(sockKey);
        }
        return undefined;
      }
    }
    const params = this.params(i, source);
    const r: Running = {
      config: i,
      params,
      state: carried ? { ...carried, effectivePriority: i.priority } : initialState(params),
      key: instanceKey(i),
      source,
      shared,
      sockKey,
      ...(vmacSender ? { vmacSender } : {}),
      transitions: [],
      ahSeq: 0,
      ipId: 0,
      syncFault: false,
      wantsMaster: false,
      stats: {},
      logged: new Set(),
      ops: Promise.resolve(),
      stopped: false,
    };
    shared.members.push(r);
    this.running.set(i.name, r);
    if (carried) {
      // a reloaded MASTER keeps its VIPs: only the difference is applied
      if (r.state.state === 'MASTER') r.held = { vips: [], routes: [], rules: [] };
      this.schedule(r);
    } else {
      this.queue(r, () => this.io.ip.addresses('del', placed(i, this.allVips(i)), vipDev(i)).then(() => undefined));
      r.ops = r.ops.then(() => {
        if (!r.stopped) this.apply(r, { type: 'startup' });
      });
    }
    return r;
  }

  private allVips(i: VrrpInstance): IpAddressEntry[] {
    return [...i.virtualIpaddresses, ...i.virtualIpaddressesExcluded];
  }

  private unsupported(i: VrrpInstance): string | undefined {
    if (i.authentication?.type === 'AH' && i.family === 6) return 'AH is VRRPv2, IPv4 only';
    if (!i.interface) return 'no interface';
    return undefined;
  }

  private queue(r: Running, fn: () => Promise<void>): void {
    r.ops = r.ops.then(fn).catch((e) => {
      this.logger.log('error', `(${r.config.name}) ${e instanceof Error ? e.message : e}`);
    });
  }

  private count(r: Running, key: string): void {
    r.stats[key] = (r.stats[key] ?? 0) + 1;
  }

  private onPacket(members: Running[], rcv: Received): void {
    const s = seen(rcv);
    if (!s || s.vrrp.length < 2) return;
    const vrid = s.vrrp[1];
    let matched = false;
    for (const r of members) {
      if (r.config.vrid !== vrid || r.stopped) continue;
      matched = true;
      // our own adverts (multicast loop is off, but another instance may share the address)
      if (s.src === r.source) continue;
      const v = checkAdvert(r.config, s, {
        ahSeq: r.ahSeq,
        checkUnicastSrcGlobal: this.config.globalDefs.vrrpCheckUnicastSrc,
        effectivePriority: r.state.effectivePriority,
      });
      if (!v.ok) {
        if (v.counter) this.count(r, v.counter);
        const reason = v.counter ?? 'dropped';
        if (!r.logged.has(reason)) {
          r.logged.add(reason);
          this.logger.log('info', v.log);
        }
        continue;
      }
      if (v.ahSeq !== undefined) r.ahSeq = v.ahSeq;
      const a = v.advert;
      this.count(r, 'advert_rcvd');
      if (a.priority === 0) this.count(r, 'pri_zero_rcvd');
      // RFC 5798 §5.2.4: 255 is the address owner's; keepalived (and the RFC) take it from anyone,
      // and so does keepvs (configs use 255 without owning the VIP), but it is counted and logged
      if (a.priority === 255 && !a.addresses.some((x) => x === s.src)) {
        this.count(r, 'pri_owner_rcvd');
        if (!r.logged.has('pri_owner_rcvd')) {
          r.logged.add('pri_owner_rcvd');
          this.logger.log(
            'warning',
            `(${r.config.name}) priority 255 advert from ${s.src}, which does not own the VIPs`,
          );
        }
      }
      const advertIntMs = a.version === 3 ? (a.maxAdvertIntCs ?? 100) * 10 : (a.advertInt ?? 1) * 1000;
      const before = r.state;
      this.apply(r, { type: 'advert', from: s.src, priority: a.priority, advertIntMs });
      // a backup that heard a master it accepts no longer wants MASTER (keepalived's wantstate)
      if (
        r.state.state === 'BACKUP' &&
        a.priority !== 0 &&
        (before.state !== 'BACKUP' || (r.state.masterDownAt ?? 0) > (before.masterDownAt ?? 0))
      )
        r.wantsMaster = false;
    }
    // keepalived drops unknown VRIDs silently; they are still counted here, on every instance of
    // the socket, so that a flood of them shows (RFC 5798 MIB vrrpRouterVrIdErrors)
    if (!matched) for (const r of members) this.count(r, 'vrid_err');
  }

  private apply(r: Running, e: InstanceEvent): void {
    if (r.stopped && e.type !== 'shutdown') return;
    const now = this.clock.now();
    if (
      e.type === 'timer' &&
      r.state.state === 'BACKUP' &&
      r.state.masterDownAt !== undefined &&
      now >= r.state.masterDownAt
    ) {
      r.wantsMaster = true;
      const hold = !this.sync.mayGoMaster(r.config.name, (n) => this.running.get(n));
      if (hold) e = { type: 'timer', holdMaster: true };
    }
    const res = step(r.params, r.state, e, now);
    const before = r.state;
    r.state = res.state;
    for (const a of res.actions) {
      if (a.type === 'send-advert') this.sendAdvert(r, a.priority);
      else if (a.type === 'reannounce') this.reannounce(r);
      else {
        const at = this.clock.wallNow();
        r.transitions.push({ from: a.from, to: a.to, reason: a.reason, at });
        if (r.transitions.length > 20) r.transitions.shift();
        r.logged.clear();
        // keepalived's become_master / release_master counters (vrrp_state_become_master, vrrp_state_leave_master)
        if (a.to === 'MASTER') this.count(r, 'become_master');
        if (a.from === 'MASTER') this.count(r, 'release_master');
        if (a.to === 'MASTER') r.wantsMaster = true;
        else if (a.to === 'BACKUP' && a.from === 'MASTER') r.wantsMaster = false;
        // keepalived 2.x's lines (vrrp.c, vrrp_scheduler.c): the cause first, then "(VI_1) Entering MASTER STATE"
        const cause = a.reason === 'master down timer expired' ? 'Receive advertisement timeout' : a.reason;
        if (a.from !== 'INIT') this.logger.log('info', `(${r.config.name}) ${cause}`);
        this.logger.log('notice', `(${r.config.name}) Entering ${a.to} STATE${a.from === 'INIT' ? ' (init)' : ''}`);
        this.onStateChange?.();
        this.events.emit({
          type: 'vrrp-state',
          instance: r.config.name,
          from: a.from === 'STOP' ? 'INIT' : a.from,
          to: a.to,
          priority: r.state.effectivePriority,
          reason: a.reason,
          at,
        });
        if (a.to === 'MASTER') {
          const since = this.clock.now();
          this.queue(r, () => this.becomeMaster(r, since));
        } else if (a.from === 'MASTER') this.queue(r, () => this.leaveMaster(r));
        if (a.to === 'BACKUP' || a.to === 'FAULT') this.tellSync(r, a.to);
        this.reportGroupState(r, a.to);
        if (!this.stopping) this.syncGroup(r, a.to);
      }
    }
    // a timer may fire a fraction of a millisecond early: always re-arm after one
    if (before !== r.state || res.actions.length || e.type === 'timer') this.schedule(r);
  }

  /** The sync group's own state and its notify event (keepalived's send_group_notifies). */
  private reportGroupState(r: Running, to: VrrpStateName): void {
    const group = this.sync.groupOf(r.config.name);
    if (!group) return;
    const from = this.groupStates.get(group.name) ?? 'INIT';
    // each member's last transition (a stopped instance's machine state does not say STOP)
    const members = group.group.map((n) => this.running.get(n)?.transitions.at(-1)?.to ?? 'INIT');
    const next = syncGroupStateAfter(from, to, members);
    if (!next) return;
    this.groupStates.set(group.name, next);
    this.logger.log('notice', `VRRP_Group(${group.name}) Syncing instances to ${next} state`);
    this.events.emit({ type: 'sync-group-state', group: group.name, from, to: next, at: this.clock.wallNow() });
  }

  /** vrrp_sync_group: FAULT takes all to FAULT, MASTER and BACKUP follow (sync-group.ts decides who may go MASTER). */
  private syncGroup(r: Running, to: VrrpStateName): void {
    if (to !== 'MASTER' && to !== 'BACKUP' && to !== 'FAULT') return;
    const group = this.sync.groupOf(r.config.name);
    if (!group) return;
    for (const name of group.group) {
      const m = this.running.get(name);
      if (!m || m === r) continue;
      const reason = `sync group ${group.name}: ${r.config.name} is ${to}`;
      if (to === 'FAULT') {
        if (!m.state.fault) {
          m.syncFault = true;
          this.apply(m, { type: 'fault', on: true, reason });
        }
      } else if (m.syncFault) {
        // the member that failed recovered: the others leave FAULT with it
        m.syncFault = false;
        this.apply(m, { type: 'fault', on: false, reason });
      } else if (r.state.fault === false && m.state.state !== to && m.state.state !== 'FAULT') {
        if (to === 'BACKUP') m.wantsMaster = false;
        this.apply(m, { type: 'sync', to, reason });
      }
    }
  }

  private schedule(r: Running): void {
    r.timer?.cancel();
    r.timer = undefined;
    if (r.stopped) return;
    const d = nextDeadline(r.state);
    if (d === undefined) return;
    r.timer = this.clock.setTimer(Math.max(0, Math.ceil(d - this.clock.now())), () => this.apply(r, { type: 'timer' }));
  }

  private destinations(i: VrrpInstance): string[] {
    if (i.unicastPeers.length) return i.unicastPeers.map((p) => p.address);
    return [
      i.mcastDstIp ??
        (i.family === 6 ? this.config.globalDefs.vrrpMcastGroup6 : this.config.globalDefs.vrrpMcastGroup4),
    ];
  }

  /** The advert for one destination: the checksum's source is the packet's source (RFC 5798 §5.2.8). */
  private packet(r: Running, priority: number, dst: string): Uint8Array {
    const i = r.config;
    const src = r.source;
    const addresses = i.virtualIpaddresses.map((v) => v.address);
    const vrrp = encodeVrrp(
      i.version === 2
        ? {
            version: 2,
            vrid: i.vrid,
            priority,
            family: 4,
            addresses,
            advertInt: i.advertInt,
            authType: i.authentication ? (i.authentication.type === 'AH' ? AUTH_AH : AUTH_PASS) : AUTH_NONE,
            authData: i.authentication?.type === 'PASS' ? passAuthData(i.authentication.pass) : new Uint8Array(8),
          }
        : {
            version: 3,
            vrid: i.vrid,
            priority,
            family: i.family,
            addresses,
            maxAdvertIntCs: Math.round(i.advertInt * 100),
          },
      { src, dst, checksumAsV2: i.v3ChecksumAsV2 },
    );
    if (i.family === 6) return vrrp;
    const ttl = i.unicastPeers.length ? (i.unicastTtl ?? 255) : 255;
    r.ipId = (r.ipId + 1) & 0xffff;
    if (i.authentication?.type === 'AH') {
      // keepalived: the AH sequence number counts up per advert, from the last one sent or seen
      r.ahSeq = (r.ahSeq + 1) >>> 0;
      return encodeAhPacket(
        { tos: 0xc0, id: r.ipId, ttl, src, dst },
        r.ahSeq,
        vrrp,
        i.authentication.pass,
        !dst.startsWith('224.'),
      );
    }
    const header = encodeIpv4({
      tos: 0xc0,
      totalLength: 20 + vrrp.length,
      id: r.ipId,
      fragment: 0,
      ttl,
      protocol: VRRP_PROTOCOL,
      src,
      dst,
    });
    const out = new Uint8Array(20 + vrrp.length);
    out.set(header, 0);
    out.set(vrrp, 20);
    return out;
  }

  private sendAdvert(r: Running, priority: number): void {
    for (const dst of this.destinations(r.config)) {
      let sent = false;
      try {
        sent = (r.vmacSender ?? r.shared.socket).send(this.packet(r, priority, dst), dst, r.source);
      } catch (e) {
        // a send must never take the worker down: count it and log it
        this.logger.log('error', `(${r.config.name}) cannot send to ${dst}: ${e instanceof Error ? e.message : e}`);
      }
      this.count(r, sent ? 'advert_sent' : 'send_errors');
    }
    if (priority === 0) this.count(r, 'pri_zero_sent');
  }

  private tellSync(r: Running, to: 'BACKUP' | 'FAULT'): void {
    this.io
      .syncRole?.(r.config.name, to)
      .catch((e) =>
        this.logger.log('error', `(${r.config.name}) connection sync: ${e instanceof Error ? e.message : e}`),
      );
  }

  /** `since`: the transition's time (clock.now()); each step's time from it is logged */
  private async becomeMaster(r: Running, since: number): Promise<void> {
    if (r.stopped) return;
    const i = r.config;
    const owner = `(${i.name})`;
    const ms = () => Math.round(this.clock.now() - since);
    const steps: string[] = [];
    // the peer's flows go into the kernel before the VIPs (conntrackd's commit), docs/conn-sync.md
    if (this.io.syncRole) {
      await this.io
        .syncRole(i.name, 'MASTER')
        .catch((e) => this.logger.log('error', `${owner} connection sync: ${e instanceof Error ? e.message : e}`));
      if (r.stopped) return;
      steps.push(`connection sync commit ${ms()} ms`);
    }
    const before = ms();
    this.logFailures(await this.io.ip.addresses('add', placed(i, i.virtualIpaddresses), vipDev(i)), owner);
    this.logFailures(await this.io.ip.routes('add', i.virtualRoutes), owner);
    this.logFailures(await this.io.ip.rules('add', i.virtualRules), owner);
    steps.push(`VIPs ${ms() - before} ms`);
    r.held = { vips: i.virtualIpaddresses, routes: i.virtualRoutes, rules: i.virtualRules };
    // keepalived: a burst right after taking over, another garp_master_delay seconds later
    this.garpBurst(r);
    this.logger.log('info', `${owner} took over: ${steps.join(', ')}, announced ${ms()} ms after the transition`);
    this.armRefresh(r);
    r.garpTimer?.cancel();
    if (i.garpMasterDelay > 0)
      r.garpTimer = this.clock.setTimer(
        i.garpMasterDelay * 1000,
        () => r.state.state === 'MASTER' && this.garpBurst(r),
      );
  }

  /**
   * keepalived's garp_master_refresh: while MASTER, the addresses again every N seconds,
   * garp_master_refresh_repeat frames each (vrrp_gratuitous_arp_refresh_thread); 0 is off.
   */
  private armRefresh(r: Running): void {
    r.refreshTimer?.cancel();
    r.refreshTimer = undefined;
    const every = r.config.garpMasterRefresh;
    if (every <= 0) return;
    r.refreshTimer = this.clock.setTimer(every * 1000, () => {
      r.refreshTimer = undefined;
      if (r.stopped || r.state.state !== 'MASTER' || !r.held) return;
      this.garpBurst(r, undefined, r.config.garpMasterRefreshRepeat);
      this.armRefresh(r);
    });
  }

  private garpBurst(r: Running, only?: readonly IpAddressEntry[], repeat = r.config.garpMasterRepeat): void {
    const i = r.config;
    for (const v of placed(i, only ?? i.virtualIpaddresses)) {
      if (v.family === 4) this.io.gratuitousArp(v.dev ?? vipDev(i)!, v.address, repeat);
      else this.io.unsolicitedNa(v.dev ?? vipDev(i)!, v.address, repeat);
    }
  }

  /**
   * A lower-priority master was heard: a burst of garp_lower_prio_repeat now and another
   * garp_lower_prio_delay seconds later (keepalived's defaults: the garp_master ones), as keepalived's
   * vrrp_state_master_rx does, so neighbours that followed the other master come back.
   */
  private reannounce(r: Running): void {
    const i = r.config;
    const repeat = i.garpLowerPrioRepeat ?? i.garpMasterRepeat;
    if (repeat <= 0 || !r.held) return;
    this.garpBurst(r, undefined, repeat);
    const delay = i.garpLowerPrioDelay ?? i.garpMasterDelay;
    if (delay > 0 && !r.lowerPrioGarpTimer)
      r.lowerPrioGarpTimer = this.clock.setTimer(delay * 1000, () => {
        r.lowerPrioGarpTimer = undefined;
        if (r.state.state === 'MASTER' && r.held) this.garpBurst(r, undefined, repeat);
      });
  }

  private async leaveMaster(r: Running): Promise<void> {
    r.garpTimer?.cancel();
    r.refreshTimer?.cancel();
    r.lowerPrioGarpTimer?.cancel();
    r.lowerPrioGarpTimer = undefined;
    const held = r.held ?? {
      vips: r.config.virtualIpaddresses,
      routes: r.config.virtualRoutes,
      rules: r.config.virtualRules,
    };
    r.held = undefined;
    await this.io.ip.rules('del', held.rules);
    await this.io.ip.routes('del', held.routes);
    await this.io.ip.addresses('del', placed(r.config, held.vips), vipDev(r.config));
  }

  setTracking(instance: string, effective: number, fault: boolean, reason: string): void {
    const r = this.running.get(instance);
    if (!r) return;
    this.apply(r, { type: 'priority', effective });
    if (fault !== r.state.fault) this.apply(r, { type: 'fault', on: fault, reason });
  }

  /** Stops one instance: a MASTER sends priority 0 now; its addresses go in the instance's queue. */
  private stopInstance(r: Running): void {
    this.apply(r, { type: 'shutdown' });
    r.stopped = true;
    r.timer?.cancel();
    r.garpTimer?.cancel();
    r.lowerPrioGarpTimer?.cancel();
    r.refreshTimer?.cancel();
  }

  private detach(r: Running): void {
    this.running.delete(r.config.name);
    r.vmacSender?.close();
    const idx = r.shared.members.indexOf(r);
    if (idx >= 0) r.shared.members.splice(idx, 1);
    if (r.shared.members.length === 0) {
      r.shared.socket.close();
      this.sockets.delete(r.sockKey);
    }
  }

  /**
   * SIGHUP: unchanged instances keep their state, VIPs and timers and send nothing; a removed one
   * stops (priority 0 if it was MASTER); a changed one keeps its state when it is still the same
   * virtual router (keepalived's restore of the old state), its VIPs and routes updated by difference.
   */
  async reload(next: Config): Promise<void> {
    const old = this.config;
    this.config = next;
    this.sync = new SyncGroups(next.syncGroups);
    const wanted = new Map(next.vrrpInstances.map((i) => [i.name, i]));
    const work: Promise<void>[] = [];
    for (const r of [...this.running.values()]) {
      const i = wanted.get(r.config.name);
      if (i && instanceKey(i) === r.key) {
        r.config = i;
        continue;
      }
      if (i && identity(i) === identity(r.config) && r.state.state !== 'INIT') {
        // same virtual router, other settings: carry the state over, apply only the differences
        const was = r.config;
        const carried = r.state;
        r.stopped = true;
        r.timer?.cancel();
        r.garpTimer?.cancel();
        r.refreshTimer?.cancel();
        this.detach(r);
        const n = this.startInstance(i, carried);
        if (n) {
          n.ops = r.ops;
          n.ahSeq = r.ahSeq;
          n.transitions.push(...r.transitions);
          Object.assign(n.stats, r.stats);
          if (carried.state === 'MASTER') {
            this.queue(n, async () => {
              const owner = `(${i.name})`;
              const held = r.held ?? {
                vips: was.virtualIpaddresses,
                routes: was.virtualRoutes,
                rules: was.virtualRules,
              };
              await this.io.ip.rules('del', minus(held.rules, i.virtualRules));
              await this.io.ip.routes('del', minus(held.routes, i.virtualRoutes));
              await this.io.ip.addresses('del', placed(was, minus(held.vips, i.virtualIpaddresses)), vipDev(was));
              const added = minus(i.virtualIpaddresses, held.vips);
              this.logFailures(await this.io.ip.addresses('add', placed(i, added), vipDev(i)), owner);
              this.logFailures(await this.io.ip.routes('add', minus(i.virtualRoutes, held.routes)), owner);
              this.logFailures(await this.io.ip.rules('add', minus(i.virtualRules, held.rules)), owner);
              n.held = { vips: i.virtualIpaddresses, routes: i.virtualRoutes, rules: i.virtualRules };
              if (added.length) this.garpBurst(n, added);
              this.armRefresh(n);
            });
            // the new settings (priority, interval) are announced at once
            this.sendAdvert(n, n.state.effectivePriority);
          }
          work.push(n.ops);
        }
        continue;
      }
      this.stopInstance(r);
      work.push(r.ops);
      this.detach(r);
    }
    await Promise.all(work);
    const gone = old.vrrpInstances.filter(
      (o) => o.vmac && !next.vrrpInstances.some((i) => i.vmac?.name === o.vmac?.name),
    );
    await this.vmacs('del', gone);
    await this.vmacs(
      'add',
      next.vrrpInstances.filter((i) => !this.running.has(i.name)),
    );
    for (const i of next.vrrpInstances) {
      if (this.running.has(i.name)) continue;
      const n = this.startInstance(i);
      if (n) work.push(n.ops);
    }
    for (const name of [...this.notRun.keys()]) if (!wanted.has(name)) this.notRun.delete(name);
    // static_*: only what changed
    await this.statics('del', {
      staticIpaddresses: minus(old.staticIpaddresses, next.staticIpaddresses),
      staticRoutes: minus(old.staticRoutes, next.staticRoutes),
      staticRules: minus(old.staticRules, next.staticRules),
    });
    await this.statics('add', {
      staticIpaddresses: minus(next.staticIpaddresses, old.staticIpaddresses),
      staticRoutes: minus(next.staticRoutes, old.staticRoutes),
      staticRules: minus(next.staticRules, old.staticRules),
    });
    await Promise.all(work);
  }

  snapshot(): VrrpInstanceStatus[] {
    return this.config.vrrpInstances.map((i) => {
      const r = this.running.get(i.name);
      const base = {
        name: i.name,
        vrid: i.vrid,
        ...(i.interface ? { interface: i.interface } : {}),
        priority: i.priority,
        vips: i.virtualIpaddresses.map((v) => `${v.address}/${v.prefixLen}`),
        addresses: vipStatuses(i),
      };
      if (!r)
        return {
          ...base,
          state: 'INIT' as const,
          effectivePriority: i.priority,
          lastTransitions: [],
          stats: {},
          note: this.notRun.get(i.name) ?? 'not started',
        };
      return {
        ...base,
        state: r.state.state,
        effectivePriority: r.state.effectivePriority,
        ...(r.state.state === 'MASTER'
          ? { masterAddress: r.params.primaryAddress }
          : r.state.masterAddress
            ? { masterAddress: r.state.masterAddress }
            : {}),
        lastTransitions: [...r.transitions],
        stats: { ...r.stats },
      };
    });
  }

  /**
   * Graceful stop: every MASTER sends its priority-0 advert first (one synchronous pass, as
   * keepalived does for all instances), then the addresses, routes and rules go, all at once.
   */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    const all = [...this.running.values()];
    for (const r of all) this.stopInstance(r);
    await Promise.all(all.map((r) => r.ops));
    for (const s of this.sockets.values()) s.socket.close();
    this.sockets.clear();
    this.running.clear();
    await this.vmacs('del', this.config.vrrpInstances);
    await this.statics('del', this.config);
  }
}
