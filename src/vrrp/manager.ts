/**
 * The VRRP driver: binds each instance's state machine (instance.ts) to the clock, a raw socket
 * per interface, the VIPs and gratuitous ARPs. IPv4 with VRRP v2 (auth none or PASS) and v3,
 * multicast or unicast peers. IPv6 instances and AH authentication are reported as not run.
 */
import { networkInterfaces } from 'node:os';
import { AH_PROTOCOL, decodeAh, encodeAhPacket, verifyIcv } from '../codec/ah.js';
import { decodeIpv4 } from '../codec/ipv4.js';
import { AUTH_AH, AUTH_NONE, AUTH_PASS, decodeVrrp, encodeVrrp, passAuthData, VRRP_PROTOCOL } from '../codec/vrrp.js';
import type { Config, RouteEntry, RuleEntry, VrrpInstance } from '../config/model.js';
import type { Clock, TimerHandle } from '../util/clock.js';
import type { EventSink, VrrpStateName } from '../util/events.js';
import type { Logger } from '../util/logger.js';
import type { ProcessRunner } from '../util/ports.js';
import {
  type InstanceEvent,
  type InstanceParams,
  type InstanceState,
  initialState,
  nextDeadline,
  step,
} from './instance.js';
import type { VrrpInstanceStatus } from './status.js';
import { syncGroupStateAfter } from './sync-group-state.js';

/** The edges the driver needs (real ones: src/os/vrrp-socket.ts). */
export interface VrrpSocketPort {
  send(payload: Uint8Array, destination: string): boolean;
  close(): void;
}

/** A received advert: IPv4 sockets hand over the whole IP packet, IPv6 ones the VRRP message. */
export type Received =
  | { readonly family: 4; readonly packet: Uint8Array }
  | { readonly family: 6; readonly vrrp: Uint8Array; readonly src: string };

export interface VrrpIo {
  /** `ah`: an IPv4 socket for IP protocol 51 sending whole packets (IP_HDRINCL) */
  openSocket(
    ifname: string,
    family: 4 | 6,
    source: string,
    onPacket: (r: Received) => void,
    ah?: boolean,
  ): VrrpSocketPort;
  gratuitousArp(ifname: string, vip: string, count: number): void;
  unsolicitedNa(ifname: string, vip: string, count: number): void;
  runner: ProcessRunner;
}

interface Running {
  readonly config: VrrpInstance;
  readonly params: InstanceParams;
  state: InstanceState;
  timer?: TimerHandle;
  socket: VrrpSocketPort;
  garpTimer?: TimerHandle;
  readonly transitions: { from: VrrpStateName; to: VrrpStateName; reason: string; at: number }[];
  ahSeq?: number;
  /** FAULT imposed by a sync-group member rather than by this instance's own tracking */
  syncFault?: boolean;
  readonly stats: Record<string, number>;
}

/** The interface's primary address: IPv4, or for VRRPv3 over IPv6 the link-local one (RFC 5798 §5.1.2.1). */
function primaryAddress(ifname: string, family: 4 | 6): string | undefined {
  const addrs = networkInterfaces()[ifname] ?? [];
  if (family === 4) return addrs.find((a) => a.family === 'IPv4' && !a.internal)?.address;
  return addrs.find((a) => a.family === 'IPv6' && a.address.toLowerCase().startsWith('fe80'))?.address.split('%')[0];
}

export class VrrpManager {
  private readonly running = new Map<string, Running>();
  /** vrrp_sync_group name -> the group's own state, for its notify scripts */
  private readonly groupStates = new Map<string, VrrpStateName>();
  private readonly notRun = new Map<string, string>();
  private readonly sockets = new Map<string, { socket: VrrpSocketPort; members: Running[] }>();

  constructor(
    private config: Config,
    private readonly clock: Clock,
    private readonly io: VrrpIo,
    private readonly logger: Logger,
    private readonly events: EventSink,
  ) {}

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

  /** static_ipaddress / static_routes / static_rules: set at start, removed at stop (keepalived). */
  private async statics(op: 'add' | 'del'): Promise<void> {
    const c = this.config;
    for (const a of c.staticIpaddresses) {
      if (!a.dev) {
        this.logger.log('error', `static_ipaddress ${a.address} has no dev (${a.loc.file}:${a.loc.line}); not applied`);
        continue;
      }
      const argv = ['ip', a.family === 6 ? '-6' : '-4', 'addr', op, `${a.address}/${a.prefixLen}`, 'dev', a.dev];
      if (op === 'add') {
        if (a.family === 6) argv.push('nodad');
        if (a.brd) argv.push('brd', a.brd);
        if (a.scope) argv.push('scope', a.scope);
        if (a.label) argv.push('label', a.label);
      }
      await this.io.runner.run(argv, { timeoutMs: 5000 });
    }
    await this.routesAndRules(c.staticRoutes, c.staticRules, op, 'static');
  }

  async start(): Promise<void> {
    await this.statics('add');
    for (const i of this.config.vrrpInstances) {
      const why = this.unsupported(i);
      if (why) {
        this.notRun.set(i.name, why);
        this.logger.log('warning', `VRRP_Instance(${i.name}) not started: ${why}`);
        continue;
      }
      const ifname = i.interface!;
      const source = i.srcIp ?? primaryAddress(ifname, i.family);
      if (!source) {
        this.notRun.set(i.name, `interface ${ifname} has no ${i.family === 4 ? 'IPv4' : 'IPv6 link-local'} address`);
        continue;
      }
      const ah = i.authentication?.type === 'AH';
      const sockKey = `${ifname}/${i.family}${ah ? '/ah' : ''}`;
      let shared = this.sockets.get(sockKey);
      try {
        if (!shared) {
          const members: Running[] = [];
          const socket = this.io.openSocket(ifname, i.family, source, (r) => this.onPacket(members, r), ah);
          shared = { socket, members };
          this.sockets.set(sockKey, shared);
        }
      } catch (e) {
        this.notRun.set(i.name, `cannot open the VRRP socket: ${e instanceof Error ? e.message : e}`);
        this.logger.log('error', `VRRP_Instance(${i.name}) ${this.notRun.get(i.name)}`);
        continue;
      }
      const params = this.params(i, source);
      const r: Running = {
        config: i,
        params,
        state: initialState(params),
        socket: shared.socket,
        transitions: [],
        stats: {},
      };
      shared.members.push(r);
      this.running.set(i.name, r);
      // keepalived removes VIPs a crash may have left behind before it starts
      await this.vips(r, 'del');
      this.apply(r, { type: 'startup' });
    }
  }

  private unsupported(i: VrrpInstance): string | undefined {
    if (i.authentication?.type === 'AH' && i.family === 6) return 'AH is VRRPv2, IPv4 only';
    if (!i.interface) return 'no interface';
    return undefined;
  }

  private count(r: Running, key: string): void {
    r.stats[key] = (r.stats[key] ?? 0) + 1;
  }

  private onPacket(members: Running[], rcv: Received): void {
    let h: { src: string; dst: string; ttl: number };
    let payload: Uint8Array;
    let ahCheck: ((pass: string) => boolean) | undefined;
    if (rcv.family === 4) {
      const ip = decodeIpv4(rcv.packet);
      if (!ip.ok) return;
      h = ip.value.header;
      if (ip.value.header.protocol === AH_PROTOCOL) {
        const ah = decodeAh(ip.value.payload);
        if (!ah.ok || ah.value.ah.nextHeader !== VRRP_PROTOCOL) return;
        const header = ip.value.header;
        const unicast = !header.dst.startsWith('224.');
        const inner = ah.value;
        ahCheck = (pass) => verifyIcv(header, inner.ah, inner.payload, pass, unicast);
        payload = inner.payload;
      } else if (ip.value.header.protocol === VRRP_PROTOCOL) payload = ip.value.payload;
      else return;
    } else {
      h = { src: rcv.src, dst: 'ff02::12', ttl: 255 };
      payload = rcv.vrrp;
    }
    const vrid = payload[1];
    for (const r of members) {
      if (r.config.vrid !== vrid) continue;
      if (h.src === r.params.primaryAddress) continue;
      const d = decodeVrrp(payload, rcv.family, {
        src: h.src,
        dst: h.dst,
        checksumAsV2: r.config.v3ChecksumAsV2,
        kernelChecked: rcv.family === 6,
      });
      if (!d.ok) {
        this.count(r, d.error.code);
        continue;
      }
      const a = d.value;
      // RFC 5798 §7.1: multicast adverts must arrive with TTL 255
      if (h.dst.startsWith('224.') && h.ttl !== 255) {
        this.count(r, 'vrrpStatsIpTtlErrors');
        continue;
      }
      if (a.version !== r.config.version) {
        this.count(r, 'vrrpStatsVersionErrors');
        continue;
      }
      if (a.version === 2) {
        const want = r.config.authentication;
        const type = want ? (want.type === 'PASS' ? AUTH_PASS : AUTH_AH) : AUTH_NONE;
        if (a.authType !== type) {
          this.count(r, 'authtype_mismatch');
          continue;
        }
        if (
          type === AUTH_PASS &&
          Buffer.compare(Buffer.from(a.authData!), Buffer.from(passAuthData(want!.pass))) !== 0
        ) {
          this.count(r, 'auth_failure');
          continue;
        }
        // RFC 2402 §3.4.4: the ICV must match, and an AH instance takes nothing that came without AH
        if (type === AUTH_AH && !ahCheck?.(want!.pass)) {
          this.count(r, 'auth_failure');
          continue;
        }
        // keepalived drops v2 adverts whose interval differs (two masters otherwise)
        if (a.advertInt !== r.config.advertInt) {
          this.count(r, 'advert_interval_err');
          continue;
        }
      }
      this.count(r, 'advert_rcvd');
      if (a.priority === 0) this.count(r, 'pri_zero_rcvd');
      const advertIntMs = a.version === 3 ? (a.maxAdvertIntCs ?? 100) * 10 : (a.advertInt ?? 1) * 1000;
      this.apply(r, { type: 'advert', from: h.src, priority: a.priority, advertIntMs });
    }
  }

  private apply(r: Running, e: InstanceEvent): void {
    const now = this.clock.now();
    const res = step(r.params, r.state, e, now);
    const before = r.state;
    r.state = res.state;
    for (const a of res.actions) {
      if (a.type === 'send-advert') this.sendAdvert(r, a.priority);
      else {
        const at = this.clock.wallNow();
        r.transitions.push({ from: a.from, to: a.to, reason: a.reason, at });
        if (r.transitions.length > 20) r.transitions.shift();
        this.logger.log('notice', `VRRP_Instance(${r.config.name}) Entering ${a.to} STATE (${a.reason})`);
        this.events.emit({
          type: 'vrrp-state',
          instance: r.config.name,
          from: a.from === 'STOP' ? 'INIT' : a.from,
          to: a.to,
          priority: r.state.effectivePriority,
          reason: a.reason,
          at,
        });
        if (a.to === 'MASTER') void this.becomeMaster(r);
        else if (a.from === 'MASTER') void this.leaveMaster(r);
        this.reportGroupState(r, a.to);
        this.syncGroup(r, a.to);
      }
    }
    // a timer may fire a fraction of a millisecond early: always re-arm after one
    if (before !== r.state || res.actions.length || e.type === 'timer') this.schedule(r);
  }

  /** The sync group's own state and its notify event (keepalived's send_group_notifies). */
  private reportGroupState(r: Running, to: VrrpStateName): void {
    const group = this.config.syncGroups.find((g) => g.group.includes(r.config.name));
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

  /** vrrp_sync_group: members move together (FAULT takes all to FAULT, MASTER and BACKUP follow). */
  private syncGroup(r: Running, to: VrrpStateName): void {
    if (to !== 'MASTER' && to !== 'BACKUP' && to !== 'FAULT') return;
    const group = this.config.syncGroups.find((g) => g.group.includes(r.config.name));
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
        this.apply(m, { type: 'sync', to, reason });
      }
    }
  }

  private schedule(r: Running): void {
    r.timer?.cancel();
    const d = nextDeadline(r.state);
    if (d === undefined) return;
    r.timer = this.clock.setTimer(Math.max(0, Math.ceil(d - this.clock.now())), () => this.apply(r, { type: 'timer' }));
  }

  private sendAdvert(r: Running, priority: number): void {
    const i = r.config;
    const addresses = i.virtualIpaddresses.map((v) => v.address);
    const dests = i.unicastPeers.length
      ? i.unicastPeers.map((p) => p.address)
      : [
          i.mcastDstIp ??
            (i.family === 6 ? this.config.globalDefs.vrrpMcastGroup6 : this.config.globalDefs.vrrpMcastGroup4),
        ];
    for (const dst of dests) {
      const payload = encodeVrrp(
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
        { src: r.params.primaryAddress, dst, checksumAsV2: i.v3ChecksumAsV2 },
      );
      let sent = false;
      try {
        if (i.authentication?.type === 'AH') {
          // keepalived: IP ID and AH sequence number count up per advert
          r.ahSeq = (r.ahSeq ?? 0) + 1;
          const packet = encodeAhPacket(
            { tos: 0xc0, id: r.ahSeq & 0xffff, ttl: 255, src: r.params.primaryAddress, dst },
            r.ahSeq,
            payload,
            i.authentication.pass,
            !dst.startsWith('224.'),
          );
          sent = r.socket.send(packet, dst);
        } else sent = r.socket.send(payload, dst);
      } catch (e) {
        // a send must never take the worker down: count it and log it
        this.logger.log(
          'error',
          `VRRP_Instance(${i.name}) cannot send to ${dst}: ${e instanceof Error ? e.message : e}`,
        );
      }
      this.count(r, sent ? 'advert_sent' : 'send_errors');
    }
    if (priority === 0) this.count(r, 'pri_zero_sent');
  }

  private async vips(r: Running, op: 'add' | 'del'): Promise<void> {
    const i = r.config;
    for (const v of [...i.virtualIpaddresses, ...i.virtualIpaddressesExcluded]) {
      const argv = [
        'ip',
        v.family === 6 ? '-6' : '-4',
        'addr',
        op,
        `${v.address}/${v.prefixLen}`,
        'dev',
        v.dev ?? i.interface!,
      ];
      // IPv6 VIPs skip duplicate address detection, so they are usable at once (as keepalived's nodad)
      if (op === 'add' && v.family === 6) argv.push('nodad');
      if (op === 'add') {
        if (v.brd) argv.push('brd', v.brd);
        if (v.scope) argv.push('scope', v.scope);
        if (v.label) argv.push('label', v.label);
      }
      const res = await this.io.runner.run(argv, { timeoutMs: 5000, captureBytes: 0 });
      if (op === 'add' && res.exitCode !== 0 && res.exitCode !== 2)
        this.logger.log('error', `VRRP_Instance(${i.name}) ${argv.join(' ')} failed`);
    }
  }

  /** `virtual_routes` / `virtual_rules` and `static_*` entries, applied with `ip route` / `ip rule`. */
  private async routesAndRules(
    routes: readonly RouteEntry[],
    rules: readonly RuleEntry[],
    op: 'add' | 'del',
    owner: string,
  ): Promise<void> {
    for (const e of routes) {
      const argv = ['ip', e.family === 6 ? '-6' : '-4', 'route', op === 'add' ? 'replace' : 'del', ...e.args];
      const res = await this.io.runner.run(argv, { timeoutMs: 5000 });
      if (op === 'add' && res.exitCode !== 0)
        this.logger.log('error', `${owner}: ${argv.join(' ')} failed (${e.loc.file}:${e.loc.line})`);
    }
    for (const e of rules) {
      const argv = ['ip', e.family === 6 ? '-6' : '-4', 'rule', op, ...e.args];
      const res = await this.io.runner.run(argv, { timeoutMs: 5000 });
      if (op === 'add' && res.exitCode !== 0)
        this.logger.log('error', `${owner}: ${argv.join(' ')} failed (${e.loc.file}:${e.loc.line})`);
    }
  }

  private async becomeMaster(r: Running): Promise<void> {
    await this.vips(r, 'add');
    await this.routesAndRules(r.config.virtualRoutes, r.config.virtualRules, 'add', `VRRP_Instance(${r.config.name})`);
    const i = r.config;
    const burst = () => {
      for (const v of i.virtualIpaddresses) {
        if (v.family === 4) this.io.gratuitousArp(v.dev ?? i.interface!, v.address, i.garpMasterRepeat);
        else this.io.unsolicitedNa(v.dev ?? i.interface!, v.address, i.garpMasterRepeat);
      }
    };
    // keepalived: a burst right after taking over, another garp_master_delay seconds later
    burst();
    r.garpTimer?.cancel();
    if (i.garpMasterDelay > 0)
      r.garpTimer = this.clock.setTimer(i.garpMasterDelay * 1000, () => r.state.state === 'MASTER' && burst());
  }

  private async leaveMaster(r: Running): Promise<void> {
    r.garpTimer?.cancel();
    await this.routesAndRules(r.config.virtualRoutes, r.config.virtualRules, 'del', `VRRP_Instance(${r.config.name})`);
    await this.vips(r, 'del');
  }

  setTracking(instance: string, effective: number, fault: boolean, reason: string): void {
    const r = this.running.get(instance);
    if (!r) return;
    this.apply(r, { type: 'priority', effective });
    if (fault !== r.state.fault) this.apply(r, { type: 'fault', on: fault, reason });
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

  /** Graceful stop: masters send priority 0 and release their VIPs. */
  async stop(): Promise<void> {
    for (const r of this.running.values()) {
      const wasMaster = r.state.state === 'MASTER';
      this.apply(r, { type: 'shutdown' });
      r.timer?.cancel();
      r.garpTimer?.cancel();
      if (wasMaster) await this.vips(r, 'del');
    }
    for (const s of this.sockets.values()) s.socket.close();
    this.sockets.clear();
    await this.statics('del');
  }
}
