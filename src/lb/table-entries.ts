/**
 * The table's services and destinations (IPVS struct ip_vs_service / ip_vs_dest): what the
 * schedulers see, plus the counters and the references connection entries hold.
 */
import type { Family } from '../config/model.js';
import { addressFold } from '../util/address.js';
import { HEAP_SLOTS } from './sched/heap.js';
import type { SchedDest, SchedService, Scheduler } from './sched/types.js';
import { Counters } from './stats.js';
import type { DestParams, DestSnapshot, ServiceKey, ServiceParams, ServiceSnapshot } from './types.js';

export class Dest implements SchedDest {
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

export class Service implements SchedService {
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
export function expandFlags(flags: readonly string[]): Set<string> {
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

/** A service and its destinations as ipvsadm shows them (other workers' peer load left out). */
export function serviceSnapshot(svc: Service): ServiceSnapshot {
  const dests: DestSnapshot[] = svc.dests.map((d) => ({
    ...d.params,
    id: d.id,
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
  return {
    ...svc.params,
    key: svc.key,
    id: svc.id,
    stats: svc.counters.stats(),
    rates: svc.counters.rates(),
    dests,
    noDest: svc.noDest,
  };
}
