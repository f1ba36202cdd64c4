/**
 * TCP virtual service: one listener, each accepted client gets the real server the table picks
 * (full NAT: a new connection from the director). Hot-path design, from the measured notes:
 * per-connection cost dominates, so there are no per-connection closures or timers. Both sockets
 * point at one TcpConn through a symbol and share module-level handlers; idle and connect
 * timeouts are checked by the service's sweep, called from one shared interval.
 */
import net, { type Server, type Socket } from 'node:net';
import { type ConnHandle, type ConnState, destId, type Endpoint, type ServiceKey, serviceId } from '../../lb/types.js';
import type { ListenerState } from '../port.js';
import type { ProxyContext } from './context.js';
import { proxyV1, proxyV2 } from './proxy-protocol.js';
import { DestStats, moveState } from './stats.js';

const kConn = Symbol('keepvs.conn');
/** lb's Handle reports `alive === false` once the table expired or dropped the entry */
type MaybeAlive = { readonly alive?: boolean };
type Tagged = Socket & { [kConn]: TcpConn };

/** Socket options for the connection to the real server: shared, never mutated. */
const UPSTREAM_SOCKET_OPTIONS = { allowHalfOpen: true, noDelay: true, keepAlive: true } as const;

export class TcpConn {
  readonly server: Socket;
  state: ConnState | null = null;
  last: number;
  readonly started: number;
  connected = false;
  clientEnded = false;
  serverEnded = false;
  closed = 0;
  failed = false;
  clientDrainArmed = false;
  serverDrainArmed = false;
  /** traffic not yet reported to the table: flushed by the sweep and at close (no table call per chunk) */
  inPkts = 0;
  inBytes = 0;
  outPkts = 0;
  outBytes = 0;

  constructor(
    readonly svc: TcpService,
    readonly client: Socket,
    readonly handle: ConnHandle,
    readonly dest: DestStats,
  ) {
    this.last = this.started = svc.ctx.now;
    this.server = new net.Socket(UPSTREAM_SOCKET_OPTIONS);
  }

  setState(s: ConnState): void {
    if (this.state === s) return;
    moveState(this.dest, this.state, s);
    this.state = s;
    this.handle.setState(s);
  }

  /** Connection expired (idle, nodest, drain): both sides go away now. */
  expire(): void {
    destroyQuietly(this.client);
    destroyQuietly(this.server);
  }

  connectFailed(): void {
    if (this.failed || this.connected) return;
    this.failed = true;
    this.dest.connectFailures++;
    this.svc.connectFailures++;
    // the client learns at once, as it would from the real server's RST
    resetQuietly(this.client);
    destroyQuietly(this.server);
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

  finish(): void {
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
}

function destroyQuietly(s: Socket): void {
  if (!s.destroyed) s.destroy();
}

function resetQuietly(s: Socket): void {
  if (s.destroyed) return;
  // resetAndDestroy needs a connected handle (Node's private `_handle`, null once closed)
  if (s.connecting || !(s as unknown as { _handle: unknown })._handle) s.destroy();
  else s.resetAndDestroy();
}

function onClientData(this: Tagged, chunk: Buffer): void {
  const c = this[kConn];
  c.last = c.svc.ctx.now;
  c.inPkts++;
  c.inBytes += chunk.length;
  c.dest.inPkts++;
  c.dest.inBytes += chunk.length;
  if (!c.server.write(chunk)) {
    this.pause();
    // drain listeners only for connections that ever meet back-pressure (most never do)
    if (!c.serverDrainArmed) {
      c.serverDrainArmed = true;
      c.server.on('drain', onServerDrain);
    }
  }
}

function onServerData(this: Tagged, chunk: Buffer): void {
  const c = this[kConn];
  c.last = c.svc.ctx.now;
  c.outPkts++;
  c.outBytes += chunk.length;
  c.dest.outPkts++;
  c.dest.outBytes += chunk.length;
  if (!c.client.write(chunk)) {
    this.pause();
    if (!c.clientDrainArmed) {
      c.clientDrainArmed = true;
      c.client.on('drain', onClientDrain);
    }
  }
}

/** the client drained what we wrote to it: read from the server again */
function onClientDrain(this: Tagged): void {
  this[kConn].server.resume();
}

/** the server drained what we wrote to it: read from the client again */
function onServerDrain(this: Tagged): void {
  this[kConn].client.resume();
}

// Half-close passes through: each FIN is forwarded on its own (IPVS state names as ipvsadm -Lc).
function onClientEnd(this: Tagged): void {
  const c = this[kConn];
  c.clientEnded = true;
  c.setState(c.serverEnded ? 'TIME_WAIT' : 'FIN_WAIT');
  c.server.end();
}

function onServerEnd(this: Tagged): void {
  const c = this[kConn];
  c.serverEnded = true;
  c.setState(c.clientEnded ? 'LAST_ACK' : 'CLOSE_WAIT');
  c.client.end();
}

function onServerConnect(this: Tagged): void {
  const c = this[kConn];
  c.connected = true;
  c.last = c.svc.ctx.now;
  if (!c.clientEnded) c.setState('ESTABLISHED');
}

function onServerError(this: Tagged): void {
  const c = this[kConn];
  if (!c.connected) c.connectFailed();
  else resetQuietly(c.client); // a reset mid-stream reaches the client as a reset
}

function onClientError(this: Tagged): void {
  const c = this[kConn];
  resetQuietly(c.server);
}

function onClose(this: Tagged, hadError: boolean): void {
  const c = this[kConn];
  c.closed++;
  if (hadError) {
    const peer = this === c.client ? c.server : c.client;
    resetQuietly(peer);
  }
  if (c.closed === 2) c.finish();
}

/** a refused client may still report ECONNRESET: nothing to do */
function ignoreError(): void {}

export class TcpService {
  readonly id: string;
  readonly conns = new Set<TcpConn>();
  readonly dests = new Map<string, DestStats>();
  /** address -> port -> stats: pre-resolved, no string built per connection */
  private readonly destIndex = new Map<string, Map<number, DestStats>>();
  readonly server: Server;
  listener: ListenerState = 'waiting-for-address';
  error: string | undefined;
  boundPort = 0;
  noDest = 0;
  connectFailures = 0;
  private retry: NodeJS.Timeout | null = null;
  private drained: (() => void) | null = null;
  private closing: Promise<void> | null = null;
  private header: 'v1' | 'v2' | undefined;

  constructor(
    readonly ctx: ProxyContext,
    readonly key: Extract<ServiceKey, { kind: 'addr' }>,
  ) {
    this.id = serviceId(key);
    this.header = ctx.proxyProtocol(this.id);
    this.server = net.createServer(
      { allowHalfOpen: true, noDelay: true, keepAlive: true, pauseOnConnect: false },
      (client) => this.accept(client),
    );
    this.server.on('error', (e) => this.listenFailed(e));
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
    const port = this.ctx.bindPort(this.id, this.key.port);
    const fb = this.ctx.freebind;
    try {
      if (fb) {
        const bound = fb.bind('tcp', this.key.address, port);
        this.boundPort = bound.port;
        this.server.listen({ fd: bound.fd, exclusive: true, backlog: 4096 }, () => this.listening());
      } else {
        this.server.listen({ host: this.key.address, port, backlog: 4096 }, () => this.listening());
      }
    } catch (e) {
      this.listenFailed(e as Error);
    }
  }

  private listening(): void {
    const a = this.server.address();
    if (a && typeof a === 'object') this.boundPort = a.port;
    this.listener = 'listening';
    this.error = undefined;
  }

  private listenFailed(e: Error): void {
    this.error = e.message;
    this.listener = 'failed';
    this.ctx.diagnostic('DP_LISTEN_FAILED', this.id, e.message);
    // without freebind, wait for the VIP to arrive and try again
    if (!this.ctx.freebind && /EADDRNOTAVAIL/.test(String((e as NodeJS.ErrnoException).code ?? e.message))) {
      this.listener = 'waiting-for-address';
      this.retry = setTimeout(() => {
        this.retry = null;
        this.listen();
      }, this.ctx.bindRetryMs);
      this.retry.unref();
    }
  }

  private accept(client: Socket): void {
    const address = client.remoteAddress;
    if (address === undefined) {
      client.destroy();
      return;
    }
    const handle = this.ctx.table.open(this.key, { address, port: client.remotePort ?? 0 });
    if (!handle) {
      // no destination: close cleanly, as IPVS would refuse the SYN
      this.noDest++;
      client.on('error', ignoreError);
      client.destroy();
      return;
    }
    const dest = this.destStats(handle.dest);
    const c = new TcpConn(this, client, handle, dest);
    dest.conns++;
    const server = c.server as Tagged;
    (client as Tagged)[kConn] = c;
    server[kConn] = c;
    this.conns.add(c);
    dest.open.add(c);
    c.setState('SYN_RECV');
    client.on('data', onClientData);
    client.on('end', onClientEnd);
    client.on('error', onClientError);
    client.on('close', onClose);
    server.on('connect', onServerConnect);
    server.on('data', onServerData);
    server.on('end', onServerEnd);
    server.on('error', onServerError);
    server.on('close', onClose);
    server.connect(handle.dest.port, handle.dest.address);
    if (this.header) {
      const h =
        this.header === 'v1'
          ? proxyV1(address, client.remotePort ?? 0, client.localAddress ?? '', client.localPort ?? 0)
          : proxyV2('tcp', address, client.remotePort ?? 0, client.localAddress ?? '', client.localPort ?? 0);
      server.write(h);
    }
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
    if (this.server.listening) this.server.close();
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
