/**
 * UDP virtual service: per-client flows (IPVS UDP connection entries) with the table's UDP timeout.
 * Each flow owns a connected upstream socket so replies find their client; `ops` (one-packet
 * scheduling) asks the table for every datagram and closes that entry at once, keeping one upstream
 * socket per client and real server so replies still come back.
 */
import dgram, { type RemoteInfo, type Socket } from 'node:dgram';
import { type ConnHandle, type Endpoint, type ServiceKey, serviceId } from '../../lb/types.js';
import type { LimitCounters, ListenerState } from '../port.js';
import type { ProxyContext } from './context.js';
import { type ProxyDest, ProxyDests } from './dest.js';
import { ListenerSteering } from './steer.js';

const kFlow = Symbol('keepvs.flow');
type Tagged = Socket & { [kFlow]: UdpFlow };

/** datagrams queued per flow while its upstream socket connects; more are dropped (UDP may drop) */
const MAX_PENDING = 64;
/** at the flow limit, a flow idle this long may give its place to a new one */
const EVICT_IDLE_MS = 1000;
/** flows looked at (oldest first) for an idle one before a datagram is dropped */
const EVICT_SCAN = 32;

class UdpFlow {
  readonly upstream: Tagged;
  last: number;
  timeoutMs: number;
  pending: Buffer[] | null = [];
  open = true;
  /** its real server was removed (expire_nodest_conn off): the client's datagrams are dropped */
  held = false;

  constructor(
    readonly svc: UdpService,
    readonly key: string,
    readonly client: Endpoint,
    readonly dest: ProxyDest,
    /** null in ops mode: each datagram had its own entry */
    readonly handle: ConnHandle | null,
  ) {
    this.last = svc.ctx.now;
    this.timeoutMs = handle ? handle.idleTimeoutMs() : 0;
    this.upstream = dgram.createSocket(svc.key.family === 6 ? 'udp6' : 'udp4') as Tagged;
    this.upstream[kFlow] = this;
    this.upstream.on('message', onReply);
    this.upstream.on('error', onUpstreamError);
    this.upstream.connect(dest.endpoint.port, dest.endpoint.address, onUpstreamConnect);
  }

  send(msg: Buffer): void {
    if (this.pending) {
      if (this.pending.length < MAX_PENDING) this.pending.push(msg);
      return;
    }
    this.upstream.send(msg);
  }

  /** The real server removed (on) or back (off): IPVS drops the flow's datagrams meanwhile. */
  hold(on: boolean): void {
    this.held = on;
  }

  expire(): void {
    if (!this.open) return;
    this.open = false;
    try {
      this.upstream.close();
    } catch {
      // already closed after an error
    }
    this.svc.flows.delete(this.key);
    this.svc.ctx.udpFlows--;
    this.dest.open.delete(this);
    this.handle?.close();
  }
}

function onUpstreamConnect(this: Tagged, err?: Error | null): void {
  const f = this[kFlow];
  if (err) {
    noteFdError(f, err);
    f.expire();
    return;
  }
  const q = f.pending;
  f.pending = null;
  if (q) for (const m of q) f.upstream.send(m);
}

function onReply(this: Tagged, msg: Buffer): void {
  const f = this[kFlow];
  f.last = f.svc.ctx.now;
  f.handle?.countOut(1, msg.length);
  f.svc.socket?.send(msg, f.client.port, f.client.address);
}

/** EMFILE/ENFILE making a flow's upstream socket: counted and reported, never thrown. */
function noteFdError(f: UdpFlow, err: Error): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  if (code !== 'EMFILE' && code !== 'ENFILE') return false;
  f.svc.limits.fdExhausted++;
  f.svc.ctx.limitHit(
    f.svc.id,
    'DP_FD_EXHAUSTED',
    `UDP flow socket: ${code} (out of file descriptors); datagram dropped`,
  );
  return true;
}

function onUpstreamError(this: Tagged, err: Error): void {
  // ICMP port unreachable from the real server surfaces here (ECONNREFUSED on a connected socket)
  const f = this[kFlow];
  if (noteFdError(f, err)) {
    f.expire();
    return;
  }
  f.dest.connectFailures++;
  f.svc.connectFailures++;
  f.expire();
}

export class UdpService {
  readonly id: string;
  readonly flows = new Map<string, UdpFlow>();
  readonly dests: ProxyDests;
  socket: Socket | null = null;
  listener: ListenerState = 'waiting-for-address';
  error: string | undefined;
  boundPort = 0;
  noDest = 0;
  private readonly steering: ListenerSteering;
  readonly limits: LimitCounters = { fdExhausted: 0, udpFlowsDropped: 0, udpFlowsEvicted: 0 };
  connectFailures = 0;
  ops: boolean;
  private retry: NodeJS.Timeout | null = null;
  private closing = false;

  constructor(
    readonly ctx: ProxyContext,
    readonly key: Extract<ServiceKey, { kind: 'addr' }>,
    ops: boolean,
  ) {
    this.id = serviceId(key);
    this.dests = new ProxyDests(key.family);
    this.steering = new ListenerSteering(ctx, key.family, this.id);
    this.ops = ops;
  }

  get conns(): { readonly size: number } {
    return this.flows;
  }

  /**
   * Binds the VIP. With libc (koffi) the socket is made with IP_FREEBIND and SO_REUSEPORT and
   * handed to dgram: a VIP not held yet binds at once, and every proxy worker binds the same port,
   * the kernel spreading datagrams by their addresses and ports (one flow always meets one worker
   * while the set of workers stays). Without libc, a VIP that is not local yet is retried every
   * bindRetryMs until it arrives (e.g. when this director becomes MASTER).
   */
  listen(): void {
    if (this.closing) return;
    const s = dgram.createSocket(this.key.family === 6 ? { type: 'udp6', ipv6Only: true } : { type: 'udp4' });
    s.on('message', (msg, rinfo) => this.onMessage(msg, rinfo));
    s.once('error', (e: NodeJS.ErrnoException) => {
      this.error = e.message;
      this.ctx.diagnostic('DP_LISTEN_FAILED', this.id, e.message);
      s.close();
      if (this.socket === s) this.socket = null;
      if (e.code === 'EADDRNOTAVAIL' && !this.closing) {
        this.listener = 'waiting-for-address';
        this.retry = setTimeout(() => {
          this.retry = null;
          this.listen();
        }, this.ctx.bindRetryMs);
        this.retry.unref();
      } else this.listener = 'failed';
    });
    const port = this.ctx.bindPort(this.id, this.key.port);
    const onBound = () => {
      this.socket = s;
      this.boundPort = s.address().port;
      this.listener = 'listening';
      this.error = undefined;
    };
    const fb = this.ctx.freebind;
    if (!fb) {
      s.bind({ address: this.key.address, port, exclusive: true }, onBound);
      return;
    }
    try {
      const fd = fb.bind('udp', this.key.address, port).fd;
      this.steering.attach(fd);
      s.bind({ fd }, onBound);
    } catch (e) {
      this.error = (e as Error).message;
      this.ctx.diagnostic('DP_LISTEN_FAILED', this.id, this.error);
      this.listener = 'failed';
      s.close();
    }
  }

  private onMessage(msg: Buffer, rinfo: RemoteInfo): void {
    const key = `${rinfo.address} ${rinfo.port}`;
    if (this.ops) {
      this.onePacket(msg, rinfo, key);
      return;
    }
    let f = this.flows.get(key);
    if (!f) {
      if (!this.roomForFlow()) return;
      const client = { address: rinfo.address, port: rinfo.port };
      const handle = this.ctx.table.open(this.key, client);
      if (!handle) {
        this.noDest++;
        return;
      }
      const dest = this.dests.of(handle.dest);
      handle.setState('UDP');
      f = new UdpFlow(this, key, client, dest, handle);
      this.flows.set(key, f);
      this.ctx.udpFlows++;
      dest.open.add(f);
    }
    // dropped, and its entry's timer not restarted, while its real server is removed (ip_vs_in_hook)
    if (f.held) return;
    f.last = this.ctx.now;
    f.handle?.countIn(1, msg.length);
    f.send(msg);
  }

  /** IPVS --ops: every datagram is scheduled on its own and its entry expires right after. */
  private onePacket(msg: Buffer, rinfo: RemoteInfo, clientKey: string): void {
    if (!this.roomForFlow()) return;
    const client = { address: rinfo.address, port: rinfo.port };
    const handle = this.ctx.table.open(this.key, client);
    if (!handle) {
      this.noDest++;
      return;
    }
    const dest = this.dests.of(handle.dest);
    handle.setState('UDP');
    handle.countIn(1, msg.length);
    const timeoutMs = handle.idleTimeoutMs();
    handle.close();
    const key = `${clientKey} ${dest.id}`;
    let f = this.flows.get(key);
    if (!f) {
      f = new UdpFlow(this, key, client, dest, null);
      this.flows.set(key, f);
      this.ctx.udpFlows++;
      dest.open.add(f);
    }
    f.timeoutMs = timeoutMs;
    f.last = this.ctx.now;
    f.send(msg);
  }

  /**
   * At the process's flow limit a new flow takes the place of an idle one (the oldest flows are
   * looked at first; idle = nothing for a second), else its datagram is dropped: UDP may drop, and
   * the fds stay for TCP. IPVS has no such limit, but its entries cost no file descriptor.
   */
  private roomForFlow(): boolean {
    const ctx = this.ctx;
    if (ctx.udpFlows < ctx.maxUdpFlows) return true;
    let looked = 0;
    for (const f of this.flows.values()) {
      if (ctx.now - f.last >= EVICT_IDLE_MS) {
        f.expire();
        this.limits.udpFlowsEvicted++;
        return true;
      }
      if (++looked >= EVICT_SCAN) break;
    }
    this.limits.udpFlowsDropped++;
    ctx.limitHit(
      this.id,
      'DP_UDP_FLOW_LIMIT',
      `${ctx.maxUdpFlows} UDP flows open in this proxy process (the limit) and none idle: new flows' datagrams dropped`,
    );
    return false;
  }

  /** the persistence prefix clients are steered by; re-attaches the program when listening */
  steerBy(prefixLen: number | null): void {
    this.steering.steerBy(prefixLen);
  }

  sweep(now: number): void {
    for (const f of this.flows.values()) {
      const timeout = f.handle ? f.handle.idleTimeoutMs() : f.timeoutMs;
      if (now - f.last > timeout || (f.handle as { alive?: boolean } | null)?.alive === false) f.expire();
    }
  }

  close(_drainMs: number): Promise<void> {
    // UDP has no connections to drain: flows end with the listener, as IPVS entries simply expire
    this.closing = true;
    this.listener = 'draining';
    if (this.retry) clearTimeout(this.retry);
    for (const f of [...this.flows.values()]) f.expire();
    const s = this.socket;
    this.socket = null;
    if (!s) return Promise.resolve();
    return new Promise((resolve) => s.close(() => resolve()));
  }

  zero(): void {
    this.noDest = 0;
    this.connectFailures = 0;
    this.dests.zero();
  }
}
