/**
 * The connection table (IPVS ip_vs_conn): entries and persistence templates in a ConnStore,
 * bound to destinations by reference (ip_vs_bind_dest / ip_vs_unbind_dest), with IPVS's
 * state accounting (ActiveConn / InActConn / PersistConn, OVERLOAD) and expiry.
 */
import type { Family } from '../config/model.js';
import { parseV4, v4ToText } from '../util/address.js';
import type { Clock, TimerHandle } from '../util/clock.js';
import { ConnStore, F_INACTIVE, F_OPS, F_TEMPLATE, F_USED, F_V6, PROTO_SHIFT } from './conn-store.js';
import type { Dest, Service } from './table-entries.js';
import { PROTOCOLS } from './table-validate.js';
import { PersistenceTemplates } from './templates.js';
import { CONN_STATES, STATE_INDEX, stateTimeoutSeconds } from './timeouts.js';
import type {
  ConnHandle,
  ConnSnapshot,
  ConnState,
  DestParams,
  Endpoint,
  ForwardMethod,
  Protocol,
  Timeouts,
} from './types.js';

export class ConnTable {
  readonly store = new ConnStore();
  readonly templates = new PersistenceTemplates(this.store);
  /** destRef -> Dest, for connection entries */
  private readonly destRefs: (Dest | undefined)[] = [];
  private readonly freeRefs: number[] = [];
  private expiryTimer: TimerHandle | null = null;

  constructor(
    private readonly clock: Clock,
    private readonly timeouts: () => Timeouts,
    /** sysctl expire_quiescent_template, read at each lookup */
    private readonly expireQuiescentTemplate: () => boolean,
  ) {}

  dispose(): void {
    this.expiryTimer?.cancel();
    this.expiryTimer = null;
  }

  /** A reference number for a new destination. */
  allocRef(): number {
    return this.freeRefs.pop() ?? this.destRefs.length;
  }

  bindRef(d: Dest): void {
    this.destRefs[d.ref] = d;
  }

  releaseRef(d: Dest): void {
    if (this.destRefs[d.ref] === d) {
      this.destRefs[d.ref] = undefined;
      this.freeRefs.push(d.ref);
    }
  }

  /** The destination a live template points to, if it may still decide (ip_vs_check_template). */
  templateDest(slot: number): Dest | null {
    const d = this.destRefs[this.store.destRef[slot]];
    if (!d || d.removed) return null;
    if (this.expireQuiescentTemplate() && d.weight === 0) return null;
    return d;
  }

  newEntry(svc: Service, d: Dest, address: string, port: number, protocol: Protocol, template: boolean): number {
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
    return stateTimeoutSeconds(state, this.timeouts()) * 1000;
  }

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

  /** Re-arms the idle timer for the entry's current state. */
  touch(slot: number): void {
    const s = this.store;
    if (s.flags[slot] & F_OPS) return;
    s.arm(slot, this.clock.now() + this.stateTimeoutMs(CONN_STATES[s.state[slot]]));
  }

  connState(slot: number): ConnState {
    return CONN_STATES[this.store.state[slot]];
  }

  isOneShot(slot: number): boolean {
    return (this.store.flags[slot] & F_OPS) !== 0;
  }

  alive(slot: number, gen: number): boolean {
    return this.store.used(slot) && this.store.gen[slot] === gen;
  }

  /** ip_vs_unbind_dest + free */
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
    if (flags & F_TEMPLATE) this.templates.unhash(slot);
    s.free(slot);
  }

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

  /** Frees a removed destination's connections (expire_nodest_conn); returns what they were. */
  dropConnsOf(d: Dest): ConnSnapshot[] {
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

  /** Connection entries and templates, for `ipvsadm -Lc`. */
  connections(): ConnSnapshot[] {
    const out: ConnSnapshot[] = [];
    const now = this.clock.now();
    const s = this.store;
    for (let slot = 0; slot < s.capacity; slot++) if (s.flags[slot] & F_USED) out.push(this.connSnapshot(slot, now));
    return out;
  }

  private connSnapshot(slot: number, now: number): ConnSnapshot {
    const s = this.store;
    const d = this.destRefs[s.destRef[slot]]!;
    const svc = d.service;
    const flags = s.flags[slot];
    const client = flags & F_V6 ? s.clientV6.get(slot)! : v4ToText(s.clientV4[slot]);
    const family: Family = svc.family;
    const virtual: Endpoint =
      svc.key.kind === 'addr'
        ? { address: svc.key.address, port: svc.key.port }
        : { address: family === 4 ? '0.0.0.0' : '::', port: svc.key.fwmark };
    return {
      protocol: PROTOCOLS[(flags >> PROTO_SHIFT) & 3],
      client: { address: client, port: s.clientPort[slot] },
      virtual,
      dest: { address: d.address, port: d.port },
      family,
      state: CONN_STATES[s.state[slot]],
      expiresInMs: Math.max(0, s.expires[slot] - now),
      template: (flags & F_TEMPLATE) !== 0,
      service: svc.id,
      realServer: d.id,
    };
  }
}

/** A data plane's handle on one connection entry; operations on a gone entry are no-ops. */
export class Handle implements ConnHandle {
  readonly dest: Endpoint;
  readonly forward: ForwardMethod;
  constructor(
    private readonly table: ConnTable,
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
  release(finalState: ConnState): void {
    if (!this.alive) return;
    if (this.table.isOneShot(this.slot)) this.table.freeConn(this.slot);
    else this.table.setConnState(this.slot, finalState);
  }
}
