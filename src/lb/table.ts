/**
 * The virtual-server table: IPVS's services, destinations, schedulers, connection
 * entries, persistence templates, counters and rate estimators, in user space.
 * Split along IPVS's own seams: table-entries.ts (services and destinations),
 * table-validate.ts (op checks, ip_vs_ctl.c), conn-table.ts (ip_vs_conn entries and handles),
 * templates.ts (persistence templates); this file applies ops and schedules new connections.
 *
 * - `apply(op)` has IPVS's semantics and errors (ip_vs_ctl.c).
 * - `open(key, client)` is the data plane's entry point (ip_vs_schedule /
 *   ip_vs_sched_persist): persistence, scheduler, accounting.
 * - time comes only from the injected Clock; timers are armed only while needed
 *   (estimator while a service exists, expiry while an entry exists); `dispose()` stops them.
 */
import { addressFold, canonicalAddress, maskAddress, parseV4 } from '../util/address.js';
import type { Clock, TimerHandle } from '../util/clock.js';
import { ok, type Result } from '../util/result.js';
import { F_OPS } from './conn-store.js';
import { ConnTable, Handle } from './conn-table.js';
import { SCHEDULERS } from './sched/index.js';
import type { SchedClient, Scheduler, SchedulerFactory, SharedPosition } from './sched/types.js';
import { ESTIMATOR_INTERVAL_MS } from './stats.js';
import { Dest, expandFlags, Service, serviceSnapshot } from './table-entries.js';
import { opError, validateDest, validateKey, validateServiceParams } from './table-validate.js';
import { PersistenceTemplates } from './templates.js';
import { DEFAULT_TIMEOUTS, mergeTimeouts, STATE_INDEX } from './timeouts.js';
import {
  type ConnSnapshot,
  type ConnState,
  type DestParams,
  destId,
  type Endpoint,
  type ForwardingTable,
  type OpenHint,
  type Protocol,
  type ServiceKey,
  type ServiceParams,
  serviceId,
  type TableOp,
  type TableOpError,
  type TableSnapshot,
  type Timeouts,
} from './types.js';

export { Handle };

/** IP_VS_CONN_TAB_BITS default 12: ipvsadm's header prints size=4096 */
export const CONN_TAB_SIZE = 4096;
export interface LbTableOptions {
  readonly clock: Clock;
  /** uniform [0,1); used by twos. Default: a seeded xorshift (deterministic). */
  readonly random?: () => number;
  /** sysctl expire_nodest_conn: drop a removed destination's connections at once (default false: they live on) */
  readonly expireNodestConn?: boolean;
  /** sysctl expire_quiescent_template: a weight-0 destination invalidates persistence templates (default false) */
  readonly expireQuiescentTemplate?: boolean;
  readonly timeouts?: Partial<Timeouts>;
  /** Called when connections are dropped because their destination was removed (expireNodestConn). */
  readonly onConnsDropped?: (event: DroppedConns) => void;
  /** scheduler registry (default: every IPVS scheduler, SCHEDULERS) */
  readonly schedulers?: Readonly<Record<string, SchedulerFactory>>;
  /**
   * The rr/wrr position of a service shared with the other replicas of this table (proxy
   * workers), by service id; without it (or undefined for a service) each table keeps its own.
   */
  readonly positions?: (serviceId: string) => SharedPosition | undefined;
}

export interface DroppedConns {
  readonly key: ServiceKey;
  readonly dest: Endpoint;
  readonly conns: readonly ConnSnapshot[];
}

function xorshift(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

export class LbTable implements ForwardingTable {
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly services = new Map<string, Service>();
  private timeouts: Timeouts;
  private readonly conns: ConnTable;
  private destSeq = 0;
  private estTimer: TimerHandle | null = null;
  /** connections refused for lack of a service */
  private noService = 0;
  expireNodestConn: boolean;
  expireQuiescentTemplate: boolean;
  private readonly onConnsDropped?: (event: DroppedConns) => void;
  private readonly schedulers: Readonly<Record<string, SchedulerFactory>>;
  private readonly positions: ((serviceId: string) => SharedPosition | undefined) | undefined;

  constructor(options: LbTableOptions) {
    this.schedulers = options.schedulers ?? SCHEDULERS;
    this.positions = options.positions;
    this.clock = options.clock;
    this.random = options.random ?? xorshift(0x9e3779b9);
    this.expireNodestConn = options.expireNodestConn ?? false;
    this.expireQuiescentTemplate = options.expireQuiescentTemplate ?? false;
    this.timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
    this.onConnsDropped = options.onConnsDropped;
    this.conns = new ConnTable(
      this.clock,
      () => this.timeouts,
      () => this.expireQuiescentTemplate,
    );
  }

  /** Stops the table's timers (estimator, expiry). */
  dispose(): void {
    this.estTimer?.cancel();
    this.estTimer = null;
    this.conns.dispose();
  }

  // ---------------------------------------------------------------- operations

  apply(op: TableOp): Result<void, TableOpError> {
    switch (op.op) {
      case 'add-service':
        return this.addService(op.key, op.params);
      case 'edit-service':
        return this.editService(op.key, op.params);
      case 'del-service':
        return this.delService(op.key);
      case 'add-dest':
        return this.addDest(op.key, op.dest, op.params);
      case 'edit-dest':
        return this.editDest(op.key, op.dest, op.params);
      case 'del-dest':
        return this.delDest(op.key, op.dest);
      case 'clear':
        for (const svc of [...this.services.values()]) this.removeService(svc);
        return ok(undefined);
      case 'zero':
        return this.zero(op.key);
      case 'set-timeouts':
        return this.setTimeouts(op.tcp, op.tcpfin, op.udp);
      default:
        return opError('invalid', `unknown operation ${(op as { op: string }).op}`);
    }
  }

  /**
   * Applies ops in order, tolerating replays: add of an existing object becomes an edit,
   * delete of a missing one is a no-op. Returns the errors that remain (none = all applied).
   */
  applyAll(ops: readonly TableOp[]): { op: TableOp; error: TableOpError }[] {
    const errors: { op: TableOp; error: TableOpError }[] = [];
    for (const op of ops) {
      let r = this.apply(op);
      if (!r.ok) {
        if (op.op === 'add-service' && r.error.code === 'service-exists')
          r = this.apply({ op: 'edit-service', key: op.key, params: op.params });
        else if (op.op === 'add-dest' && r.error.code === 'dest-exists')
          r = this.apply({ op: 'edit-dest', key: op.key, dest: op.dest, params: op.params });
        else if ((op.op === 'del-service' || op.op === 'del-dest') && r.error.code === 'no-service') r = ok(undefined);
        else if (op.op === 'del-dest' && r.error.code === 'no-dest') r = ok(undefined);
      }
      if (!r.ok) errors.push({ op, error: r.error });
    }
    return errors;
  }

  private find(key: ServiceKey): Service | undefined {
    const v = validateKey(key);
    return v.ok ? this.services.get(serviceId(v.value)) : undefined;
  }

  private addService(key: ServiceKey, params: ServiceParams): Result<void, TableOpError> {
    const k = validateKey(key);
    if (!k.ok) return k;
    const p = validateServiceParams(k.value, params, this.schedulers);
    if (!p.ok) return p;
    const id = serviceId(k.value);
    if (this.services.has(id)) return opError('service-exists', 'Service already exists');
    const svc = new Service(k.value, id, p.value, this.newScheduler(p.value.scheduler, id));
    this.services.set(id, svc);
    this.armEstimator();
    return ok(undefined);
  }

  private newScheduler(name: string, serviceId: string): Scheduler {
    const position = this.positions?.(serviceId);
    return this.schedulers[name]({
      random: this.random,
      now: () => this.clock.now(),
      ...(position ? { position } : {}),
    });
  }

  private editService(key: ServiceKey, params: ServiceParams): Result<void, TableOpError> {
    const k = validateKey(key);
    if (!k.ok) return k;
    const svc = this.services.get(serviceId(k.value));
    if (!svc) return opError('no-service', 'No such service');
    const p = validateServiceParams(k.value, params, this.schedulers);
    if (!p.ok) return p;
    const schedChanged = p.value.scheduler !== svc.params.scheduler;
    svc.params = p.value;
    svc.flags = expandFlags(p.value.schedFlags);
    if (schedChanged) {
      // bind the new scheduler to the whole list at once (IPVS init_service sees every dest)
      svc.scheduler = this.newScheduler(p.value.scheduler, svc.id);
      for (const d of svc.dests) d.heapPos.fill(-1);
      for (const d of svc.dests) svc.scheduler.destsChanged(svc, { kind: 'add', dest: d });
    } else {
      // flags may change hashing tables: one rebuild is enough
      if (svc.dests.length > 0) svc.scheduler.destsChanged(svc, { kind: 'upd', dest: svc.dests[0] });
    }
    return ok(undefined);
  }

  private delService(key: ServiceKey): Result<void, TableOpError> {
    const svc = this.find(key);
    if (!svc) return opError('no-service', 'No such service');
    this.removeService(svc);
    return ok(undefined);
  }

  private removeService(svc: Service): void {
    for (const d of [...svc.dests]) this.unlinkDest(svc, d);
    this.services.delete(svc.id);
    this.conns.templates.dropService(svc.id);
    if (this.services.size === 0) {
      this.estTimer?.cancel();
      this.estTimer = null;
    }
  }

  private addDest(key: ServiceKey, dest: Endpoint, params: DestParams): Result<void, TableOpError> {
    const svc = this.find(key);
    if (!svc) return opError('no-service', 'No such service');
    const v = validateDest(svc.family, dest, params);
    if (!v.ok) return v;
    const id = destId(v.value, svc.family);
    if (svc.byId.has(id)) return opError('dest-exists', 'Destination already exists');
    let d = svc.trash.get(id);
    if (d) {
      // IPVS revives a trashed destination with its counters and connections
      svc.trash.delete(id);
      d.removed = false;
      d.params = params;
      d.weight = params.weight;
      if (params.weight > 0) d.lastWeight = params.weight;
    } else {
      d = new Dest(id, v.value.address, v.value.port, svc.family, ++this.destSeq, this.conns.allocRef(), svc, params);
      this.conns.bindRef(d);
    }
    this.updateOverloadOnEdit(d, params);
    svc.dests.unshift(d); // IPVS list_add: at the head
    svc.byId.set(id, d);
    svc.scheduler.destsChanged(svc, { kind: 'add', dest: d });
    return ok(undefined);
  }

  /** __ip_vs_update_dest: thresholds changed, OVERLOAD cleared if no longer warranted. */
  private updateOverloadOnEdit(d: Dest, p: DestParams): void {
    if (p.uThreshold === 0 || p.uThreshold > d.totalConns) d.overloaded = false;
  }

  private editDest(key: ServiceKey, dest: Endpoint, params: DestParams): Result<void, TableOpError> {
    const svc = this.find(key);
    if (!svc) return opError('no-service', 'No such service');
    const v = validateDest(svc.family, dest, params);
    if (!v.ok) return v;
    const d = svc.byId.get(destId(v.value, svc.family));
    if (!d) return opError('no-dest', 'No such destination');
    d.params = params;
    d.weight = params.weight;
    if (params.weight > 0) d.lastWeight = params.weight;
    this.updateOverloadOnEdit(d, params);
    svc.scheduler.destsChanged(svc, { kind: 'upd', dest: d });
    return ok(undefined);
  }

  private delDest(key: ServiceKey, dest: Endpoint): Result<void, TableOpError> {
    const svc = this.find(key);
    if (!svc) return opError('no-service', 'No such service');
    const address = canonicalAddress(dest.address, svc.family) ?? dest.address;
    const d = svc.byId.get(destId({ address, port: dest.port }, svc.family));
    if (!d) return opError('no-dest', 'No such destination');
    this.unlinkDest(svc, d);
    return ok(undefined);
  }

  private unlinkDest(svc: Service, d: Dest): void {
    const index = svc.dests.indexOf(d);
    svc.dests.splice(index, 1);
    svc.byId.delete(d.id);
    d.removed = true;
    svc.scheduler.destsChanged(svc, { kind: 'del', dest: d, index });
    // a removed server is never scheduled: other workers' load must not keep it in the trash
    d.activeConns -= d.peerActive;
    d.inactConns -= d.peerInact;
    d.peerActive = 0;
    d.peerInact = 0;
    if (this.expireNodestConn) {
      const dropped = this.conns.dropConnsOf(d);
      if (dropped.length > 0)
        this.onConnsDropped?.({ key: svc.key, dest: { address: d.address, port: d.port }, conns: dropped });
    }
    if (d.activeConns + d.inactConns + d.persistConns > 0) svc.trash.set(d.id, d);
    else this.conns.releaseRef(d);
  }

  private zero(key?: ServiceKey): Result<void, TableOpError> {
    const targets = key ? [this.find(key)] : [...this.services.values()];
    if (key && !targets[0]) return opError('no-service', 'No such service');
    for (const svc of targets as Service[]) {
      svc.counters.zero();
      for (const d of svc.dests) d.counters.zero();
    }
    return ok(undefined);
  }

  private setTimeouts(tcp: number, tcpfin: number, udp: number): Result<void, TableOpError> {
    for (const v of [tcp, tcpfin, udp])
      if (!Number.isInteger(v) || v < 0) return opError('invalid', `invalid timeout ${v}`);
    this.timeouts = mergeTimeouts(this.timeouts, { tcp, tcpfin, udp });
    return ok(undefined);
  }

  // ---------------------------------------------------------------- data plane

  open(key: ServiceKey, client: Endpoint, hint?: OpenHint): Handle | null {
    const svc = this.services.get(serviceId(key)) ?? this.find(key);
    if (!svc) {
      this.noService++;
      return null;
    }
    const now = this.clock.now();
    const conns = this.conns;
    const v4 = parseV4(client.address);
    const sc: SchedClient = {
      addrFold: v4 >= 0 ? v4 >>> 0 : addressFold(client.address),
      port: client.port,
      dstFold: svc.vaddrFold,
    };
    const protocol: Protocol = key.kind === 'addr' ? key.protocol : (hint?.protocol ?? 'tcp');
    let dest: Dest | null;
    let template = -1;
    if (svc.params.persistentTimeout !== undefined) {
      // ip_vs_sched_persist: a live template decides; else schedule and create one
      const prefix = svc.params.persistentPrefixLen ?? (svc.family === 4 ? 32 : 128);
      const masked = maskAddress(client.address, svc.family, prefix);
      const tkey = PersistenceTemplates.key(svc.id, masked);
      const slot = conns.templates.get(tkey);
      const timeoutMs = svc.params.persistentTimeout * 1000;
      const live = slot !== undefined ? conns.templateDest(slot) : null;
      if (slot !== undefined && live) {
        template = slot;
        dest = live;
        conns.store.arm(slot, now + timeoutMs);
      } else {
        if (slot !== undefined) conns.templates.unhash(slot);
        dest = svc.scheduler.pick(svc, sc) as Dest | null;
        if (!dest) {
          svc.noDest++;
          return null;
        }
        template = conns.newEntry(svc, dest, masked, 0, protocol, true);
        conns.store.state[template] = STATE_INDEX.get('NONE')!;
        conns.store.arm(template, now + timeoutMs);
        conns.templates.set(tkey, template);
      }
    } else {
      dest = svc.scheduler.pick(svc, sc) as Dest | null;
      if (!dest) {
        svc.noDest++;
        return null;
      }
    }
    const slot = conns.newEntry(svc, dest, client.address, client.port, protocol, false);
    const s = conns.store;
    if (template >= 0) {
      s.control[slot] = template;
      s.nControl[template]++;
    }
    if (svc.params.ops) s.flags[slot] |= F_OPS;
    const state: ConnState = protocol === 'udp' ? 'UDP' : 'SYN_RECV';
    s.state[slot] = STATE_INDEX.get(state)!;
    s.arm(slot, now + (svc.params.ops ? 0 : conns.stateTimeoutMs(state)));
    dest.counters.conns++;
    svc.counters.conns++;
    return new Handle(conns, slot, s.gen[slot], dest);
  }

  /** Expires every entry whose idle time ran out (also called by the table's 1 s timer). */
  expireDue(): void {
    this.conns.expireDue();
  }

  // ---------------------------------------------------------------- timers

  private armEstimator(): void {
    if (this.estTimer) return;
    const tick = (): void => {
      for (const svc of this.services.values()) {
        svc.counters.estimate();
        for (const d of svc.dests) d.counters.estimate();
      }
      this.estTimer = this.services.size > 0 ? this.clock.setTimer(ESTIMATOR_INTERVAL_MS, tick) : null;
    };
    this.estTimer = this.clock.setTimer(ESTIMATOR_INTERVAL_MS, tick);
  }

  /**
   * Connections to `dest` held by other proxy workers (each with its own replica of this table):
   * added to what lc/wlc/sed/nq/... and the OVERLOAD thresholds see, left out of snapshot().
   */
  setPeerLoad(key: ServiceKey, dest: Endpoint, active: number, inact: number): void {
    const svc = this.find(key);
    const address = svc ? canonicalAddress(dest.address, svc.family) : null;
    const d = svc && address !== null ? svc.byId.get(destId({ address, port: dest.port }, svc.family)) : undefined;
    if (!svc || !d || (d.peerActive === active && d.peerInact === inact)) return;
    d.activeConns += active - d.peerActive;
    d.inactConns += inact - d.peerInact;
    d.peerActive = active;
    d.peerInact = inact;
    const p = d.params;
    if (p.uThreshold !== 0 && d.totalConns >= p.uThreshold) d.overloaded = true;
    else if (d.overloaded) this.updateOverloadOnEdit(d, p);
    if (!d.removed) svc.scheduler.loadChanged(svc, d);
  }

  // ---------------------------------------------------------------- observers

  snapshot(): TableSnapshot {
    const services = [...this.services.values()].map(serviceSnapshot);
    return { services, timeouts: { ...this.timeouts }, connTableSize: CONN_TAB_SIZE, syncDaemons: [] };
  }

  /** Connection entries and templates, for `ipvsadm -Lc`. */
  connections(): ConnSnapshot[] {
    return this.conns.connections();
  }

  /** Number of live entries (connections + templates). */
  connectionCount(): number {
    return this.conns.store.count;
  }

  /** Connections refused because no service matched. */
  noServiceCount(): number {
    return this.noService;
  }

  timeoutsNow(): Timeouts {
    return { ...this.timeouts };
  }

  /** Bytes held by the connection columns (for the memory benchmark). */
  connColumnBytes(): number {
    return this.conns.store.columnBytes();
  }
}
