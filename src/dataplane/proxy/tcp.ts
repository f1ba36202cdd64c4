/**
 * TCP virtual service: one listener, each accepted client gets the real server the table picks
 * (full NAT: a new connection from the director). Hot-path design, from the measured notes:
 * per-connection and per-chunk cost dominates, so the service drives Node's TCP handles directly
 * (handles.ts), with no stream objects, no per-connection closures and no per-connection timers.
 * Both handles point at one TcpConn through a symbol and share module-level callbacks; idle and
 * connect timeouts are checked by the service's sweep, called from one shared interval.
 * Back-pressure: at most one write is in flight per direction; while libuv still holds part of
 * it, the source handle stops reading, so a slow peer holds at most one read's worth here.
 */
import { type ConnHandle, type ConnState, destId, type Endpoint, type ServiceKey, serviceId } from '../../lb/types.js';
import type { ListenerState } from '../port.js';
import type { ProxyContext } from './context.js';
import {
  errorName,
  loadStreamHandles,
  type ShutdownReq,
  type SockAddr,
  type StreamHandles,
  type TcpHandle,
  UV_EOF,
  type WriteReq,
} from './handles.js';
import { proxyV1, proxyV2 } from './proxy-protocol.js';
import { DestStats, moveState } from './stats.js';

const kConn = Symbol('keepvs.conn');
const kService = Symbol('keepvs.service');
const kSource = Symbol('keepvs.source');
const kReadBuffer = Symbol('keepvs.readBuffer');
/** lb's Handle reports `alive === false` once the table expired or dropped the entry */
type MaybeAlive = { readonly alive?: boolean };
type ConnHandleTagged = TcpHandle & { [kConn]: TcpConn; [kReadBuffer]?: Buffer };
type ServerHandle = TcpHandle & { [kService]: TcpService };
type ConnWriteReq = WriteReq & { [kConn]: TcpConn; [kSource]: ConnHandleTagged | null };
type ConnShutdownReq = ShutdownReq & { [kConn]: TcpConn };

const H: StreamHandles | null = loadStreamHandles();

/**
 * Read buffers. Every handle reads into one buffer shared by the whole process; a small read is
 * copied out at once (into a slab, see copyOut), so an idle connection owns no buffer at all and
 * no read allocates an ArrayBuffer (Node's default path allocates 64 KiB per read and shrinks it).
 * A read this large marks a bulk transfer: that handle then reads into a buffer of its own and
 * its data is written with no copy (the handle stops reading while a write from that buffer is
 * in flight). Own buffers are capped per process, so connections that once moved bulk data and
 * now idle cannot pin unbounded memory; beyond the cap they keep the shared buffer and the copy.
 */
const BULK_READ_BYTES = 16 * 1024;
/** 256 KiB: fewer, larger reads for one fast stream (iperf3 through 2 workers: 13.8-15.0 Gbit/s at 64 KiB, 19.0-22.3 at 256) */
const READ_BUFFER_BYTES = 256 * 1024;
/** at most 64 MiB of own read buffers per process */
const MAX_READ_BUFFERS = 256;
const FREE_READ_BUFFERS = 16;
const SHARED_READ_BUFFER = Buffer.allocUnsafeSlow(READ_BUFFER_BYTES);
const readBuffers = { live: 0, free: [] as Buffer[] };

function ownReadBuffer(h: ConnHandleTagged): Buffer | undefined {
  if (readBuffers.live >= MAX_READ_BUFFERS) return undefined;
  const buf = readBuffers.free.pop() ?? Buffer.allocUnsafeSlow(READ_BUFFER_BYTES);
  readBuffers.live++;
  h[kReadBuffer] = buf;
  return buf;
}

/** The handle is closed (its fd too, so libuv writes nothing more from the buffer): reuse it. */
function releaseReadBuffer(h: ConnHandleTagged): void {
  const buf = h[kReadBuffer];
  if (!buf) return;
  h[kReadBuffer] = undefined;
  readBuffers.live--;
  if (readBuffers.free.length < FREE_READ_BUFFERS) readBuffers.free.push(buf);
}

/**
 * Copies the first n bytes of the shared buffer into a slab slice the pending write may keep.
 * Slices never overlap and a full slab is replaced, not rewritten, so a write still in flight
 * keeps its bytes (the slab lives as long as any slice of it).
 */
const SLAB_BYTES = 256 * 1024;
let slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
let slabUsed = 0;

function copyOut(n: number): Buffer {
  if (slabUsed + n > SLAB_BYTES) {
    slab = Buffer.allocUnsafeSlow(Math.max(SLAB_BYTES, n));
    slabUsed = 0;
  }
  const chunk = slab.subarray(slabUsed, slabUsed + n);
  SHARED_READ_BUFFER.copy(chunk, 0, 0, n);
  slabUsed = (slabUsed + n + 7) & ~7;
  return chunk;
}

/** A write request that completed synchronously is untouched by libuv: the next write reuses it. */
let spareWriteReq: ConnWriteReq | null = null;

export class TcpConn {
  readonly upstream: ConnHandleTagged;
  state: ConnState | null = null;
  last: number;
  readonly started: number;
  connected = false;
  clientEnded = false;
  serverEnded = false;
  /** a FIN was sent on that handle: it can no longer be reset (libuv refuses) */
  clientShut = false;
  upstreamShut = false;
  shutdownsDone = 0;
  closed = false;
  failed = false;
  /** bytes libuv still holds for a write to the client / to the real server (back-pressure) */
  pendingToClient = 0;
  pendingToUpstream = 0;
  /** traffic not yet reported to the table: flushed by the sweep and at close (no table call per chunk) */
  inPkts = 0;
  inBytes = 0;
  outPkts = 0;
  outBytes = 0;

  constructor(
    readonly svc: TcpService,
    readonly client: ConnHandleTagged,
    readonly handle: ConnHandle,
    readonly dest: DestStats,
    handles: StreamHandles,
  ) {
    this.last = this.started = svc.ctx.now;
    this.upstream = handles.newSocket() as ConnHandleTagged;
  }

  setState(s: ConnState): void {
    if (this.state === s) return;
    moveState(this.dest, this.state, s);
    this.state = s;
    this.handle.setState(s);
  }

  /** Connection expired (idle, nodest, drain): both sides go away now. */
  expire(): void {
    this.close(null);
  }

  connectFailed(): void {
    if (this.failed || this.connected || this.closed) return;
    this.failed = true;
    this.dest.connectFailures++;
    this.svc.connectFailures++;
    // the client learns at once, as it would from the real server's RST
    this.close(this.client);
  }

  /** Closes both handles; `reset` (if any) gets an RST instead of a FIN. */
  close(reset: TcpHandle | null): void {
    if (this.closed) return;
    this.closed = true;
    closeHandle(this.client, reset === this.client && !this.clientShut);
    closeHandle(this.upstream, reset === this.upstream && this.connected && !this.upstreamShut);
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
}

function closeHandle(h: ConnHandleTagged, reset: boolean): void {
  // a failed reset leaves the handle marked closing in Node: only try it when it can work
  if (!reset || h.reset() !== 0) h.close();
  releaseReadBuffer(h);
}

function onConnection(this: ServerHandle, status: number, client?: TcpHandle): void {
  if (status < 0 || !client) return; // e.g. EMFILE: the kernel keeps the SYN queued for later
  this[kService].accept(client as ConnHandleTagged);
}

function onConnect(this: { [kConn]: TcpConn }, status: number): void {
  const c = this[kConn];
  if (c.closed) return;
  if (status < 0) {
    c.connectFailed();
    return;
  }
  c.connected = true;
  c.last = c.svc.ctx.now;
  c.setState('ESTABLISHED');
  const header = c.svc.proxyHeader(c.client);
  if (header) write(c, c.upstream, null, header);
  if (c.closed) return;
  // the client is read only now: its bytes wait in the kernel until the real server can take them
  if (c.client.readStart() < 0 || c.upstream.readStart() < 0) c.close(null);
}

/** Writes `data` to `to`; while libuv holds part of it, `source` stops reading. False: failed. */
function write(c: TcpConn, to: ConnHandleTagged, source: ConnHandleTagged | null, data: Uint8Array): boolean {
  const req = spareWriteReq ?? ((H as StreamHandles).newWriteReq() as ConnWriteReq);
  spareWriteReq = null;
  req.handle = to;
  req.buffer = data;
  req.oncomplete = onWriteDone;
  req[kConn] = c;
  req[kSource] = source;
  const err = to.writeBuffer(req, data);
  if (err !== 0) {
    // the destination is gone: the source learns by a reset
    c.close(source);
    return false;
  }
  if ((H as StreamHandles).lastWriteWasAsync()) {
    if (to === c.client) c.pendingToClient += data.length;
    else c.pendingToUpstream += data.length;
    source?.readStop();
  } else {
    req.buffer = null;
    spareWriteReq = req;
  }
  return true;
}

function onWriteDone(this: ConnWriteReq, status: number): void {
  const c = this[kConn];
  const source = this[kSource];
  const bytes = this.buffer?.length ?? 0;
  this.buffer = null;
  if (this.handle === c.client) c.pendingToClient -= bytes;
  else c.pendingToUpstream -= bytes;
  if (c.closed) return;
  if (status < 0) c.close(source);
  else if (source && source.readStart() < 0) c.close(null);
}

/**
 * Called by the handle for each read. Returns the buffer its next read should land in when that
 * changes (Node's user-buffer reader takes the return value), here when a bulk transfer starts.
 */
function onRead(this: ConnHandleTagged): Buffer | undefined {
  const n = (H as StreamHandles).readResult();
  const c = this[kConn];
  if (c.closed) return undefined;
  const fromClient = this === c.client;
  if (n > 0) {
    const own = this[kReadBuffer];
    const chunk = own === undefined ? copyOut(n) : n === own.length ? own : own.subarray(0, n);
    c.last = c.svc.ctx.now;
    const d = c.dest;
    if (fromClient) {
      c.inPkts++;
      c.inBytes += n;
      d.inPkts++;
      d.inBytes += n;
    } else {
      c.outPkts++;
      c.outBytes += n;
      d.outPkts++;
      d.outBytes += n;
    }
    // a copied chunk is safe whatever happens, but one write in flight per direction is the back-pressure
    if (write(c, fromClient ? c.upstream : c.client, this, chunk) && own === undefined && n >= BULK_READ_BYTES)
      return ownReadBuffer(this);
    return undefined;
  }
  if (n === 0) return undefined; // nothing this time (EAGAIN): the user-buffer reader reports it
  if (n === UV_EOF) ended(c, fromClient);
  // ECONNRESET and friends: the other side gets a reset too
  else c.close(fromClient ? c.upstream : c.client);
  return undefined;
}

/** Half-close passes through: each FIN is forwarded on its own (IPVS state names as ipvsadm -Lc). */
function ended(c: TcpConn, fromClient: boolean): void {
  let to: ConnHandleTagged;
  if (fromClient) {
    c.clientEnded = true;
    c.setState(c.serverEnded ? 'TIME_WAIT' : 'FIN_WAIT');
    c.upstreamShut = true;
    to = c.upstream;
  } else {
    c.serverEnded = true;
    c.setState(c.clientEnded ? 'LAST_ACK' : 'CLOSE_WAIT');
    c.clientShut = true;
    to = c.client;
  }
  // both FINs seen and nothing queued either way: close() sends the FINs itself, no shutdown round
  // (libuv would drop queued writes on close, hence the pending check)
  if (c.clientEnded && c.serverEnded && c.pendingToUpstream === 0 && c.pendingToClient === 0) {
    c.close(null);
    return;
  }
  // libuv sends the FIN after the writes still queued on that handle
  const req = (H as StreamHandles).newShutdownReq() as ConnShutdownReq;
  req.handle = to;
  req.oncomplete = onShutdownDone;
  req[kConn] = c;
  if (to.shutdown(req) !== 0) shutdownDone(c);
}

function onShutdownDone(this: ConnShutdownReq): void {
  shutdownDone(this[kConn]);
}

function shutdownDone(c: TcpConn): void {
  c.shutdownsDone++;
  if (c.shutdownsDone === 2) c.close(null);
}

export class TcpService {
  readonly id: string;
  readonly conns = new Set<TcpConn>();
  readonly dests = new Map<string, DestStats>();
  /** address -> port -> stats: pre-resolved, no string built per connection */
  private readonly destIndex = new Map<string, Map<number, DestStats>>();
  private server: ServerHandle | null = null;
  listener: ListenerState = 'waiting-for-address';
  error: string | undefined;
  boundPort = 0;
  noDest = 0;
  connectFailures = 0;
  private retry: NodeJS.Timeout | null = null;
  private drained: (() => void) | null = null;
  private closing: Promise<void> | null = null;
  private readonly header: 'v1' | 'v2' | undefined;
  /** one scratch object for getpeername/getsockname: filled and read at once */
  private readonly addr: SockAddr = {};

  constructor(
    readonly ctx: ProxyContext,
    readonly key: Extract<ServiceKey, { kind: 'addr' }>,
  ) {
    this.id = serviceId(key);
    this.header = ctx.proxyProtocol(this.id);
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
    if (!H) {
      this.listenFailed('Node does not expose its TCP handles (process.binding tcp_wrap): TCP is not proxied');
      return;
    }
    const { address } = this.key;
    const port = this.ctx.bindPort(this.id, this.key.port);
    const fb = this.ctx.freebind;
    const server = H.newServer() as ServerHandle;
    server[kService] = this;
    server.onconnection = onConnection;
    let err: number;
    let what: string;
    if (fb) {
      let fd: number;
      try {
        fd = fb.bind('tcp', address, port).fd;
      } catch (e) {
        server.close();
        this.listenFailed((e as Error).message);
        return;
      }
      what = 'open';
      err = server.open(fd);
      if (err !== 0) fb.close(fd);
    } else {
      what = 'bind';
      err = this.key.family === 6 ? server.bind6(address, port, H.ipv6Only) : server.bind(address, port);
    }
    if (err === 0) {
      what = 'listen';
      err = server.listen(4096);
    }
    if (err !== 0) {
      server.close();
      this.listenFailed(`${what} ${errorName(err)} ${address}:${port}`, errorName(err));
      return;
    }
    this.server = server;
    const a = this.addr;
    this.boundPort = server.getsockname(a) === 0 ? (a.port ?? port) : port;
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

  accept(client: ConnHandleTagged): void {
    const h = H as StreamHandles;
    const a = this.addr;
    if (client.getpeername(a) !== 0 || a.address === undefined) {
      client.close();
      return;
    }
    const handle = this.ctx.table.open(this.key, { address: a.address, port: a.port ?? 0 });
    if (!handle) {
      // no destination: close cleanly, as IPVS would refuse the SYN
      this.noDest++;
      client.close();
      return;
    }
    const dest = this.destStats(handle.dest);
    const c = new TcpConn(this, client, handle, dest, h);
    dest.conns++;
    const upstream = c.upstream;
    client[kConn] = c;
    upstream[kConn] = c;
    client.onread = onRead;
    upstream.onread = onRead;
    client.useUserBuffer(SHARED_READ_BUFFER);
    upstream.useUserBuffer(SHARED_READ_BUFFER);
    this.conns.add(c);
    dest.open.add(c);
    c.setState('SYN_RECV');
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    const req = h.newConnectReq();
    req.oncomplete = onConnect;
    req.address = handle.dest.address;
    req.port = handle.dest.port;
    req[kConn] = c;
    const family6 = handle.dest.address.includes(':');
    const err = family6
      ? upstream.connect6(req, handle.dest.address, handle.dest.port)
      : upstream.connect(req, handle.dest.address, handle.dest.port);
    if (err !== 0) c.connectFailed();
  }

  /** The PROXY protocol header for this client, when the service sends one. */
  proxyHeader(client: TcpHandle): Buffer | null {
    if (!this.header) return null;
    const peer: SockAddr = {};
    const local: SockAddr = {};
    client.getpeername(peer);
    client.getsockname(local);
    const args = [peer.address ?? '', peer.port ?? 0, local.address ?? '', local.port ?? 0] as const;
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
    this.server?.close();
    this.server = null;
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
