/**
 * The kernel TUN data plane (LVS-TUN, tun_type ipip): a DataPlane that takes the same TableOps as
 * every other plane and forwards the services whose real servers use `tunnel` forwarding through
 * tc-BPF (tun_encap.bpf.c) on the director's VIP interfaces. Services without tunnel destinations
 * are ignored, so a composite plane can hand every op to both this plane and the nft plane: each
 * forwards its own methods (the seam for src/dataplane/nft, documented in docs/dataplane.md).
 *
 * Slot tables are swapped atomically: each service owns two regions of the slot map; the standby
 * region gets only the slots that differ from what it holds, then one update of the service's entry
 * points the program at it (a generation flip), so a packet never sees a half-written table.
 *
 * The kernel and the routing lookups are ports (TunKernel, TunRoutes): tests use fakes, the daemon
 * uses BpfTunKernel (src/dataplane/tun/kernel.ts) and IpRouteResolver (src/os/route.ts).
 */
import type { Family } from '../../config/model.js';
import { DEFAULT_TIMEOUTS, mergeTimeouts } from '../../lb/timeouts.js';
import {
  type DestParams,
  destId,
  type Endpoint,
  type ServiceKey,
  type ServiceParams,
  serviceId,
  type TableOp,
} from '../../lb/types.js';
import type {
  DataPlane,
  DataPlaneDestSnapshot,
  DataPlaneDiagnostic,
  DataPlaneServiceSnapshot,
  DataPlaneSnapshot,
  RuntimeDataPlaneOptions,
} from '../port.js';
import {
  IPPROTO,
  KV_NO_REAL,
  MAX_REALS,
  type RealVal,
  SLOT_CAPACITY,
  ST,
  type SvcVal,
  slotBatch,
  svcKey,
  svcVal,
} from './layout.js';
import { changedSlots, planSlots, type SlotPlan } from './slots.js';

/** Where the outer packet to a real server leaves: interface, its MTU, the source address to use. */
export interface TunRoute {
  readonly ifname: string;
  readonly ifindex: number;
  readonly mtu: number;
  readonly source: string;
}

export interface TunRoutes {
  /** Route towards a real server (throws with a readable message when there is none). */
  resolve(address: string): Promise<TunRoute>;
  /** MTU of a local interface. */
  mtu(ifname: string): number;
}

/** The BPF side, as the plane needs it. */
export interface TunKernel {
  /**
   * Loads the program (first call) and attaches it to an interface's tc ingress, replacing a
   * previous keepvs's filter there; a no-op for an interface already attached.
   */
  attach(ifname: string): void;
  setService(key: Uint8Array, val: Uint8Array): void;
  deleteService(key: Uint8Array): void;
  writeSlots(keys: Uint8Array, values: Uint8Array, count: number): void;
  setReal(index: number, real: RealVal): void;
  /** packets/bytes encapsulated towards one real and TCP SYNs among them (summed over CPUs); resetReal zeroes them */
  realStats(index: number): { packets: number; bytes: number; conns: number };
  resetReal(index: number): void;
  /** kv_stats, summed over CPUs */
  stats(): readonly number[];
  /** Detaches from every interface and closes the maps. */
  detach(): void;
  /** Closes the maps, leaving the program attached and forwarding. */
  release(): void;
  /** Empties a real's entry, so flows pinned to it reschedule (its index is free). */
  clearReal(index: number): void;
}

export interface TunPlaneOptions {
  readonly kernel: TunKernel;
  readonly routes: TunRoutes;
  /** director interfaces where VIP traffic arrives (tc ingress), the same for every service */
  readonly interfaces?: readonly string[];
  /** or per service: the interface its VIP lives on (or is routed through), null when none */
  readonly ingressOf?: (key: Extract<ServiceKey, { kind: 'addr' }>) => Promise<string | null>;
  /** expire_nodest_conn: a removed real server's pinned flows reschedule at once; else they are dropped */
  readonly expireNodestConn?: boolean;
}

const BLOCK = 4096;
const HDR: Readonly<Record<Family, number>> = { 4: 20, 6: 40 };
const ENCAP_EXTRA = { ipip: 0, gue: 12, gre: 4 } as const;

interface DestState {
  readonly ep: Endpoint;
  readonly id: string;
  params: DestParams;
  /** IPVS list position: newer destinations go to the head */
  readonly seq: number;
  lastWeight: number;
  real?: number;
  /** kv_real.gen of `real` */
  gen: number;
  /** what kv_reals holds for it */
  written?: RealVal;
  route?: TunRoute;
  /** counters at the last `zero` */
  base: { packets: number; bytes: number; conns: number };
}

interface ServiceState {
  readonly key: ServiceKey;
  readonly id: string;
  params: ServiceParams;
  readonly dests: Map<string, DestState>;
  blocks?: [number, number];
  active: 0 | 1;
  /** what each region holds (kv real indexes), null = unknown */
  regions: [{ real: Uint32Array; realSyn: Uint32Array } | null, { real: Uint32Array; realSyn: Uint32Array } | null];
  programmed?: SvcVal;
  notes: readonly string[];
}

export class TunDataPlane implements DataPlane {
  private readonly services = new Map<string, ServiceState>();
  private readonly diagnostics: DataPlaneDiagnostic[] = [];
  private readonly freeBlocks: number[] = [];
  private readonly freeReals: number[] = [];
  private seq = 0;
  private generation = 0;
  private readonly attached = new Set<string>();
  private loadError: string | undefined;
  private statsBase: readonly number[] = [];
  /** expire_nodest_conn as a reload set it; else opts.expireNodestConn */
  private expireNodest: boolean | undefined;
  /** ipvsadm --set: how long a removed real server's pinned flows stay dropped */
  private timeouts = { ...DEFAULT_TIMEOUTS };
  /**
   * expire_nodest_conn off: removed real servers (`serviceId|destId`) whose index stays taken, marked
   * KV_REAL_GONE, until `until` (IPVS's entry timeout from the removal: the flow map keeps no time per
   * flow); one back in its service before then gets its index and generation again (IPVS's trash)
   */
  private readonly gone = new Map<string, { d: DestState; until: number }>();
  private goneTimer: NodeJS.Timeout | null = null;

  /** A reload changed expire_nodest_conn: the next removed real server's flows follow it. */
  setOptions(options: RuntimeDataPlaneOptions): void {
    if (options.expireNodestConn) this.expireNodest = options.expireNodestConn === 'close';
  }

  constructor(private readonly opts: TunPlaneOptions) {
    for (let b = 0; b < SLOT_CAPACITY / BLOCK; b++) this.freeBlocks.push(b);
    for (let r = 0; r < MAX_REALS; r++) this.freeReals.push(r);
  }

  async apply(ops: readonly TableOp[]): Promise<void> {
    const touched = new Set<string>();
    for (const op of ops) {
      switch (op.op) {
        case 'add-service':
        case 'edit-service': {
          const id = serviceId(op.key);
          const s = this.services.get(id);
          if (s) s.params = op.params;
          else
            this.services.set(id, {
              key: op.key,
              id,
              params: op.params,
              dests: new Map(),
              active: 0,
              regions: [null, null],
              notes: [],
            });
          touched.add(id);
          break;
        }
        case 'del-service':
          this.removeService(serviceId(op.key));
          touched.delete(serviceId(op.key));
          break;
        case 'add-dest':
        case 'edit-dest': {
          const s = this.services.get(serviceId(op.key));
          if (!s) break;
          const id = destId(op.dest, op.key.family);
          const d = s.dests.get(id);
          const back = this.gone.get(`${s.id}|${id}`);
          if (d) {
            d.params = op.params;
            if (op.params.weight > 0) d.lastWeight = op.params.weight;
          } else if (back) {
            // IPVS takes it back from the trash: the same index and generation, its pinned flows go on
            this.gone.delete(`${s.id}|${id}`);
            s.dests.set(id, { ...back.d, params: op.params, seq: ++this.seq, lastWeight: op.params.weight });
          } else {
            s.dests.set(id, {
              ep: op.dest,
              id,
              params: op.params,
              seq: ++this.seq,
              lastWeight: op.params.weight,
              gen: 0,
              base: { packets: 0, bytes: 0, conns: 0 },
            });
          }
          touched.add(s.id);
          break;
        }
        case 'del-dest': {
          const s = this.services.get(serviceId(op.key));
          if (!s) break;
          const id = destId(op.dest, op.key.family);
          const d = s.dests.get(id);
          if (d) {
            s.dests.delete(id);
            this.unlink(s, d);
          }
          touched.add(s.id);
          break;
        }
        case 'clear':
          for (const id of [...this.services.keys()]) this.removeService(id);
          touched.clear();
          break;
        case 'zero':
          this.zero(op.key ? serviceId(op.key) : undefined);
          break;
        case 'set-timeouts':
          this.timeouts = mergeTimeouts(this.timeouts, op);
          break;
      }
    }
    const routeCache = new Map<string, Promise<TunRoute>>();
    for (const id of touched) {
      const s = this.services.get(id);
      if (s) await this.program(s, routeCache);
    }
    this.releasePending();
  }

  /**
   * A real server left its service. expire_nodest_conn on: its index is freed (emptied: its pinned
   * flows reschedule, as IPVS expires the entries). Off: marked gone, so its pinned flows are dropped
   * (ip_vs_core.c ip_vs_in, "Check the server status"), not moved, until its time is up.
   */
  private unlink(s: ServiceState, d: DestState): void {
    if ((this.expireNodest ?? this.opts.expireNodestConn) || d.real === undefined || !d.written) {
      d.route = undefined;
      this.pendingFree.push(d);
      return;
    }
    const udp = s.key.kind === 'addr' && s.key.protocol === 'udp';
    this.gone.set(`${s.id}|${d.id}`, { d, until: Date.now() + (udp ? this.timeouts.udp : this.timeouts.tcp) * 1000 });
    if (this.attached.size) this.opts.kernel.setReal(d.real, { ...d.written, gone: true });
    d.written = { ...d.written, gone: true };
    this.armGone();
  }

  private armGone(): void {
    if (this.goneTimer) clearTimeout(this.goneTimer);
    this.goneTimer = null;
    if (!this.gone.size) return;
    const next = Math.min(...[...this.gone.values()].map((g) => g.until));
    this.goneTimer = setTimeout(() => this.goneExpired(), Math.max(0, next - Date.now()));
    this.goneTimer.unref();
  }

  /** Removed real servers whose time is up: their indexes are emptied and free. */
  private goneExpired(): void {
    const now = Date.now();
    for (const [k, g] of this.gone)
      if (g.until <= now) {
        this.gone.delete(k);
        g.d.route = undefined;
        this.pendingFree.push(g.d);
      }
    this.releasePending();
    this.armGone();
  }

  /** reals of deleted destinations, freed once no slot refers to them any more */
  private readonly pendingFree: DestState[] = [];

  private releasePending(): void {
    for (const d of this.pendingFree.splice(0)) {
      if (d.real !== undefined) {
        // flows pinned to a removed real server reschedule (IPVS's expire_nodest_conn behaviour)
        if (this.attached.size) this.opts.kernel.clearReal(d.real);
        this.freeReals.push(d.real);
      }
      d.real = undefined;
    }
  }

  private diagnose(code: string, service: string, message: string): void {
    if (this.diagnostics.some((d) => d.code === code && d.service === service && d.message === message)) return;
    this.diagnostics.push({ code, service, message });
    if (this.diagnostics.length > 200) this.diagnostics.shift();
  }

  /** Tunnel destinations this plane can forward; diagnoses the others. */
  private tunnelDests(s: ServiceState): DestState[] {
    const out: DestState[] = [];
    const key = s.key;
    let others = 0;
    for (const d of s.dests.values()) {
      if (d.params.forward !== 'tunnel') {
        others++;
        continue;
      }
      const family: Family = d.ep.address.includes(':') ? 6 : 4;
      const type = d.params.tunType ?? 'ipip';
      const flags = d.params.tunFlags ?? [];
      const refuse = (why: string) =>
        this.diagnose(
          'DP_TUN_TYPE_UNSUPPORTED',
          s.id,
          `tun_type ${type} for ${d.id}: ${why}; the real server gets no traffic`,
        );
      if (type !== 'ipip' && flags.some((f) => f !== 'nocsum')) {
        refuse(`tun_flags ${flags.join(' ')} is not supported by the kernel TUN plane (nocsum only)`);
        continue;
      }
      if (type === 'gue' && key.family === 6) {
        refuse('GUE over IPv6 needs a UDP checksum, which the kernel TUN plane does not compute (use ipip or gre)');
        continue;
      }
      if (type === 'gue' && !d.params.tunPort) {
        refuse('GUE needs tun_port');
        continue;
      }
      if (family !== key.family) {
        this.diagnose(
          'DP_TUN_FAMILY',
          s.id,
          `real server ${d.id} is IPv${family} in an IPv${key.family} service: mixed-family tunnels are not supported; it gets no traffic`,
        );
        continue;
      }
      if (key.kind === 'addr' && d.ep.port !== key.port && d.ep.port !== 0 && key.port !== 0) {
        this.diagnose(
          'DP_TUN_PORT',
          s.id,
          `real server ${d.id}: a tunnel keeps the destination port ${key.port}; port ${d.ep.port} is ignored (as IPVS does)`,
        );
      }
      out.push(d);
    }
    if (out.length && others) {
      this.diagnose(
        'DP_TUN_MIXED',
        s.id,
        `the service mixes tunnel and other forwarding methods; the kernel TUN plane takes all its traffic to the ${out.length} tunnel real server(s)`,
      );
    }
    return out;
  }

  private async program(s: ServiceState, routeCache: Map<string, Promise<TunRoute>>): Promise<void> {
    const dests = this.tunnelDests(s);
    if (dests.length === 0) {
      this.unprogram(s);
      return;
    }
    const key = s.key;
    if (key.kind === 'fwmark') {
      this.diagnose(
        'DP_UNSUPPORTED_FWMARK',
        s.id,
        'fwmark TUN services are not supported by the tc-BPF TUN plane (no mark at tc ingress)',
      );
      return;
    }
    if (key.protocol === 'sctp') {
      this.diagnose('DP_UNSUPPORTED_PROTOCOL', s.id, 'SCTP is not forwarded by the tc-BPF TUN plane');
      return;
    }
    const ingress = this.opts.interfaces ?? [await this.opts.ingressOf?.(key)].filter((x): x is string => !!x);
    if (ingress.length === 0) {
      this.diagnose(
        'DP_TUN_NO_INGRESS',
        s.id,
        `no local interface holds or routes the VIP ${key.address}; not forwarded`,
      );
      return;
    }
    if (!this.ensureAttached(s.id, ingress)) return;

    // routes (and MTU) towards each real server
    const usable: DestState[] = [];
    for (const d of dests) {
      let p = routeCache.get(d.ep.address);
      if (!p) {
        p = this.opts.routes.resolve(d.ep.address);
        routeCache.set(d.ep.address, p);
      }
      try {
        d.route = await p;
        usable.push(d);
      } catch (e) {
        this.diagnose(
          'DP_TUN_NO_ROUTE',
          s.id,
          `no route to real server ${d.id}: ${(e as Error).message}; it gets no traffic`,
        );
        continue;
      }
      this.checkMtu(s, d, ingress);
    }
    // IPVS list order: newest first
    usable.sort((a, b) => b.seq - a.seq);
    const plan = planSlots({
      family: key.family,
      scheduler: s.params.scheduler,
      schedFlags: s.params.schedFlags,
      ...(s.params.persistentTimeout !== undefined ? { persistentTimeout: s.params.persistentTimeout } : {}),
      ...(s.params.persistentPrefixLen !== undefined ? { persistentPrefixLen: s.params.persistentPrefixLen } : {}),
      dests: usable.map((d) => ({
        id: d.id,
        address: d.ep.address,
        port: d.ep.port,
        family: key.family,
        weight: d.params.weight,
        lastWeight: d.lastWeight,
      })),
    });
    for (const n of plan.notes) this.diagnose('DP_TUN_SCHEDULER', s.id, n);
    for (const d of usable) {
      if (d.real === undefined) {
        const r = this.freeReals.shift();
        if (r === undefined) {
          this.diagnose('DP_TUN_CAPACITY', s.id, `more than ${MAX_REALS} tunnel real servers; ${d.id} gets no traffic`);
          continue;
        }
        d.real = r;
        d.gen = ++this.generation;
        this.opts.kernel.resetReal(r);
        d.base = { packets: 0, bytes: 0, conns: 0 };
      }
      const route = d.route as TunRoute;
      const encap = d.params.tunType ?? 'ipip';
      d.written = {
        daddr: d.ep.address,
        saddr: route.source,
        ifindex: route.ifindex,
        family: key.family,
        encap,
        gen: d.gen,
        ...(encap === 'gue' && d.params.tunPort ? { port: d.params.tunPort } : {}),
      };
      this.opts.kernel.setReal(d.real, d.written);
    }
    this.writePlan(s, plan, usable);
  }

  private checkMtu(s: ServiceState, d: DestState, ingress: readonly string[]): void {
    const route = d.route as TunRoute;
    const hdr = HDR[s.key.family] + ENCAP_EXTRA[d.params.tunType ?? 'ipip'];
    for (const ifname of ingress) {
      let inMtu: number;
      try {
        inMtu = this.opts.routes.mtu(ifname);
      } catch {
        continue;
      }
      if (route.mtu < inMtu + hdr) {
        const mss4 = route.mtu - 40 - (hdr - HDR[s.key.family]) - 20;
        const fam = s.key.family === 4 ? `${mss4}` : `${mss4 - 40} for IPv6`;
        this.diagnose(
          'DP_TUN_MTU',
          s.id,
          `${route.ifname} (towards the real servers) has MTU ${route.mtu}, below ${ifname}'s ${inMtu} + ${hdr} B of tunnel header: ` +
            `full-size packets are dropped. Raise ${route.ifname}'s MTU to ${inMtu + hdr} or clamp the real servers' TCP MSS to ${fam} ` +
            `(keepvs realserver --mss ${mss4}: IPv4 ${mss4}, IPv6 ${mss4 - 40})`,
        );
      }
    }
  }

  private ensureAttached(service: string, ifnames: readonly string[]): boolean {
    for (const ifname of ifnames) {
      if (this.attached.has(ifname)) continue;
      try {
        if (this.loadError) throw new Error(this.loadError);
        this.opts.kernel.attach(ifname);
        this.attached.add(ifname);
      } catch (e) {
        const msg = (e as Error).message;
        // a missing object, library or privilege will not come back by itself
        if (!this.attached.size) this.loadError = msg;
        this.diagnose('DP_TUN_UNAVAILABLE', service, `the kernel TUN plane is not available on ${ifname}: ${msg}`);
        return false;
      }
    }
    return true;
  }

  private writePlan(s: ServiceState, plan: SlotPlan, dests: readonly DestState[]): void {
    const toReal = (i: number): number => (i < 0 ? KV_NO_REAL : (dests[i].real ?? KV_NO_REAL));
    const real = Uint32Array.from(plan.real, toReal);
    const realSyn = plan.realSyn === plan.real ? real : Uint32Array.from(plan.realSyn, toReal);
    if (!s.blocks) {
      const a = this.freeBlocks.shift();
      const b = this.freeBlocks.shift();
      if (a === undefined || b === undefined) {
        if (a !== undefined) this.freeBlocks.unshift(a);
        this.diagnose(
          'DP_TUN_CAPACITY',
          s.id,
          `more than ${SLOT_CAPACITY / BLOCK / 2} TUN services; this one is not forwarded`,
        );
        return;
      }
      s.blocks = [a, b];
    }
    const key = s.key as Extract<ServiceKey, { kind: 'addr' }>;
    const active = s.regions[s.active];
    const val: SvcVal = {
      base: s.blocks[s.active] * BLOCK,
      nslots: plan.size,
      flags: plan.hashFlags,
      prefix: plan.prefix,
    };
    if (
      active &&
      s.programmed &&
      s.programmed.nslots === val.nslots &&
      s.programmed.flags === val.flags &&
      s.programmed.prefix === val.prefix &&
      changedSlots(active, { real, realSyn }).length === 0
    ) {
      return; // nothing changed
    }
    const standby: 0 | 1 = s.active === 0 ? 1 : 0;
    const held = s.regions[standby];
    const indexes =
      held && held.real.length === plan.size
        ? changedSlots(held, { real, realSyn })
        : Array.from({ length: plan.size }, (_, i) => i);
    const base = s.blocks[standby] * BLOCK;
    const batch = slotBatch(base, real, realSyn, indexes);
    this.opts.kernel.writeSlots(batch.keys, batch.values, batch.count);
    s.regions[standby] = { real, realSyn: realSyn === real ? real : realSyn };
    const next: SvcVal = { ...val, base };
    this.opts.kernel.setService(
      svcKey(key.family, IPPROTO[key.protocol as 'tcp' | 'udp'], key.port, key.address),
      svcVal(next),
    );
    s.active = standby;
    s.programmed = next;
    s.notes = plan.notes;
  }

  private unprogram(s: ServiceState): void {
    if (s.programmed && s.key.kind === 'addr') {
      this.opts.kernel.deleteService(
        svcKey(s.key.family, IPPROTO[s.key.protocol as 'tcp' | 'udp'], s.key.port, s.key.address),
      );
    }
    s.programmed = undefined;
    if (s.blocks) this.freeBlocks.push(...s.blocks);
    s.blocks = undefined;
    s.regions = [null, null];
  }

  private removeService(id: string): void {
    const s = this.services.get(id);
    if (!s) return;
    this.unprogram(s);
    // the service's entry is gone, so its packets no longer reach the program's flow lookup: freed
    for (const d of s.dests.values()) this.pendingFree.push(d);
    for (const [k, g] of this.gone)
      if (k.startsWith(`${id}|`)) {
        this.gone.delete(k);
        this.pendingFree.push(g.d);
      }
    this.services.delete(id);
  }

  private zero(id?: string): void {
    for (const s of this.services.values()) {
      if (id && s.id !== id) continue;
      for (const d of s.dests.values()) if (d.real !== undefined) d.base = this.opts.kernel.realStats(d.real);
    }
    if (!id && this.attached.size) this.statsBase = this.opts.kernel.stats();
  }

  /** Counters of the whole program since start (or the last zero): encapsulated, dropped... */
  counters(): { encap: number; noReal: number; tooBig: number; error: number; noDest: number } {
    const st = this.attached.size ? this.opts.kernel.stats() : [];
    const v = (i: number) => (st[i] ?? 0) - (this.statsBase[i] ?? 0);
    return { encap: v(ST.encap), noReal: v(ST.noReal), tooBig: v(ST.tooBig), error: v(ST.error), noDest: v(ST.noDest) };
  }

  /** The kv_reals index of each tunnel destination of a service (tests, debugging). */
  slotView(id: string): { real: Uint32Array; realSyn: Uint32Array; reals: Map<number, string> } | undefined {
    const s = this.services.get(id);
    const region = s?.regions[s.active];
    if (!s || !region || !s.programmed) return undefined;
    const reals = new Map<number, string>();
    for (const d of s.dests.values()) if (d.real !== undefined) reals.set(d.real, d.id);
    return { real: region.real, realSyn: region.realSyn, reals };
  }

  snapshot(): DataPlaneSnapshot {
    const services: DataPlaneServiceSnapshot[] = [];
    for (const s of this.services.values()) {
      if (!s.programmed) continue;
      const dests: DataPlaneDestSnapshot[] = [];
      for (const d of s.dests.values()) {
        if (d.real === undefined) continue;
        const st = this.opts.kernel.realStats(d.real);
        const pk = st.packets - d.base.packets;
        dests.push({
          id: d.id,
          address: d.ep.address,
          port: d.ep.port,
          activeConns: 0,
          inactConns: 0,
          conns: st.conns - d.base.conns,
          inPkts: pk,
          outPkts: 0,
          inBytes: st.bytes - d.base.bytes,
          outBytes: 0,
          connectFailures: 0,
        });
      }
      const key = s.key as Extract<ServiceKey, { kind: 'addr' }>;
      services.push({
        id: s.id,
        key,
        protocol: key.protocol,
        listener: 'listening',
        boundPort: key.port,
        noDest: 0,
        connectFailures: 0,
        open: 0,
        dests,
      });
    }
    return { kind: 'tun', workers: 1, services, diagnostics: [...this.diagnostics] };
  }

  /** Graceful stop: the program leaves the interfaces (keepalived clears its virtual servers on exit). */
  async stop(_drainMs: number): Promise<void> {
    if (this.goneTimer) clearTimeout(this.goneTimer);
    if (this.attached.size) this.opts.kernel.detach();
    this.attached.clear();
  }

  /** Stops without touching the kernel: the program keeps forwarding until the next keepvs replaces it. */
  async detach(): Promise<void> {
    this.opts.kernel.release();
    this.attached.clear();
  }
}
