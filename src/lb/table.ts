/**
 * The virtual-server table: IPVS's services, destinations, schedulers, connection
 * entries, persistence templates, counters and rate estimators, in user space.
 *
 * - `apply(op)` has IPVS's semantics and errors (ip_vs_ctl.c).
 * - `open(key, client)` is the data plane's entry point (ip_vs_schedule /
 *   ip_vs_sched_persist): persistence, scheduler, accounting.
 * - time comes only from the injected Clock; timers are armed only while needed
 *   (estimator while a service exists, expiry while an entry exists); `dispose()` stops them.
 */
import type { Family } from '../config/model.js';
import { addressFold, canonicalAddress, maskAddress, parseV4 } from '../util/address.js';
import type { Clock, TimerHandle } from '../util/clock.js';
import { err, ok, type Result } from '../util/result.js';
import { ConnStore, F_INACTIVE, F_OPS, F_TEMPLATE, F_UNHASHED, F_USED, F_V6, PROTO_SHIFT } from './conn-store.js';
import { HEAP_SLOTS } from './sched/heap.js';
import { DEFAULT_SCHEDULER, SCHED_FLAGS, SCHEDULERS } from './sched/index.js';
import type { SchedClient, SchedDest, SchedService, Scheduler, SchedulerFactory } from './sched/types.js';
import { Counters, ESTIMATOR_INTERVAL_MS } from './stats.js';
import { CONN_STATES, DEFAULT_TIMEOUTS, mergeTimeouts, STATE_INDEX, stateTimeoutSeconds } from './timeouts.js';
import {
  type ConnHandle,
  type ConnSnapshot,
  type ConnState,
  type DestParams,
  type DestSnapshot,
  destId,
  type Endpoint,
  type ForwardingTable,
  type ForwardMethod,
  type OpenHint,
  type Protocol,
  type ServiceKey,
  type ServiceParams,
  type ServiceSnapshot,
  serviceId,
  type TableOp,
  type TableOpError,
  type TableOpErrorCode,
  type TableSnapshot,
  type Timeouts,
} from './types.js';

/** IP_VS_CONN_TAB_BITS default 12: ipvsadm's header prints size=4096 */
export const CONN_TAB_SIZE = 4096;
const PROTOCOLS: readonly Protocol[] = ['tcp', 'udp', 'sctp'];
const FORWARD_METHODS: readonly ForwardMethod[] = ['masq', 'route', 'tunnel', 'local'];
const PERSISTENCE_ENGINES: readonly string[] = ['sip'];

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
}

export interface DroppedConns {
  readonly key: ServiceKey;
  readonly dest: Endpoint;
  readonly conns: readonly ConnSnapshot[];
}

class Dest implements SchedDest {
  readonly addrFold: number;
  weight: number;
  lastWeight: number;
  /** what schedulers and thresholds see: this table's connections plus peerActive/peerInact */
  activeConns = 0;
  inactConns = 0;
  /** connections other proxy workers hold (setPeerLoad): the director is one table to schedulers */
  peerActive = 0;
  peerInact = 0;
  persistConns = 0;
  overloaded = false;
  removed = false;
  readonly heapPos = new Int32Array(HEAP_SLOTS).fill(-1);
  readonly counters = new Counters();
  constructor(
    readonly id: string,
    readonly address: string,
    readonly port: number,
    readonly family: Family,
    readonly seq: number,
    readonly ref: number,
    readonly service: Service,
    public params: DestParams,
  ) {
    this.addrFold = addressFold(address);
    this.weight = params.weight;
    this.lastWeight = params.weight;
  }
  get totalConns(): number {
    return this.activeConns + this.inactConns;
  }
}

class Service implements SchedService {
  dests: Dest[] = [];
  readonly byId = new Map<string, Dest>();
  /** removed destinations still referenced by connections (IPVS dest_trash) */
  readonly trash = new Map<string, Dest>();
  flags: Set<string>;
  scheduler: Scheduler;
  readonly counters = new Counters();
  noDest = 0;
  readonly vaddrFold: number;
  constructor(
    readonly key: ServiceKey,
    readonly id: string,
    public params: ServiceParams,
    scheduler: Scheduler,
  ) {
    this.flags = expandFlags(params.schedFlags);
    this.scheduler = scheduler;
    this.vaddrFold = key.kind === 'addr' ? addressFold(key.address) : key.fwmark >>> 0;
  }
  get family(): Family {
    return this.key.family;
  }
}

/** flag-1/2/3 are bits the schedulers name differently (sh-fallback = mh-fallback = flag-1). */
function expandFlags(flags: readonly string[]): Set<string> {
  const out = new Set<string>(flags);
  const alias: Record<string, string[]> = {
    'flag-1': ['sh-fallback', 'mh-fallback'],
    'flag-2': ['sh-port', 'mh-port'],
    'sh-fallback': ['flag-1', 'mh-fallback'],
    'mh-fallback': ['flag-1', 'sh-fallback'],
    'sh-port': ['flag-2', 'mh-port'],
    'mh-port': ['flag-2', 'sh-port'],
  };
  for (const f of flags) for (const a of alias[f] ?? []) out.add(a);
  return out;
}

const opError = (code: TableOpErrorCode, message: string): Result<never, TableOpError> => err({ code, message });

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
  private readonly store = new ConnStore();
  /** destRef -> Dest, for connection entries */
  private readonly destRefs: (Dest | undefined)[] = [];
  private readonly freeRefs: number[] = [];
  private readonly templates = new Map<string, number>();
  private readonly templateKeys = new Map<number, string>();
  private destSeq = 0;
  private estTimer: TimerHandle | null = null;
  private expiryTimer: TimerHandle | null = null;
  /** connections refused for lack of a service */
  private noService = 0;
  expireNodestConn: boolean;
  expireQuiescentTemplate: boolean;
  private readonly onConnsDropped?: (event: DroppedConns) => void;
  private readonly schedulers: Readonly<Record<string, SchedulerFactory>>;

  constructor(options: LbTableOptions) {
    this.schedulers = options.schedulers ?? SCHEDULERS;
    this.clock = options.clock;
    this.random = options.random ?? xorshift(0x9e3779b9);
    this.expireNodestConn = options.expireNodestConn ?? false;
    this.expireQuiescentTemplate = options.expireQuiescentTemplate ?? false;
    this.timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
    this.onConnsDropped = options.onConnsDropped;
  }

  /** Stops the table's timers (estimator, expiry). */
  dispose(): void {
    this.estTimer?.cancel();
    this.estTimer = null;
    this.expiryTimer?.cancel();
    this.expiryTimer = null;
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

  private validateKey(key: ServiceKey): Result<ServiceKey, TableOpError> {
    if (key.family !== 4 && key.family !== 6) return opError('invalid', 'address family must be 4 or 6');
    if (key.kind === 'fwmark') {
      if (!Number.isInteger(key.fwmark) || key.fwmark < 1 || key.fwmark > 0xffffffff)
        return opError('invalid', `invalid fwmark ${key.fwmark}`);
      return ok(key);
    }
    if (!PROTOCOLS.includes(key.protocol)) return opError('invalid', `invalid protocol ${key.protocol}`);
    if (!Number.isInteger(key.port) || key.port < 0 || key.port > 65535)
      return opError('invalid', `invalid port ${key.port}`);
    const address = canonicalAddress(key.address, key.family);
    if (address === null) return opError('invalid', `invalid IPv${key.family} address ${key.address}`);
    return ok({ ...key, address });
  }

  private validateServiceParams(key: ServiceKey, p: ServiceParams): Result<ServiceParams, TableOpError> {
    const scheduler = p.scheduler || DEFAULT_SCHEDULER;
    if (!Object.hasOwn(this.schedulers, scheduler))
      return opError('no-scheduler', `Scheduler or persistence engine not found: ${scheduler}`);
    for (const f of p.schedFlags)
      if (!SCHED_FLAGS.includes(f)) return opError('invalid', `invalid scheduler flag ${f}`);
    if (p.pe !== undefined && !PERSISTENCE_ENGINES.includes(p.pe))
      return opError('no-scheduler', `Scheduler or persistence engine not found: ${p.pe}`);
    if (p.persistentTimeout !== undefined && (!Number.isInteger(p.persistentTimeout) || p.persistentTimeout < 1))
      return opError('invalid', `invalid persistence timeout ${p.persistentTimeout}`);
    const maxPrefix = key.family === 4 ? 32 : 128;
    const minPrefix = key.family === 4 ? 0 : 1;
    if (
      p.persistentPrefixLen !== undefined &&
      (!Number.isInteger(p.persistentPrefixLen) ||
        p.persistentPrefixLen < minPrefix ||
        p.persistentPrefixLen > maxPrefix)
    )
      return opError('invalid', `invalid persistence netmask/prefix ${p.persistentPrefixLen}`);
    if (key.kind === 'addr' && key.port === 0 && p.persistentTimeout === undefined)
      return opError('invalid', 'Zero port specified for non-persistent service');
    if (p.ops && key.kind === 'addr' && key.protocol !== 'udp')
      return opError('invalid', 'one-packet scheduling is only for UDP services');
    return ok({ ...p, scheduler, schedFlags: [...p.schedFlags] });
  }

  private validateDest(svc: Service, dest: Endpoint, p: DestParams): Result<Endpoint, TableOpError> {
    if (!FORWARD_METHODS.includes(p.forward)) return opError('invalid', `invalid forwarding method ${p.forward}`);
    for (const [name, v] of [
      ['weight', p.weight],
      ['upper threshold', p.uThreshold],
      ['lower threshold', p.lThreshold],
    ] as const) {
      if (!Number.isInteger(v) || v < 0 || v > 65535) return opError('invalid', `invalid ${name} ${v} (0..65535)`);
    }
    if (p.lThreshold > p.uThreshold) return opError('invalid', 'lower threshold is above the upper threshold');
    if (!Number.isInteger(dest.port) || dest.port < 0 || dest.port > 65535)
      return opError('invalid', `invalid port ${dest.port}`);
    const address = canonicalAddress(dest.address, svc.family);
    if (address === null) return opError('invalid', `invalid IPv${svc.family} destination ${dest.address}`);
    return ok({ address, port: dest.port });
  }

  private find(key: ServiceKey): Service | undefined {
    const v = this.validateKey(key);
    return v.ok ? this.services.get(serviceId(v.value)) : undefined;
  }

  private addService(key: ServiceKey, params: ServiceParams): Result<void, TableOpError> {
    const k = this.validateKey(key);
    if (!k.ok) return k;
    const p = this.validateServiceParams(k.value, params);
    if (!p.ok) return p;
    const id = serviceId(k.value);
    if (this.services.has(id)) return opError('service-exists', 'Service already exists');
    const svc = new Service(k.value, id, p.value, this.newScheduler(p.value.scheduler));
    this.services.set(id, svc);
    this.armEstimator();
    return ok(undefined);
  }

  private newScheduler(name: string): Scheduler {
    return this.schedulers[name]({ random: this.random, now: () => this.clock.now() });
  }

  private editService(key: ServiceKey, params: ServiceParams): Result<void, TableOpError> {
    const k = this.validateKey(key);
    if (!k.ok) return k;
    const svc = this.services.get(serviceId(k.value));
    if (!svc) return opError('no-service', 'No such service');
    const p = this.validateServiceParams(k.value, params);
    if (!p.ok) return p;
    const schedChanged = p.value.scheduler !== svc.params.scheduler;
    svc.params = p.value;
    svc.flags = expandFlags(p.value.schedFlags);
    if (schedChanged) {
      // bind the new scheduler to the whole list at once (IPVS init_service sees every dest)
      svc.scheduler = this.newScheduler(p.value.scheduler);
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
    // templates of the service are no longer found
    for (const [k, slot] of this.templates) {
      if (k.startsWith(`${svc.id}|`)) {
        this.templates.delete(k);
        this.store.flags[slot] |= F_UNHASHED;
      }
    }
    if (this.services.size === 0) {
      this.estTimer?.cancel();
      this.estTimer = null;
    }
  }

  private addDest(key: ServiceKey, dest: Endpoint, params: DestParams): Result<void, TableOpError> {
    const svc = this.find(key);
    if (!svc) return opError('no-service', 'No such service');
    const v = this.validateDest(svc, dest, params);
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
      const ref = this.freeRefs.pop() ?? this.destRefs.length;
      d = new Dest(id, v.value.address, v.value.port, svc.family, ++this.destSeq, ref, svc, params);
      this.destRefs[ref] = d;
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
    const v = this.validateDest(svc, dest, params);
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
      const dropped = this.dropConnsOf(d);
      if (dropped.length > 0)
        this.onConnsDropped?.({ key: svc.key, dest: { address: d.address, port: d.port }, conns: dropped });
    }
    if (d.activeConns + d.inactConns + d.persistConns > 0) svc.trash.set(d.id, d);
    else this.releaseRef(d);
  }

  private releaseRef(d: Dest): void {
    if (this.destRefs[d.ref] === d) {
      this.destRefs[d.ref] = undefined;
      this.freeRefs.push(d.ref);
    }
  }

  private dropConnsOf(d: Dest): ConnSnapshot[] {
    const out: ConnSnapshot[] = [];
    const s = this.store;
    const now = this.clock.now();
    for (let slot = 0; slot < s.capacity; slot++) {
      if (!(s.flags[slot] & F_USED) || s.destRef[slot] !== d.ref || this.destRefs[d.ref] !== d) continue;
      if (s.flags[slot] & F_TEMPLATE) continue;
      out.push(this.connSnapshot(slot, now));
      this.freeConn(slot);
    }
    return out;
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
      const tkey = `${svc.id}|${maskAddress(client.address, svc.family, prefix)}`;
      const slot = this.templates.get(tkey);
      const timeoutMs = svc.params.persistentTimeout * 1000;
      if (slot !== undefined && this.templateValid(slot)) {
        template = slot;
        dest = this.destRefs[this.store.destRef[slot]]!;
        this.store.arm(slot, now + timeoutMs);
      } else {
        if (slot !== undefined) this.unhashTemplate(slot);
        dest = svc.scheduler.pick(svc, sc) as Dest | null;
        if (!dest) {
          svc.noDest++;
          return null;
        }
        template = this.newEntry(svc, dest, maskAddress(client.address, svc.family, prefix), 0, protocol, true);
        this.store.state[template] = STATE_INDEX.get('NONE')!;
        this.store.arm(template, now + timeoutMs);
        this.templates.set(tkey, template);
        this.templateKeys.set(template, tkey);
      }
    } else {
      dest = svc.scheduler.pick(svc, sc) as Dest | null;
      if (!dest) {
        svc.noDest++;
        return null;
      }
    }
    const slot = this.newEntry(svc, dest, client.address, client.port, protocol, false);
    const s = this.store;
    if (template >= 0) {
      s.control[slot] = template;
      s.nControl[template]++;
    }
    if (svc.params.ops) s.flags[slot] |= F_OPS;
    const state: ConnState = protocol === 'udp' ? 'UDP' : 'SYN_RECV';
    s.state[slot] = STATE_INDEX.get(state)!;
    s.arm(slot, now + (svc.params.ops ? 0 : this.stateTimeoutMs(state)));
    dest.counters.conns++;
    svc.counters.conns++;
    return new Handle(this, slot, s.gen[slot], dest);
  }

  private templateValid(slot: number): boolean {
    const d = this.destRefs[this.store.destRef[slot]];
    if (!d || d.removed) return false;
    if (this.expireQuiescentTemplate && d.weight === 0) return false;
    return true;
  }

  private unhashTemplate(slot: number): void {
    const k = this.templateKeys.get(slot);
    if (k !== undefined && this.templates.get(k) === slot) this.templates.delete(k);
    this.templateKeys.delete(slot);
    this.store.flags[slot] |= F_UNHASHED;
  }

  private newEntry(
    svc: Service,
    d: Dest,
    address: string,
    port: number,
    protocol: Protocol,
    template: boolean,
  ): number {
    const s = this.store;
    const slot = s.alloc();
    const v4 = parseV4(address);
    if (v4 >= 0) s.clientV4[slot] = v4;
    else {
      s.flags[slot] |= F_V6;
      s.clientV6.set(slot, address);
    }
    s.clientPort[slot] = port;
    s.destRef[slot] = d.ref;
    s.flags[slot] |= PROTOCOLS.indexOf(protocol) << PROTO_SHIFT;
    // ip_vs_bind_dest: new connections count InActConn, templates PersistConn
    if (template) {
      s.flags[slot] |= F_TEMPLATE;
      d.persistConns++;
    } else {
      s.flags[slot] |= F_INACTIVE;
      d.inactConns++;
    }
    if (d.params.uThreshold !== 0 && d.totalConns >= d.params.uThreshold) d.overloaded = true;
    if (!template) svc.scheduler.loadChanged(svc, d);
    this.armExpiry();
    return slot;
  }

  stateTimeoutMs(state: ConnState): number {
    return stateTimeoutSeconds(state, this.timeouts) * 1000;
  }

  /** @internal used by handles */
  setConnState(slot: number, state: ConnState): void {
    const s = this.store;
    const d = this.destRefs[s.destRef[slot]]!;
    const inactive = (s.flags[slot] & F_INACTIVE) !== 0;
    // ip_vs_set_state (tcp): ESTABLISHED counts Active, every other state InAct
    if (!inactive && state !== 'ESTABLISHED') {
      d.activeConns--;
      d.inactConns++;
      s.flags[slot] |= F_INACTIVE;
      d.service.scheduler.loadChanged(d.service, d);
    } else if (inactive && state === 'ESTABLISHED') {
      d.inactConns--;
      d.activeConns++;
      s.flags[slot] &= ~F_INACTIVE;
      d.service.scheduler.loadChanged(d.service, d);
    }
    s.state[slot] = STATE_INDEX.get(state)!;
    this.touch(slot);
  }

  /** @internal re-arm the idle timer for the entry's current state */
  touch(slot: number): void {
    const s = this.store;
    if (s.flags[slot] & F_OPS) return;
    s.arm(slot, this.clock.now() + this.stateTimeoutMs(CONN_STATES[s.state[slot]]));
  }

  /** @internal */
  connState(slot: number): ConnState {
    return CONN_STATES[this.store.state[slot]];
  }

  /** @internal */
  isOneShot(slot: number): boolean {
    return (this.store.flags[slot] & F_OPS) !== 0;
  }

  /** @internal */
  alive(slot: number, gen: number): boolean {
    return this.store.used(slot) && this.store.gen[slot] === gen;
  }

  /** @internal ip_vs_unbind_dest + free */
  freeConn(slot: number): void {
    const s = this.store;
    const d = this.destRefs[s.destRef[slot]];
    const flags = s.flags[slot];
    if (d) {
      if (flags & F_TEMPLATE) d.persistConns--;
      else if (flags & F_INACTIVE) d.inactConns--;
      else d.activeConns--;
      // OVERLOAD clears below the lower threshold, else below 3/4 of the upper one
      const total = d.totalConns;
      if (d.params.lThreshold !== 0) {
        if (total < d.params.lThreshold) d.overloaded = false;
      } else if (d.params.uThreshold !== 0) {
        if (total * 4 < d.params.uThreshold * 3) d.overloaded = false;
      } else d.overloaded = false;
      if (!(flags & F_TEMPLATE) && !d.removed) d.service.scheduler.loadChanged(d.service, d);
      if (d.removed && d.activeConns + d.inactConns + d.persistConns === 0) {
        d.service.trash.delete(d.id);
        this.releaseRef(d);
      }
    }
    const ctl = s.control[slot];
    if (ctl >= 0 && s.used(ctl) && s.nControl[ctl] > 0) s.nControl[ctl]--;
    if (flags & F_TEMPLATE) this.unhashTemplate(slot);
    s.free(slot);
  }

  /** @internal */
  countTraffic(slot: number, inbound: boolean, packets: number, bytes: number): void {
    const d = this.destRefs[this.store.destRef[slot]];
    if (!d) return;
    for (const c of [d.counters, d.service.counters]) {
      if (inbound) {
        c.inPkts += packets;
        c.inBytes += bytes;
      } else {
        c.outPkts += packets;
        c.outBytes += bytes;
      }
    }
    this.touch(slot);
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

  private armExpiry(): void {
    if (this.expiryTimer) return;
    const tick = (): void => {
      this.expireDue();
      this.expiryTimer = this.store.count > 0 ? this.clock.setTimer(1000, tick) : null;
    };
    this.expiryTimer = this.clock.setTimer(1000, tick);
  }

  /** Expires every entry whose idle time ran out (also called by the 1 s timer). */
  expireDue(): void {
    const now = this.clock.now();
    this.store.sweep(now, (slot) => {
      const s = this.store;
      if (s.flags[slot] & F_TEMPLATE && s.nControl[slot] > 0) {
        // ip_vs_conn_expire: a template lives while it controls connections
        const svcTimeout = this.destRefs[s.destRef[slot]]?.service.params.persistentTimeout ?? 60;
        s.arm(slot, now + svcTimeout * 1000);
        return;
      }
      this.freeConn(slot);
    });
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
    const services: ServiceSnapshot[] = [];
    for (const svc of this.services.values()) {
      const dests: DestSnapshot[] = svc.dests.map((d) => ({
        ...d.params,
        address: d.address,
        port: d.port,
        family: d.family,
        activeConns: d.activeConns - d.peerActive,
        inactConns: d.inactConns - d.peerInact,
        persistConns: d.persistConns,
        overloaded: d.overloaded,
        stats: d.counters.stats(),
        rates: d.counters.rates(),
      }));
      services.push({
        ...svc.params,
        key: svc.key,
        id: svc.id,
        stats: svc.counters.stats(),
        rates: svc.counters.rates(),
        dests,
        noDest: svc.noDest,
      });
    }
    return { services, timeouts: { ...this.timeouts }, connTableSize: CONN_TAB_SIZE, syncDaemons: [] };
  }

  /** Connection entries and templates, for `ipvsadm -Lc`. */
  connections(): ConnSnapshot[] {
    const out: ConnSnapshot[] = [];
    const now = this.clock.now();
    const s = this.store;
    for (let slot = 0; slot < s.capacity; slot++) if (s.flags[slot] & F_USED) out.push(this.connSnapshot(slot, now));
    return out;
  }

  /** Number of live entries (connections + templates). */
  connectionCount(): number {
    return this.store.count;
  }

  /** Connections refused because no service matched. */
  noServiceCount(): number {
    return this.noService;
  }

  timeoutsNow(): Timeouts {
    return { ...this.timeouts };
  }

  private connSnapshot(slot: number, now: number): ConnSnapshot {
    const s = this.store;
    const d = this.destRefs[s.destRef[slot]]!;
    const svc = d.service;
    const flags = s.flags[slot];
    const client = flags & F_V6 ? s.clientV6.get(slot)! : v4Text(s.clientV4[slot]);
    const virtual: Endpoint =
      svc.key.kind === 'addr'
        ? { address: svc.key.address, port: svc.key.port }
        : { address: svc.family === 4 ? '0.0.0.0' : '::', port: svc.key.fwmark };
    return {
      protocol: PROTOCOLS[(flags >> PROTO_SHIFT) & 3],
      client: { address: client, port: s.clientPort[slot] },
      virtual,
      dest: { address: d.address, port: d.port },
      family: svc.family,
      state: CONN_STATES[s.state[slot]],
      expiresInMs: Math.max(0, s.expires[slot] - now),
      template: (flags & F_TEMPLATE) !== 0,
    };
  }

  /** Bytes held by the connection columns (for the memory benchmark). */
  connColumnBytes(): number {
    return this.store.columnBytes();
  }
}

function v4Text(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

/** A data plane's handle on one connection entry; operations on a gone entry are no-ops. */
export class Handle implements ConnHandle {
  readonly dest: Endpoint;
  readonly forward: ForwardMethod;
  constructor(
    private readonly table: LbTable,
    private readonly slot: number,
    private readonly gen: number,
    d: { address: string; port: number; params: DestParams },
  ) {
    this.dest = { address: d.address, port: d.port };
    this.forward = d.params.forward;
  }
  /** false once the entry expired, was closed, or was dropped with its destination */
  get alive(): boolean {
    return this.table.alive(this.slot, this.gen);
  }
  get state(): ConnState | null {
    return this.alive ? this.table.connState(this.slot) : null;
  }
  setState(state: ConnState): void {
    if (this.alive) this.table.setConnState(this.slot, state);
  }
  /**
   * Idle timeout of the entry's state. For one-packet (ops) entries this is still the UDP
   * timeout (a data plane may keep its reply path that long), though the table drops the
   * entry itself at its next tick.
   */
  idleTimeoutMs(): number {
    return this.table.stateTimeoutMs(this.state ?? 'CLOSE');
  }
  /** true for one-packet (ops) entries */
  get oneShot(): boolean {
    return this.alive && this.table.isOneShot(this.slot);
  }
  countIn(packets: number, bytes: number): void {
    if (this.alive) this.table.countTraffic(this.slot, true, packets, bytes);
  }
  countOut(packets: number, bytes: number): void {
    if (this.alive) this.table.countTraffic(this.slot, false, packets, bytes);
  }
  close(): void {
    if (this.alive) this.table.freeConn(this.slot);
  }
}
