/**
 * A small ForwardingTable for data-plane tests (until lb/ has the real one): rr or lc over
 * destinations with weight > 0, per-dest Active/InAct counts driven by setState, timeouts per state.
 * It also replays TableOps, so cluster workers can each build the same replica.
 */
import type {
  ConnHandle,
  ConnState,
  Endpoint,
  ForwardingTable,
  ServiceKey,
  TableOp,
  TableSnapshot,
} from '../../src/lb/types.js';
import { destId, serviceId } from '../../src/lb/types.js';

export interface FakeDest {
  readonly dest: Endpoint;
  weight: number;
  active: number;
  inact: number;
  /** connections other processes hold (cluster peer load) */
  peerActive: number;
  peerInact: number;
  conns: number;
  inBytes: number;
  outBytes: number;
  inPkts: number;
  outPkts: number;
}

export interface FakeTimeouts {
  tcp: number;
  tcpfin: number;
  udp: number;
  synRecv: number;
}

export class FakeTable implements ForwardingTable {
  readonly services = new Map<string, { key: ServiceKey; scheduler: string; dests: FakeDest[]; next: number }>();
  readonly states: ConnState[] = [];
  closed = 0;
  timeouts: FakeTimeouts = { tcp: 900_000, tcpfin: 120_000, udp: 300_000, synRecv: 60_000 };

  apply(op: TableOp): void {
    switch (op.op) {
      case 'add-service':
        if (!this.services.has(serviceId(op.key)))
          this.services.set(serviceId(op.key), { key: op.key, scheduler: op.params.scheduler, dests: [], next: 0 });
        break;
      case 'del-service':
        this.services.delete(serviceId(op.key));
        break;
      case 'add-dest':
      case 'edit-dest': {
        const s = this.services.get(serviceId(op.key));
        if (!s) break;
        const d = s.dests.find((x) => x.dest.address === op.dest.address && x.dest.port === op.dest.port);
        if (d) d.weight = op.params.weight;
        else
          s.dests.push({
            dest: { address: op.dest.address, port: op.dest.port },
            weight: op.params.weight,
            active: 0,
            inact: 0,
            peerActive: 0,
            peerInact: 0,
            conns: 0,
            inBytes: 0,
            outBytes: 0,
            inPkts: 0,
            outPkts: 0,
          });
        break;
      }
      case 'del-dest': {
        const s = this.services.get(serviceId(op.key));
        if (s) s.dests = s.dests.filter((x) => !(x.dest.address === op.dest.address && x.dest.port === op.dest.port));
        break;
      }
      default:
        break;
    }
  }

  dest(key: ServiceKey, port: number): FakeDest | undefined {
    return this.services.get(serviceId(key))?.dests.find((d) => d.dest.port === port);
  }

  setPeerLoad(key: ServiceKey, dest: Endpoint, active: number, inact: number): void {
    const d = this.services
      .get(serviceId(key))
      ?.dests.find((x) => x.dest.port === dest.port && x.dest.address === dest.address);
    if (d) {
      d.peerActive = active;
      d.peerInact = inact;
    }
  }

  /** The counts as a table replica reports them to the cluster (own connections, no peer load). */
  snapshot(): TableSnapshot {
    const zero = { cps: 0, inPps: 0, outPps: 0, inBps: 0, outBps: 0 };
    const stats = (d: FakeDest) => ({
      conns: d.conns,
      inPkts: d.inPkts,
      outPkts: d.outPkts,
      inBytes: d.inBytes,
      outBytes: d.outBytes,
    });
    return {
      timeouts: { tcp: 900, tcpfin: 120, udp: 300 },
      connTableSize: 4096,
      syncDaemons: [],
      services: [...this.services].map(([id, s]) => ({
        key: s.key,
        id,
        scheduler: s.scheduler,
        schedFlags: [],
        ops: false,
        stats: { conns: 0, inPkts: 0, outPkts: 0, inBytes: 0, outBytes: 0 },
        rates: zero,
        dests: s.dests.map((d) => ({
          id: destId(d.dest, s.key.family),
          address: d.dest.address,
          port: d.dest.port,
          family: s.key.family,
          forward: 'masq' as const,
          weight: d.weight,
          uThreshold: 0,
          lThreshold: 0,
          activeConns: d.active,
          inactConns: d.inact,
          persistConns: 0,
          overloaded: false,
          stats: stats(d),
          rates: zero,
        })),
      })),
    };
  }

  open(key: ServiceKey, _client: Endpoint): ConnHandle | null {
    const s = this.services.get(serviceId(key));
    if (!s) return null;
    const live = s.dests.filter((d) => d.weight > 0);
    if (live.length === 0) return null;
    let d: FakeDest;
    if (s.scheduler === 'lc') {
      // IPVS lc overhead: active * 256 + inactive
      const load = (x: FakeDest) => (x.active + x.peerActive) * 256 + x.inact + x.peerInact;
      d = live.reduce((a, b) => (load(b) < load(a) ? b : a));
    } else {
      d = live[s.next++ % live.length]!;
    }
    d.conns++;
    let state: ConnState | null = null;
    const table = this;
    return {
      dest: d.dest,
      forward: 'masq',
      setState(next) {
        table.states.push(next);
        if (state === 'ESTABLISHED') d.active--;
        else if (state !== null) d.inact--;
        if (next === 'ESTABLISHED') d.active++;
        else d.inact++;
        state = next;
      },
      idleTimeoutMs() {
        if (state === 'ESTABLISHED') return table.timeouts.tcp;
        if (state === 'UDP') return table.timeouts.udp;
        if (state === 'SYN_RECV') return table.timeouts.synRecv;
        return table.timeouts.tcpfin;
      },
      countIn(p, b) {
        d.inPkts += p;
        d.inBytes += b;
      },
      countOut(p, b) {
        d.outPkts += p;
        d.outBytes += b;
      },
      close() {
        if (state === null) return;
        if (state === 'ESTABLISHED') d.active--;
        else d.inact--;
        state = null;
        table.closed++;
      },
      // the fake keeps no entry after the proxy is done: the final state is recorded, then gone
      release(final) {
        if (state === null) return;
        this.setState(final);
        this.close();
      },
    };
  }
}

/** Entry for cluster workers (ClusterOptions.tableModule). */
export function createReplicaTable(): FakeTable {
  return new FakeTable();
}
