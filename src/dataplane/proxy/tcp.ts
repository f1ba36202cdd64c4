/**
 * TCP virtual service: one listener, each accepted client gets the real server the table picks
 * (full NAT: a new connection from the director). Hot-path design, from the measured notes:
 * per-connection and per-chunk cost dominates, so sockets are plain fds driven by the process's
 * epoll set (poller.ts) through libc (libc.ts): per chunk one recv() into a buffer shared by the
 * whole process and one send() from it, no object, view or callback in between. An idle
 * connection owns no buffer; idle and connect timeouts are checked by the service's sweep.
 * Back-pressure: bytes the destination does not take at once are copied aside (at most one
 * read's worth per direction) and the source is not read again until they are gone.
 */
import { type ConnHandle, type ConnState, destId, type Endpoint, type ServiceKey, serviceId } from '../../lb/types.js';
import {
  AF_INET,
  AF_INET6,
  decodeSockaddr,
  EAGAIN,
  EINPROGRESS,
  EINTR,
  EMFILE,
  ENFILE,
  EPOLLERR,
  EPOLLHUP,
  EPOLLIN,
  EPOLLOUT,
  encodeSockaddr,
  errno,
  errnoName,
  IPPROTO_TCP,
  IPV6_V6ONLY,
  type Libc,
  loadLibc,
  MSG_NOSIGNAL,
  NONBLOCK_CLOEXEC,
  SHUT_WR,
  SO_REUSEADDR,
  SOCK_STREAM,
  SOL_IPV6,
  SOL_SOCKET,
  setIntOption,
  socketAddress,
  socketError,
  TCP_NODELAY,
} from '../../os/libc.js';
import type { ListenerState } from '../port.js';
import type { ProxyContext } from './context.js';
import { type FdOwner, type Poller, processPoller } from './poller.js';
import { proxyV1, proxyV2 } from './proxy-protocol.js';
import { DestStats, moveState } from './stats.js';

/** lb's Handle reports `alive === false` once the table expired or dropped the entry */
type MaybeAlive = { readonly alive?: boolean };

const LIBC: Libc | null = loadLibc();

/** 256 KiB: fewer, larger reads for one fast stream (iperf3 through 2 workers: 13.8-15.0 Gbit/s at 64 KiB, 19.0-22.3 at 256) */
const READ_BUFFER_BYTES = 256 * 1024;
/** reads land here and are written out before the next read: one buffer per process */
const READ_BUFFER = Buffer.allocUnsafeSlow(READ_BUFFER_BYTES);
/**
 * A read this large marks a bulk transfer: that direction then reads into a buffer of its own, so
 * what the destination does not take at once stays where it is (no copy). Own buffers are capped
 * per process, so connections that once moved bulk data and now idle cannot pin unbounded memory.
 */
const BULK_READ_BYTES = 16 * 1024;
/** at most 64 MiB of own read buffers per process */
const MAX_OWN_BUFFERS = 256;
const FREE_OWN_BUFFERS = 16;
const ownBuffers = { live: 0, free: [] as Buffer[] };

function takeOwnBuffer(): Buffer | null {
  if (ownBuffers.live >= MAX_OWN_BUFFERS) return null;
  ownBuffers.live++;
  return ownBuffers.free.pop() ?? Buffer.allocUnsafeSlow(READ_BUFFER_BYTES);
}

/** Only once its socket is closed: nothing reads into it or writes from it any more. */
function giveBackOwnBuffer(b: Buffer | null): void {
  if (!b) return;
  ownBuffers.live--;
  if (ownBuffers.free.length < FREE_OWN_BUFFERS) ownBuffers.free.push(b);
}
/** accepts per listener event: other connections' data is not kept waiting by a SYN flood */
const ACCEPT_BATCH = 64;
/** a listener out of fds (EMFILE) leaves the set this long; the kernel keeps the SYNs queued */
const ACCEPT_PAUSE_MS = 100;
const ERR_OR_HUP = EPOLLERR | EPOLLHUP;

/** accept4 fills this with the client's address: no getpeername per connection */
const PEER_ADDR = Buffer.alloc(28);
const PEER_ADDR_LEN = Buffer.alloc(4);

export class TcpConn implements FdOwner {
  readonly upstream: number;
  state: ConnState | null = null;
  last: number;
  readonly started: number;
  connected = false;
  clientEnded = false;
  serverEnded = false;
  /** a FIN was sent to that side (it is then closed with a FIN, not reset) */
  clientShut = false;
  upstreamShut = false;
  closed = false;
  failed = false;
  /** bytes the destination has not taken yet (back-pressure: the source is not read meanwhile) */
  private toClient: Buffer | null = null;
  private toUpstream: Buffer | null = null;
  /** each direction's own read buffer once it moved bulk data (null: the shared one) */
  private fromClientBuffer: Buffer | null = null;
  private fromUpstreamBuffer: Buffer | null = null;
  /** traffic not yet reported to the table: flushed by the sweep and at close (no table call per chunk) */
  inPkts = 0;
  inBytes = 0;
  outPkts = 0;
  outBytes = 0;

  constructor(
    readonly svc: TcpService,
    readonly client: number,
    readonly handle: ConnHandle,
    readonly dest: DestStats,
    upstream: number,
  ) {
    this.last = this.started = svc.ctx.now;
    this.upstream = upstream;
  }

  get pendingToClient(): number {
    return this.toClient?.length ?? 0;
  }

  get pendingToUpstream(): number {
    return this.toUpstream?.length ?? 0;
  }

  setState(s: ConnState): void {
    if (this.state === s) return;
    moveState(this.dest, this.state, s);
    this.state = s;
    this.handle.setState(s);
  }

  /** Connection expired (idle, nodest, drain): both sides go away now. */
  expire(): void {
    this.close(-1);
  }

  connectFailed(): void {
    if (this.failed || this.connected || this.closed) return;
    this.failed = true;
    this.dest.connectFailures++;
    this.svc.connectFailures++;
    // the client learns at once, as it would from the real server's RST
    this.close(this.client);
  }

  /** Closes both sockets; `reset` (if either) gets an RST instead of a FIN. */
  close(reset: number): void {
    if (this.closed) return;
    this.closed = true;
    const p = this.svc.poller;
    p.close(this.client, reset === this.client && !this.clientShut);
    p.close(this.upstream, reset === this.upstream && this.connected && !this.upstreamShut);
    this.toClient = this.toUpstream = null;
    giveBackOwnBuffer(this.fromClientBuffer);
    giveBackOwnBuffer(this.fromUpstreamBuffer);
    this.fromClientBuffer = this.fromUpstreamBuffer = null;
    this.finish();
  }

  /** Reports pending traffic to the table (which also refreshes the entry's expiry there). */
  flush(): void {
    if (this.inPkts) {
      this.handle.countIn(this.inPkts, this.inBytes);
      this.inPkts = this.inBytes = 0;
    }
    if (this.outPkts) {
      this.handle.countOut(this.outPkts, this.outBytes);
      this.outPkts = this.outBytes = 0;
    }
  }

  private finish(): void {
    if (this.state === null) return;
    this.flush();
    this.handle.setState('CLOSE');
    moveState(this.dest, this.state, null);
    this.state = null;
    this.handle.close();
    this.svc.conns.delete(this);
    this.dest.open.delete(this);
    this.svc.onConnGone();
  }

  onEvent(fd: number, events: number): void {
    if (!this.connected) {
      if (fd === this.upstream) this.connectDone(events);
      return;
    }
    const fromClient = fd === this.client;
    const other = fromClient ? this.upstream : this.client;
    if (events & EPOLLOUT && this.pending(fd) !== null) {
      this.drain(fd, other);
      if (this.closed) return;
    }
    if (events & (EPOLLIN | ERR_OR_HUP)) {
      if (this.svc.poller.mask(fd) & EPOLLIN) this.readFrom(fd, other, fromClient);
      else if (events & ERR_OR_HUP) this.hangup(fd, other);
    }
  }

  /**
   * The non-blocking connect to the real server ended: writable is connected, an error or hang-up
   * is a refusal or a reset (no SO_ERROR read on success; closes are deferred past the batch, so
   * this event cannot belong to an earlier socket with the same number).
   */
  private connectDone(events: number): void {
    if (events & ERR_OR_HUP) {
      this.connectFailed();
      return;
    }
    this.connected = true;
    this.last = this.svc.ctx.now;
    this.setState('ESTABLISHED');
    const header = this.svc.proxyHeader(this.client);
    if (header) this.send(this.upstream, this.client, header, header.length);
    if (this.closed) return;
    // the client is read only now: its bytes wait in the kernel until the real server can take them
    const p = this.svc.poller;
    p.watch(this.upstream, EPOLLIN | (this.toUpstream ? EPOLLOUT : 0), this);
    p.watch(this.client, this.toUpstream ? 0 : EPOLLIN, this);
  }

  private readFrom(fd: number, to: number, fromClient: boolean): void {
    const libc = this.svc.libc;
    const own = fromClient ? this.fromClientBuffer : this.fromUpstreamBuffer;
    const buf = own ?? READ_BUFFER;
    const n = libc.recv(fd, buf, READ_BUFFER_BYTES, 0);
    if (n > 0) {
      this.last = this.svc.ctx.now;
      const d = this.dest;
      if (fromClient) {
        this.inPkts++;
        this.inBytes += n;
        d.inPkts++;
        d.inBytes += n;
      } else {
        this.outPkts++;
        this.outBytes += n;
        d.outPkts++;
        d.outBytes += n;
      }
      this.send(to, fd, buf, n);
      if (own === null && n >= BULK_READ_BYTES && !this.closed) {
        if (fromClient) this.fromClientBuffer = takeOwnBuffer();
        else this.fromUpstreamBuffer = takeOwnBuffer();
      }
      return;
    }
    if (n === 0) {
      this.ended(fromClient);
      return;
    }
    const e = errno();
    if (e === EAGAIN || e === EINTR) return;
    // ECONNRESET and friends: the other side gets a reset too
    this.close(to);
  }

  /** Writes data[0..n) to `to`; what it does not take now is kept and `source` waits for it. */
  private send(to: number, source: number, data: Buffer, n: number): void {
    const w = this.sendNow(to, source, data, n);
    if (w === n || w < 0) return;
    // an own buffer is not read into again until the rest is gone; the shared one is, so copy
    let rest: Buffer;
    if (data === READ_BUFFER) {
      rest = Buffer.allocUnsafeSlow(n - w);
      data.copy(rest, 0, w, n);
    } else rest = data.subarray(w, n);
    this.setPending(to, rest);
    const p = this.svc.poller;
    p.watch(source, p.mask(source) & ~EPOLLIN, this);
    p.watch(to, p.mask(to) | EPOLLOUT, this);
  }

  /** `to` can take more: write what waits for it; once it is all gone, read `source` again. */
  private drain(to: number, source: number): void {
    const rest = this.pending(to) as Buffer;
    const w = this.sendNow(to, source, rest, rest.length);
    if (w < 0) return;
    if (w < rest.length) {
      this.setPending(to, rest.subarray(w));
      return;
    }
    this.setPending(to, null);
    const p = this.svc.poller;
    if (this.hasEnded(source)) {
      p.watch(to, p.mask(to) & ~EPOLLOUT, this);
      // a FIN that waited for these bytes goes now
      this.forwardFin(to);
      return;
    }
    // a paused source most likely has more: read it now, not after another wait; if `to` cannot
    // take all of it again, both stay as they are (no epoll change in a steady bulk transfer)
    this.readFrom(source, to, source === this.client);
    if (this.closed || this.pending(to) !== null) return;
    p.watch(to, p.mask(to) & ~EPOLLOUT, this);
    if (!this.hasEnded(source)) p.watch(source, p.mask(source) | EPOLLIN, this);
  }

  /** send() what `to` takes now: the byte count, or -1 when `to` failed (the connection is then closed, `source` reset). */
  private sendNow(to: number, source: number, data: Buffer, n: number): number {
    const w = this.svc.libc.send(to, data, n, MSG_NOSIGNAL);
    if (w >= 0) return w;
    const e = errno();
    if (e === EAGAIN || e === EINTR) return 0;
    // the destination is gone: the source learns by a reset
    this.close(source);
    return -1;
  }

  /** that side's FIN was read */
  private hasEnded(side: number): boolean {
    return side === this.client ? this.clientEnded : this.serverEnded;
  }

  /** bytes waiting for `to` (null: none) */
  private pending(to: number): Buffer | null {
    return to === this.client ? this.toClient : this.toUpstream;
  }

  private setPending(to: number, rest: Buffer | null): void {
    if (to === this.client) this.toClient = rest;
    else this.toUpstream = rest;
  }

  /** Half-close passes through: each FIN is forwarded on its own (IPVS state names as ipvsadm -Lc). */
  private ended(fromClient: boolean): void {
    const source = fromClient ? this.client : this.upstream;
    const to = fromClient ? this.upstream : this.client;
    if (fromClient) {
      this.clientEnded = true;
      this.setState(this.serverEnded ? 'TIME_WAIT' : 'FIN_WAIT');
    } else {
      this.serverEnded = true;
      this.setState(this.clientEnded ? 'LAST_ACK' : 'CLOSE_WAIT');
    }
    if (this.pending(to) === null) this.forwardFin(to);
    if (this.closed) return;
    // a socket at EOF stays readable: stop watching it for input
    const p = this.svc.poller;
    p.watch(source, p.mask(source) & ~EPOLLIN, this);
  }

  /** Sends the FIN to `to` (its source ended and nothing waits for it); both done: close. */
  private forwardFin(to: number): void {
    if (this.clientEnded && this.serverEnded && this.toClient === null && this.toUpstream === null) {
      // close() sends the FINs itself, nothing left to read either way
      if (to === this.client) this.clientShut = true;
      else this.upstreamShut = true;
      this.close(-1);
      return;
    }
    if (to === this.client) this.clientShut = true;
    else this.upstreamShut = true;
    this.svc.libc.shutdown(to, SHUT_WR);
  }

  /** An error or hang-up on a socket not read now (ended, or paused by back-pressure). */
  private hangup(fd: number, other: number): void {
    if (socketError(this.svc.libc, fd) !== 0) {
      this.close(other);
      return;
    }
    // both directions of `fd` are over; the other side finishes on its own
    const p = this.svc.poller;
    p.watch(fd, p.mask(fd) & EPOLLOUT, this);
  }
}

export class TcpService implements FdOwner {
  readonly id: string;
  readonly conns = new Set<TcpConn>();
  readonly dests = new Map<string, DestStats>();
  /** address -> port -> stats: pre-resolved, no string built per connection */
  private readonly destIndex = new Map<string, Map<number, DestStats>>();
  /** sockaddr of each real server, encoded once */
  private readonly sockaddrs = new WeakMap<DestStats, Buffer>();
  private server = -1;
  listener: ListenerState = 'waiting-for-address';
  error: string | undefined;
  boundPort = 0;
  noDest = 0;
  connectFailures = 0;
  private retry: NodeJS.Timeout | null = null;
  private drained: (() => void) | null = null;
  private closing: Promise<void> | null = null;
  private readonly header: 'v1' | 'v2' | undefined;
  readonly libc: Libc;
  readonly poller: Poller;

  constructor(
    readonly ctx: ProxyContext,
    readonly key: Extract<ServiceKey, { kind: 'addr' }>,
  ) {
    this.id = serviceId(key);
    this.header = ctx.proxyProtocol(this.id);
    this.libc = LIBC as Libc;
    this.poller = (LIBC ? processPoller(LIBC) : null) as Poller;
  }

  destStats(ep: Endpoint): DestStats {
    let byPort = this.destIndex.get(ep.address);
    const hit = byPort?.get(ep.port);
    if (hit) return hit;
    const id = destId(ep, this.key.family);
    let d = this.dests.get(id);
    if (!d) {
      d = new DestStats(id, { address: ep.address, port: ep.port });
      this.dests.set(id, d);
    }
    if (!byPort) {
      byPort = new Map();
      this.destIndex.set(ep.address, byPort);
    }
    byPort.set(ep.port, d);
    return d;
  }

  forgetDest(ep: Endpoint, expire: boolean): void {
    const d = this.dests.get(destId(ep, this.key.family));
    if (d && expire) for (const c of [...d.open]) c.expire();
  }

  listen(): void {
    if (!LIBC) {
      this.listenFailed('keepvs proxies TCP through libc (koffi), which this system does not offer');
      return;
    }
    const libc = LIBC;
    const { address } = this.key;
    const port = this.ctx.bindPort(this.id, this.key.port);
    const fb = this.ctx.freebind;
    let fd: number;
    if (fb) {
      try {
        fd = fb.bind('tcp', address, port).fd;
      } catch (e) {
        this.listenFailed((e as Error).message);
        return;
      }
    } else {
      const bound = plainBind(libc, address, port);
      if (typeof bound === 'string') {
        this.listenFailed(`bind ${bound} ${address}:${port}`, bound);
        return;
      }
      fd = bound;
    }
    if (libc.listen(fd, 4096) !== 0) {
      const name = errnoName(errno());
      libc.close(fd);
      this.listenFailed(`listen ${name} ${address}:${port}`, name);
      return;
    }
    this.server = fd;
    this.poller.watch(fd, EPOLLIN, this);
    this.boundPort = socketAddress(libc, fd, 'local')?.port ?? port;
    this.listener = 'listening';
    this.error = undefined;
  }

  private listenFailed(message: string, code?: string): void {
    this.error = message;
    this.listener = 'failed';
    this.ctx.diagnostic('DP_LISTEN_FAILED', this.id, message);
    // without freebind, wait for the VIP to arrive and try again
    if (!this.ctx.freebind && code === 'EADDRNOTAVAIL') {
      this.listener = 'waiting-for-address';
      this.retry = setTimeout(() => {
        this.retry = null;
        this.listen();
      }, this.ctx.bindRetryMs);
      this.retry.unref();
    }
  }

  /** The listener is readable: accept what is queued (a bounded batch per event). */
  onEvent(fd: number): void {
    const libc = this.libc;
    for (let i = 0; i < ACCEPT_BATCH && this.server === fd; i++) {
      PEER_ADDR_LEN.writeUInt32LE(PEER_ADDR.length);
      const client = libc.accept4(fd, PEER_ADDR, PEER_ADDR_LEN, NONBLOCK_CLOEXEC);
      if (client < 0) {
        const e = errno();
        if (e === EMFILE || e === ENFILE) this.pauseAccepting(fd);
        return;
      }
      const peer = decodeSockaddr(PEER_ADDR);
      if (peer) this.accept(client, peer.address, peer.port);
      else libc.close(client);
    }
  }

  private pauseAccepting(fd: number): void {
    this.poller.watch(fd, 0, this);
    setTimeout(() => {
      if (this.server === fd) this.poller.watch(fd, EPOLLIN, this);
    }, ACCEPT_PAUSE_MS).unref();
  }

  private accept(client: number, address: string, port: number): void {
    const libc = this.libc;
    let handle: ConnHandle | null;
    try {
      handle = this.ctx.table.open(this.key, { address, port });
    } catch (e) {
      // the poller reports it; the client must not leak
      this.poller.close(client, true);
      throw e;
    }
    if (!handle) {
      // no destination: close cleanly, as IPVS would refuse the SYN
      this.noDest++;
      this.poller.close(client);
      return;
    }
    const dest = this.destStats(handle.dest);
    let sa = this.sockaddrs.get(dest);
    if (!sa) {
      sa = encodeSockaddr(handle.dest.address, handle.dest.port);
      this.sockaddrs.set(dest, sa);
    }
    const upstream = libc.socket(sa.length === 28 ? AF_INET6 : AF_INET, SOCK_STREAM | NONBLOCK_CLOEXEC, 0);
    if (upstream < 0) {
      // out of fds: the client goes as if the real server had refused it
      this.connectFailures++;
      dest.connectFailures++;
      handle.setState('CLOSE');
      handle.close();
      this.poller.close(client, true);
      return;
    }
    const c = new TcpConn(this, client, handle, dest, upstream);
    dest.conns++;
    this.conns.add(c);
    dest.open.add(c);
    c.setState('SYN_RECV');
    setIntOption(libc, client, IPPROTO_TCP, TCP_NODELAY);
    setIntOption(libc, upstream, IPPROTO_TCP, TCP_NODELAY);
    if (libc.connect(upstream, sa, sa.length) === 0) {
      this.poller.watch(upstream, EPOLLOUT, c);
      return;
    }
    const e = errno();
    if (e === EINPROGRESS) this.poller.watch(upstream, EPOLLOUT, c);
    else c.connectFailed();
  }

  /** The PROXY protocol header for this client, when the service sends one. */
  proxyHeader(client: number): Buffer | null {
    if (!this.header) return null;
    const peer = socketAddress(this.libc, client, 'peer');
    const local = socketAddress(this.libc, client, 'local');
    const args = [peer?.address ?? '', peer?.port ?? 0, local?.address ?? '', local?.port ?? 0] as const;
    return this.header === 'v1' ? proxyV1(...args) : proxyV2('tcp', ...args);
  }

  /** Connect timeouts and IPVS-style idle expiry, from the shared sweep. */
  sweep(now: number): void {
    const connectTimeout = this.ctx.connectTimeoutMs;
    for (const c of this.conns) {
      c.flush();
      if (!c.connected) {
        if (now - c.started > connectTimeout) c.connectFailed();
      } else if (now - c.last > c.handle.idleTimeoutMs() || (c.handle as MaybeAlive).alive === false) c.expire();
    }
  }

  onConnGone(): void {
    if (this.drained && this.conns.size === 0) this.drained();
  }

  /** Stops accepting; open connections may finish for drainMs, then are closed. */
  close(drainMs: number): Promise<void> {
    if (this.closing) {
      if (drainMs === 0) for (const c of [...this.conns]) c.expire();
      return this.closing;
    }
    this.closing = this.startClose(drainMs);
    return this.closing;
  }

  private startClose(drainMs: number): Promise<void> {
    if (this.retry) clearTimeout(this.retry);
    this.listener = 'draining';
    if (this.server >= 0) this.poller.close(this.server);
    this.server = -1;
    if (this.conns.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        for (const c of [...this.conns]) c.expire();
      }, drainMs);
      this.drained = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  zero(): void {
    this.noDest = 0;
    this.connectFailures = 0;
    for (const d of this.dests.values()) {
      d.conns = d.inPkts = d.outPkts = d.inBytes = d.outBytes = d.connectFailures = 0;
    }
  }
}

/** A listening socket bound without IP_FREEBIND (as Node would), or the errno name of the failure. */
function plainBind(libc: Libc, address: string, port: number): number | string {
  const sa = encodeSockaddr(address, port);
  const fd = libc.socket(sa.length === 28 ? AF_INET6 : AF_INET, SOCK_STREAM | NONBLOCK_CLOEXEC, 0);
  if (fd < 0) return errnoName(errno());
  setIntOption(libc, fd, SOL_SOCKET, SO_REUSEADDR);
  if (sa.length === 28) setIntOption(libc, fd, SOL_IPV6, IPV6_V6ONLY);
  if (libc.bind(fd, sa, sa.length) !== 0) {
    const name = errnoName(errno());
    libc.close(fd);
    return name;
  }
  return fd;
}
