/**
 * The virtual-server table: services, destinations, connection accounting and persistence, with
 * IPVS's semantics (net/netfilter/ipvs/ip_vs_ctl.c, ip_vs_conn.c, ip_vs_core.c). Time comes from
 * the injected Clock; nothing here touches sockets.
 */
import ipaddr from 'ipaddr.js';
import type { Family } from '../config/model.js';
import type { Clock, TimerHandle } from '../util/clock.js';
import { err, ok, type Result } from '../util/result.js';
import { ESTIMATOR_INTERVAL_MS, MutableStats, RateEstimator } from './estimator.js';
import { SCHEDULERS } from './sched/index.js';
import type { SchedDest, Scheduler } from './sched/scheduler.js';
import {
  type ConnHandle,
  type ConnSnapshot,
  type ConnState,
  type DestParams,
  destId,
  type Endpoint,
  type ForwardingTable,
  type ServiceKey,
  type ServiceParams,
  type ServiceSnapshot,
  serviceId,
  type TableOp,
  type TableOpError,
  type TableSnapshot,
  type Timeouts,
} from './types.js';

/** Kernel defaults (ip_vs_proto_tcp.c tcp_timeouts[], ip_vs_proto_udp.c), seconds. */
export const STATE_TIMEOUTS: Readonly<Record<ConnState, number>> = {
  NONE: 2,
  ESTABLISHED: 900,
  SYN_SENT: 120,
  SYN_RECV: 60,
  FIN_WAIT: 120,
  TIME_WAIT: 120,
  CLOSE: 10,
  CLOSE_WAIT: 60,
  LAST_ACK: 30,
  LISTEN: 120,
  SYNACK: 120,
  UDP: 300,
  ERR: 2,
};

/** The size ipvsadm's header reports (IP_VS_CONN_TAB_SIZE default 2^12). */
export const CONN_TAB_SIZE = 4096;

export interface DestState extends SchedDest, Omit<DestParams, 'weight'> {
  family: Family;
  stats: MutableStats;
  est: RateEstimator;
}

interface Template {
  dest: DestState;
  expiresAt: number;
  /** connections created through this template that are still open */
  controlled: number;
}

interface Service {
  key: ServiceKey;
  id: string;
  params: ServiceParams;
  dests: DestState[];
  scheduler: Scheduler;
  stats: MutableStats;
  est: RateEstimator;
  templates: Map<string, Template>;
}

class Conn implements ConnHandle {
  state: ConnState = 'NONE';
  lastSeen: number;
  closed = false;
  active = false;
  constructor(
    readonly table: VirtualServerTable,
    readonly service: Service,
    readonly destState: DestState,
    readonly client: Endpoint,
    readonly template: Template | undefined,
  ) {
    this.lastSeen = table.clock.now();
  }
  get dest(): Endpoint {
    return { address: this.destState.address, port: this.destState.port };
  }
  get forward() {
    return this.destState.forward;
  }
  setState(state: ConnState): void {
    if (this.closed) return;
    this.state = state;
    this.lastSeen = this.table.clock.now();
    // ActiveConn counts ESTABLISHED only; everything else is InActConn (ip_vs_proto_tcp.c set_tcp_state)
    const active = state === 'ESTABLISHED';
    if (active !== this.active) {
      this.active = active;
      const d = this.destState;
      if (active) {
        d.activeConns++;
        d.inactConns--;
      } else {
        d.activeConns--;
        d.inactConns++;
      }
      this.table.updateOverload(d);
    }
  }
  idleTimeoutMs(): number {
    return this.table.timeoutFor(this.state) * 1000;
  }
  countIn(packets: number, bytes: number): void {
    this.lastSeen = this.table.clock.now();
    this.destState.stats.inPkts += packets;
    this.destState.stats.inBytes += bytes;
    this.service.stats.inPkts += packets;
    this.service.stats.inBytes += bytes;
  }
  countOut(packets: number, bytes: number): void {
    this.lastSeen = this.table.clock.now();
    this.destState.stats.outPkts += packets;
    this.destState.stats.outBytes += bytes;
    this.service.stats.outPkts += packets;
    this.service.stats.outBytes += bytes;
  }
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const d = this.destState;
    if (this.active) d.activeConns--;
    else d.inactConns--;
    this.table.updateOverload(d);
    this.table.forget(this);
    if (this.template) {
      this.template.controlled--;
      this.template.expiresAt = Math.max(
        this.template.expiresAt,
        this.table.clock.now() + (this.service.params.persistentTimeout ?? 0) * 1000,
      );
    }
  }
}

export interface TableOptions {
  /** IPVS sysctl expire_nodest_conn: close connections of a deleted destination (the data plane acts on it) */
  readonly expireNodestConn?: boolean;
  readonly random?: () => number;
}

const ERROR_TEXT: Record<TableOpError['code'], string> = {
  'service-exists': 'Service already exists',
  'no-service': 'No such service',
  'dest-exists': 'Destination already exists',
  'no-dest': 'No such destination',
  'no-scheduler': 'Scheduler or persistence engine not found',
  invalid: 'Invalid argument',
};

const fail = (code: TableOpError['code'], detail?: string): Result<never, TableOpError> =>
  err({ code, message: detail ? `${ERROR_TEXT[code]}: ${detail}` : ERROR_TEXT[code] });

export type DestRemovedListener = (service: string, dest: Endpoint, closeConnections: boolean) => void;

export class VirtualServerTable implements ForwardingTable {
  private readonly services = new Map<string, Service>();
  private readonly conns = new Set<Conn>();
  private timeouts: Timeouts = {
    tcp: STATE_TIMEOUTS.ESTABLISHED,
    tcpfin: STATE_TIMEOUTS.FIN_WAIT,
    udp: STATE_TIMEOUTS.UDP,
  };
  private timer: TimerHandle | undefined;
  private readonly destRemoved = new Set<DestRemovedListener>();
  /** connections refused for want of a destination, per service id */
  readonly noDestination = new Map<string, number>();

  constructor(
    readonly clock: Clock,
    private readonly options: TableOptions = {},
  ) {}

  /** Starts the 2-second estimator and template expiry tick. */
  start(): void {
    if (this.timer) return;
    const tick = () => {
      this.tick();
      this.timer = this.clock.setTimer(ESTIMATOR_INTERVAL_MS, tick);
    };
    this.timer = this.clock.setTimer(ESTIMATOR_INTERVAL_MS, tick);
  }
  stop(): void {
    this.timer?.cancel();
    this.timer = undefined;
  }

  onDestRemoved(listener: DestRemovedListener): () => void {
    this.destRemoved.add(listener);
    return () => this.destRemoved.delete(listener);
  }

  tick(): void {
    const now = this.clock.now();
    for (const s of this.services.values()) {
      s.est.tick(s.stats);
      for (const d of s.dests) d.est.tick(d.stats);
      for (const [k, t] of s.templates) {
        if (t.controlled <= 0 && t.expiresAt <= now) {
          s.templates.delete(k);
          t.dest.persistConns--;
        }
      }
    }
  }

  timeoutFor(state: ConnState): number {
    if (state === 'ESTABLISHED') return this.timeouts.tcp;
    if (state === 'FIN_WAIT') return this.timeouts.tcpfin;
    if (state === 'UDP') return this.timeouts.udp;
    return STATE_TIMEOUTS[state];
  }

  applyAll(ops: readonly TableOp[]): Result<void, TableOpError>[] {
    return ops.map((op) => this.apply(op));
  }

  apply(op: TableOp): Result<void, TableOpError> {
    switch (op.op) {
      case 'add-service': {
        const id = serviceId(op.key);
        if (this.services.has(id)) return fail('service-exists');
        const checked = this.checkServiceParams(op.key, op.params);
        if (!checked.ok) return checked;
        const factory = SCHEDULERS[op.params.scheduler];
        const svc: Service = {
          key: op.key,
          id,
          params: op.params,
          dests: [],
          scheduler: factory({
            flags: op.params.schedFlags,
            ...(this.options.random ? { random: this.options.random } : {}),
          }),
          stats: new MutableStats(),
          est: new RateEstimator(),
          templates: new Map(),
        };
        svc.scheduler.update(svc.dests);
        this.services.set(id, svc);
        return ok(undefined);
      }
      case 'edit-service': {
        const svc = this.services.get(serviceId(op.key));
        if (!svc) return fail('no-service');
        const checked = this.checkServiceParams(op.key, op.params);
        if (!checked.ok) return checked;
        if (
          op.params.scheduler !== svc.params.scheduler ||
          op.params.schedFlags.join() !== svc.params.schedFlags.join()
        ) {
          svc.scheduler = SCHEDULERS[op.params.scheduler]({ flags: op.params.schedFlags });
          svc.scheduler.update(svc.dests);
        }
        if (op.params.persistentTimeout === undefined) {
          for (const t of svc.templates.values()) t.dest.persistConns--;
          svc.templates.clear();
        }
        svc.params = op.params;
        return ok(undefined);
      }
      case 'del-service': {
        const id = serviceId(op.key);
        const svc = this.services.get(id);
        if (!svc) return fail('no-service');
        this.services.delete(id);
        for (const d of svc.dests) this.removeDest(svc, d);
        return ok(undefined);
      }
      case 'add-dest':
      case 'edit-dest': {
        const svc = this.services.get(serviceId(op.key));
        if (!svc) return fail('no-service');
        const bad = this.checkDestParams(op.dest, op.params, op.key.family);
        if (bad) return bad;
        const id = destId(op.dest, op.key.family);
        const existing = svc.dests.find((d) => d.id === id);
        if (op.op === 'add-dest' && existing) return fail('dest-exists');
        if (op.op === 'edit-dest' && !existing) return fail('no-dest');
        if (existing) {
          Object.assign(existing, op.params);
          if (op.params.weight > 0) existing.lastWeight = op.params.weight;
          this.updateOverload(existing);
        } else {
          svc.dests.push({
            ...op.params,
            id,
            address: op.dest.address,
            port: op.dest.port,
            family: op.key.family,
            lastWeight: op.params.weight,
            activeConns: 0,
            inactConns: 0,
            persistConns: 0,
            overloaded: false,
            available: true,
            stats: new MutableStats(),
            est: new RateEstimator(),
          });
        }
        svc.scheduler.update(svc.dests);
        return ok(undefined);
      }
      case 'del-dest': {
        const svc = this.services.get(serviceId(op.key));
        if (!svc) return fail('no-service');
        const d = svc.dests.find((x) => x.id === destId(op.dest, op.key.family));
        if (!d) return fail('no-dest');
        this.removeDest(svc, d);
        svc.scheduler.update(svc.dests);
        return ok(undefined);
      }
      case 'clear':
        for (const svc of [...this.services.values()]) this.apply({ op: 'del-service', key: svc.key });
        return ok(undefined);
      case 'zero': {
        const list = op.key ? [this.services.get(serviceId(op.key))] : [...this.services.values()];
        if (list[0] === undefined && op.key) return fail('no-service');
        for (const s of list) {
          if (!s) continue;
          s.stats.zero();
          s.est.reset(s.stats);
          for (const d of s.dests) {
            d.stats.zero();
            d.est.reset(d.stats);
          }
        }
        return ok(undefined);
      }
      case 'set-timeouts': {
        for (const v of [op.tcp, op.tcpfin, op.udp])
          if (!(Number.isInteger(v) && v >= 0)) return fail('invalid', 'timeouts must be whole seconds');
        this.timeouts = {
          tcp: op.tcp || this.timeouts.tcp,
          tcpfin: op.tcpfin || this.timeouts.tcpfin,
          udp: op.udp || this.timeouts.udp,
        };
        return ok(undefined);
      }
    }
  }

  private checkServiceParams(key: ServiceKey, p: ServiceParams): Result<void, TableOpError> {
    if (!Object.hasOwn(SCHEDULERS, p.scheduler)) return fail('no-scheduler', p.scheduler);
    if (key.kind === 'addr' && key.port === 0 && p.persistentTimeout === undefined) {
      return fail('invalid', 'zero port specified for non-persistent service');
    }
    if (
      p.persistentPrefixLen !== undefined &&
      !(p.persistentPrefixLen >= 0 && p.persistentPrefixLen <= (key.family === 4 ? 32 : 128))
    ) {
      return fail('invalid', 'persistence netmask');
    }
    return ok(undefined);
  }

  private checkDestParams(dest: Endpoint, p: DestParams, family: Family): Result<never, TableOpError> | undefined {
    if (!(Number.isInteger(p.weight) && p.weight >= 0 && p.weight <= 65535))
      return fail('invalid', 'weight must be 0..65535');
    if (p.lThreshold > p.uThreshold && p.uThreshold !== 0)
      return fail('invalid', 'lower threshold above upper threshold');
    if (!ipaddr.isValid(dest.address) || (ipaddr.parse(dest.address).kind() === 'ipv6' ? 6 : 4) !== family) {
      if (p.forward !== 'tunnel') return fail('invalid', `destination address ${dest.address}`);
    }
    return undefined;
  }

  private removeDest(svc: Service, d: DestState): void {
    svc.dests = svc.dests.filter((x) => x !== d);
    d.available = false;
    for (const [k, t] of svc.templates) {
      if (t.dest === d) {
        svc.templates.delete(k);
        d.persistConns--;
      }
    }
    for (const l of this.destRemoved)
      l(svc.id, { address: d.address, port: d.port }, this.options.expireNodestConn ?? false);
  }

  /** OVERLOAD as ip_vs_core/ip_vs_ctl set it: on at u_threshold, off below l_threshold (or 3/4 of u). */
  updateOverload(d: DestState): void {
    if (d.uThreshold === 0) {
      d.overloaded = false;
      return;
    }
    const total = d.activeConns + d.inactConns;
    if (!d.overloaded && total >= d.uThreshold) d.overloaded = true;
    else if (d.overloaded && (d.lThreshold ? total < d.lThreshold : total * 4 < d.uThreshold * 3)) d.overloaded = false;
  }

  forget(c: Conn): void {
    this.conns.delete(c);
  }

  private templateKey(svc: Service, client: Endpoint): string {
    const family = svc.key.family;
    const bits = svc.params.persistentPrefixLen ?? (family === 4 ? 32 : 128);
    let addr = client.address;
    try {
      const parsed = ipaddr.process(client.address);
      const masked = parsed.toByteArray();
      let keep = bits;
      for (let i = 0; i < masked.length; i++) {
        const b = Math.max(0, Math.min(8, keep));
        masked[i] &= (0xff << (8 - b)) & 0xff;
        keep -= 8;
      }
      addr = ipaddr.fromByteArray(masked).toString();
    } catch {
      // keep the unmasked address
    }
    return addr;
  }

  open(key: ServiceKey, client: Endpoint, vip?: Endpoint): ConnHandle | null {
    const svc = this.services.get(serviceId(key));
    if (!svc) return null;
    const now = this.clock.now();
    const virtual = vip ?? {
      address: key.kind === 'addr' ? key.address : '0.0.0.0',
      port: key.kind === 'addr' ? key.port : 0,
    };
    let dest: DestState | null = null;
    let template: Template | undefined;
    if (svc.params.persistentTimeout !== undefined) {
      const tk = this.templateKey(svc, client);
      template = svc.templates.get(tk);
      // ip_vs_check_template: a template whose destination left is dropped; a quiesced one is still used
      if (
        template &&
        (template.expiresAt > now || template.controlled > 0) &&
        template.dest.available &&
        !template.dest.overloaded
      ) {
        dest = template.dest;
        template.expiresAt = now + svc.params.persistentTimeout * 1000;
      } else {
        if (template) {
          svc.templates.delete(tk);
          template.dest.persistConns--;
        }
        dest = svc.scheduler.pick(svc.dests, { client, vip: virtual }) as DestState | null;
        if (dest) {
          template = { dest, expiresAt: now + svc.params.persistentTimeout * 1000, controlled: 0 };
          svc.templates.set(tk, template);
          dest.persistConns++;
        } else template = undefined;
      }
    } else dest = svc.scheduler.pick(svc.dests, { client, vip: virtual }) as DestState | null;
    if (!dest) {
      this.noDestination.set(svc.id, (this.noDestination.get(svc.id) ?? 0) + 1);
      return null;
    }
    if (template) template.controlled++;
    const c = new Conn(this, svc, dest, client, template);
    dest.inactConns++;
    dest.stats.conns++;
    svc.stats.conns++;
    this.updateOverload(dest);
    this.conns.add(c);
    return c;
  }

  hasService(key: ServiceKey): boolean {
    return this.services.has(serviceId(key));
  }

  serviceKeys(): ServiceKey[] {
    return [...this.services.values()].map((s) => s.key);
  }

  snapshot(): TableSnapshot {
    const services: ServiceSnapshot[] = [...this.services.values()].map((s) => ({
      ...s.params,
      key: s.key,
      id: s.id,
      stats: s.stats.snapshot(),
      rates: s.est.rates(),
      dests: s.dests.map((d) => ({
        address: d.address,
        port: d.port,
        family: d.family,
        forward: d.forward,
        weight: d.weight,
        uThreshold: d.uThreshold,
        lThreshold: d.lThreshold,
        ...(d.tunType ? { tunType: d.tunType } : {}),
        ...(d.tunPort !== undefined ? { tunPort: d.tunPort } : {}),
        ...(d.tunFlags ? { tunFlags: d.tunFlags } : {}),
        activeConns: d.activeConns,
        inactConns: d.inactConns,
        persistConns: d.persistConns,
        overloaded: d.overloaded,
        stats: d.stats.snapshot(),
        rates: d.est.rates(),
      })),
    }));
    return { services, timeouts: { ...this.timeouts }, connTableSize: CONN_TAB_SIZE, syncDaemons: [] };
  }

  connections(): ConnSnapshot[] {
    const now = this.clock.now();
    const out: ConnSnapshot[] = [];
    for (const c of this.conns) {
      const k = c.service.key;
      const protocol = k.kind === 'addr' ? k.protocol : 'tcp';
      const virtual = { address: k.kind === 'addr' ? k.address : '0.0.0.0', port: k.kind === 'addr' ? k.port : 0 };
      out.push({
        protocol,
        client: c.client,
        virtual,
        dest: c.dest,
        family: k.family,
        state: c.state,
        expiresInMs: Math.max(0, c.lastSeen + c.idleTimeoutMs() - now),
        template: false,
      });
    }
    for (const s of this.services.values()) {
      for (const [addr, t] of s.templates) {
        const k = s.key;
        out.push({
          protocol: k.kind === 'addr' ? k.protocol : 'tcp',
          client: { address: addr, port: 0 },
          virtual: { address: k.kind === 'addr' ? k.address : '0.0.0.0', port: k.kind === 'addr' ? k.port : 0 },
          dest: { address: t.dest.address, port: t.dest.port },
          family: k.family,
          state: 'NONE',
          expiresInMs: Math.max(0, t.expiresAt - now),
          template: true,
        });
      }
    }
    return out;
  }
}
