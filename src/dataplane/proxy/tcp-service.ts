/**
 * TCP virtual service: one listener, each accepted client gets the real server the table picks
 * (full NAT: a new connection from the director). Hot-path design, from the measured notes:
 * per-connection and per-chunk cost dominates, so sockets are plain fds driven by the process's
 * epoll set (poller.ts) through libc (os/libc.ts); the connections themselves are tcp-conn.ts.
 * Idle and connect timeouts are checked by the service's sweep.
 */
import { type ConnHandle, type ServiceKey, serviceId } from '../../lb/types.js';
import {
  AF_INET,
  AF_INET6,
  decodeSockaddr,
  EMFILE,
  ENFILE,
  EPOLLIN,
  encodeSockaddr,
  errno,
  errnoName,
  IPPROTO_TCP,
  IPV6_V6ONLY,
  type Libc,
  NONBLOCK_CLOEXEC,
  SO_REUSEADDR,
  SOCK_STREAM,
  SOL_IPV6,
  SOL_SOCKET,
  setIntOption,
  socketAddress,
  TCP_NODELAY,
  TCP_QUICKACK,
} from '../../os/libc.js';
import type { LimitCounters, ListenerState } from '../port.js';
import type { ProxyContext } from './context.js';
import { type ProxyDest, ProxyDests } from './dest.js';
import { type FdOwner, type Poller, processPoller } from './poller.js';
import { proxyV1, proxyV2 } from './proxy-protocol.js';
import { ListenerSteering } from './steer.js';

import { LIBC, type MaybeAlive, TcpConn } from './tcp-conn.js';

/** accepts per listener event: other connections' data is not kept waiting by a SYN flood */
const ACCEPT_BATCH = 64;
/** a listener out of fds (EMFILE) leaves the set this long; the kernel keeps the SYNs queued */
const ACCEPT_PAUSE_MS = 100;

/** accept4 fills this with the client's address: no getpeername per connection */
const PEER_ADDR = Buffer.alloc(28);
const PEER_ADDR_LEN = Buffer.alloc(4);

export class TcpService implements FdOwner {
  readonly id: string;
  readonly conns = new Set<TcpConn>();
  readonly dests: ProxyDests;
  /** sockaddr of each real server, encoded once */
  private readonly sockaddrs = new WeakMap<ProxyDest, Buffer>();
  private server = -1;
  listener: ListenerState = 'waiting-for-address';
  error: string | undefined;
  boundPort = 0;
  noDest = 0;
  private readonly steering: ListenerSteering;
  readonly limits: LimitCounters = { fdExhausted: 0, udpFlowsDropped: 0, udpFlowsEvicted: 0 };
  connectFailures = 0;
  private retry: NodeJS.Timeout | null = null;
  private drained: (() => void) | null = null;
  private closing: Promise<void> | null = null;
  private header: 'v1' | 'v2' | undefined;
  readonly libc: Libc;
  readonly poller: Poller;

  constructor(
    readonly ctx: ProxyContext,
    readonly key: Extract<ServiceKey, { kind: 'addr' }>,
  ) {
    this.id = serviceId(key);
    this.dests = new ProxyDests(key.family);
    this.steering = new ListenerSteering(ctx, key.family, this.id, true);
    this.header = ctx.proxyProtocol(this.id);
    this.libc = LIBC as Libc;
    this.poller = (LIBC ? processPoller(LIBC) : null) as Poller;
  }

  /** the persistence prefix clients are steered by; re-attaches the program when listening */
  steerBy(prefixLen: number | null): void {
    this.steering.steerBy(prefixLen);
  }

  /** add-service / edit-service: the service's own `proxy_protocol`, else the data plane's default. */
  setProxyProtocol(p: 'v1' | 'v2' | 'off' | undefined): void {
    this.ownHeader = p;
    this.header = p === 'off' ? undefined : (p ?? this.ctx.proxyProtocol(this.id));
  }

  private ownHeader: 'v1' | 'v2' | 'off' | undefined;

  /** The data plane's default changed: a service without its own proxy_protocol follows it. */
  refreshProxyProtocol(): void {
    this.setProxyProtocol(this.ownHeader);
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
    // accepted sockets inherit TCP_NODELAY from the listener (tcp_create_openreq_child copies the
    // listener's tcp_sock): one setsockopt per service instead of one per client
    setIntOption(libc, fd, IPPROTO_TCP, TCP_NODELAY);
    // and delayed-ACK mode (TCP_QUICKACK 0, as HAProxy's tcp-smart-accept): a client's request is
    // ACKed by the reply that follows it, not by a segment of its own (one segment less per connection)
    setIntOption(libc, fd, IPPROTO_TCP, TCP_QUICKACK, false);
    // after listen(): a TCP socket joins its reuseport group there (attaching first made a group of its own)
    this.steering.attach(fd);
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
        if (e === EMFILE || e === ENFILE) {
          this.limits.fdExhausted++;
          this.ctx.limitHit(
            this.id,
            'DP_FD_EXHAUSTED',
            `accept: ${errnoName(e)} (out of file descriptors); accepting again in ${ACCEPT_PAUSE_MS} ms`,
          );
          this.pauseAccepting(fd);
        }
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
    const dest = this.dests.of(handle.dest);
    let sa = this.sockaddrs.get(dest);
    if (!sa) {
      sa = encodeSockaddr(handle.dest.address, handle.dest.port);
      this.sockaddrs.set(dest, sa);
    }
    const upstream = libc.socket(sa.length === 28 ? AF_INET6 : AF_INET, SOCK_STREAM | NONBLOCK_CLOEXEC, 0);
    if (upstream < 0) {
      const e = errno();
      if (e === EMFILE || e === ENFILE) {
        this.limits.fdExhausted++;
        this.ctx.limitHit(
          this.id,
          'DP_FD_EXHAUSTED',
          `socket: ${errnoName(e)} (out of file descriptors) for a real server connection`,
        );
      }
      // out of fds: the client goes as if the real server had refused it
      this.connectFailures++;
      dest.connectFailures++;
      handle.release('CLOSE');
      this.poller.close(client, true);
      return;
    }
    const c = new TcpConn(this, client, handle, dest, upstream);
    this.conns.add(c);
    dest.open.add(c);
    c.setState('SYN_RECV');
    setIntOption(libc, upstream, IPPROTO_TCP, TCP_NODELAY);
    c.connect(sa);
  }

  /** new connections start with a PROXY protocol header */
  get sendsHeader(): boolean {
    return this.header !== undefined;
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
    this.dests.zero();
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
