/**
 * One proxied TCP connection: a client fd and an upstream fd in the process's epoll set, bytes
 * moved between them (per chunk one recv() into a buffer shared by the whole process and one
 * send() from it, no object, view or callback in between), FINs and resets passed on, and the
 * IPVS state kept in the table through its handle. An idle connection owns no buffer.
 * Back-pressure: bytes the destination does not take at once are copied aside (at most one
 * read's worth per direction) and the source is not read again until they are gone.
 */
import type { ConnHandle, ConnState } from '../../lb/types.js';
import {
  EAGAIN,
  EINPROGRESS,
  EINTR,
  EPOLLERR,
  EPOLLHUP,
  EPOLLIN,
  EPOLLOUT,
  EPOLLRDHUP,
  errno,
  IPPROTO_TCP,
  type Libc,
  loadLibc,
  MSG_MORE,
  MSG_NOSIGNAL,
  SHUT_WR,
  setIntOption,
  socketError,
  TCP_QUICKACK,
} from '../../os/libc.js';
import type { ProxyDest } from './dest.js';
import type { FdOwner } from './poller.js';

import type { TcpService } from './tcp-service.js';

/** lb's Handle reports `alive === false` once the table expired or dropped the entry */
export type MaybeAlive = { readonly alive?: boolean };

export const LIBC: Libc | null = loadLibc();

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
/**
 * What a client that spoke first has read at accept: a request's worth. Bytes the real server
 * cannot take yet (still connecting) are copied aside until it can, so this bounds the copy per
 * connecting client; the rest waits in the kernel as before.
 */
const FIRST_READ_BYTES = 16 * 1024;
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
const ERR_OR_HUP = EPOLLERR | EPOLLHUP;
/** a side is read on input and told apart when its FIN is already queued (data and FIN then leave in one segment) */
const READ = EPOLLIN | EPOLLRDHUP;

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
  /**
   * its real server was removed (expire_nodest_conn off): the client is not read, so nothing it
   * sends reaches the real server and its idle timer runs (IPVS drops such a connection's packets
   * and does not restart its timer); the real server's bytes still reach the client (ip_vs_out has
   * no such test)
   */
  held = false;
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
    readonly dest: ProxyDest,
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
    this.state = s;
    this.handle.setState(s);
  }

  /** Connection expired (idle, nodest, drain): both sides go away now. */
  expire(): void {
    this.close(-1);
  }

  /** The real server removed (on) or back in its service (off). */
  hold(on: boolean): void {
    if (this.held === on) return;
    this.held = on;
    if (!this.connected || this.closed || this.clientEnded) return;
    const p = this.svc.poller;
    if (on) p.watch(this.client, p.mask(this.client) & ~READ, this);
    // bytes still waiting for the real server: back-pressure reads the client again once they are gone
    else if (this.toUpstream === null) {
      p.watch(this.client, p.mask(this.client) | READ, this);
      // what it sent meanwhile is waiting in the socket: read now
      this.readFrom(this.client, this.upstream, true, 0);
    }
  }

  /** The client may be read (not held for a removed real server). */
  private get clientReadable(): number {
    return this.held ? 0 : READ;
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
    // IPVS keeps the entry after the close: TIME_WAIT (2 min) after both FINs, CLOSE (10 s) after
    // a reset or a failed connect; it counts as InActConn until then, which lc/wlc see
    this.handle.release(this.clientEnded && this.serverEnded ? 'TIME_WAIT' : 'CLOSE');
    this.state = null;
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
      if (this.svc.poller.mask(fd) & EPOLLIN) this.readFrom(fd, other, fromClient, events);
      else if (events & ERR_OR_HUP) this.hangup(fd, other);
    }
  }

  /**
   * Starts the connect to the real server. A client that spoke first (its bytes are usually there
   * by the time it is accepted) has them read now and sent as soon as the connect is through: on
   * loopback or a fast LAN at once, without waiting for the connect's writable event, and the
   * handshake's last ACK rides on them (TCP_QUICKACK 0 before connect, as HAProxy's
   * tcp-smart-connect). A client that waits for the server (SMTP, MySQL) costs one recv() more and
   * gets the plain connect: its real server's handshake is not held back by a delayed ACK.
   */
  connect(sa: Buffer): void {
    const libc = this.svc.libc;
    let n = -1;
    if (!this.svc.sendsHeader) {
      n = libc.recv(this.client, READ_BUFFER, FIRST_READ_BYTES, 0);
      if (n < 0) {
        const e = errno();
        if (e !== EAGAIN && e !== EINTR) {
          // reset before anything was asked of the real server: nothing to connect for
          this.close(-1);
          return;
        }
      }
    }
    if (n > 0) setIntOption(libc, this.upstream, IPPROTO_TCP, TCP_QUICKACK, false);
    if (libc.connect(this.upstream, sa, sa.length) !== 0 && errno() !== EINPROGRESS) {
      this.connectFailed();
      return;
    }
    const p = this.svc.poller;
    if (n <= 0) {
      // nothing yet (or the client's FIN, read again once connected): wait for the connect
      p.watch(this.upstream, EPOLLOUT, this);
      return;
    }
    this.inPkts++;
    this.inBytes += n;
    const w = libc.send(this.upstream, READ_BUFFER, n, MSG_NOSIGNAL);
    if (w < 0) {
      const e = errno();
      if (e !== EAGAIN && e !== EINTR) {
        // refused or reset at once
        this.connectFailed();
        return;
      }
      // still connecting: the bytes wait, connectDone sends them
      this.toUpstream = Buffer.from(READ_BUFFER.subarray(0, n));
      p.watch(this.upstream, EPOLLOUT, this);
      return;
    }
    // through already: both sides are read from now on
    this.established();
    if (w < n) {
      this.toUpstream = Buffer.from(READ_BUFFER.subarray(w, n));
      p.watch(this.upstream, READ | EPOLLOUT, this);
      p.watch(this.client, 0, this);
      return;
    }
    p.watch(this.upstream, READ, this);
    p.watch(this.client, this.clientReadable, this);
  }

  private established(): void {
    this.connected = true;
    this.last = this.svc.ctx.now;
    this.setState('ESTABLISHED');
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
    this.established();
    const header = this.svc.proxyHeader(this.client);
    if (header) this.send(this.upstream, this.client, header, header.length);
    if (this.closed) return;
    // the client is read only now: its bytes wait in the kernel until the real server can take them
    const p = this.svc.poller;
    p.watch(this.upstream, READ | (this.toUpstream ? EPOLLOUT : 0), this);
    p.watch(this.client, this.toUpstream ? 0 : this.clientReadable, this);
  }

  /**
   * One recv() from `fd`, its bytes sent on to `to`. When epoll saw the FIN queued behind them
   * (EPOLLRDHUP) and the read took everything, the bytes are sent with MSG_MORE and the FIN is read
   * at once: forwarded, it leaves in the same segment as the bytes (one segment, and one ACK from
   * the peer, fewer per short connection), as the real server or client sent them.
   */
  private readFrom(fd: number, to: number, fromClient: boolean, events: number): void {
    const libc = this.svc.libc;
    const own = fromClient ? this.fromClientBuffer : this.fromUpstreamBuffer;
    const buf = own ?? READ_BUFFER;
    const n = libc.recv(fd, buf, READ_BUFFER_BYTES, 0);
    if (n <= 0) {
      this.readNothing(fromClient, to, n === 0 ? 0 : errno());
      return;
    }
    const finQueued = this.readSome(fromClient, n, events, READ_BUFFER_BYTES);
    this.send(to, fd, buf, n, finQueued ? MSG_MORE : 0);
    this.afterSend(fd, to, fromClient, own !== null, n, finQueued);
  }

  /** Counts n bytes read; true when the FIN is queued behind them (the read took all, below `cap`). */
  private readSome(fromClient: boolean, n: number, events: number, cap: number): boolean {
    this.last = this.svc.ctx.now;
    if (fromClient) {
      this.inPkts++;
      this.inBytes += n;
    } else {
      this.outPkts++;
      this.outBytes += n;
    }
    return (events & EPOLLRDHUP) !== 0 && n < cap;
  }

  /** A read found EOF (`e` 0) or failed with errno `e`. */
  private readNothing(fromClient: boolean, to: number, e: number): void {
    if (e === 0) {
      this.ended(fromClient);
      return;
    }
    if (e === EAGAIN || e === EINTR) return;
    // ECONNRESET and friends: the other side gets a reset too
    this.close(to);
  }

  /** What follows a read's send: the FIN read at once when it was queued, else a bulk direction gets a buffer of its own. */
  private afterSend(fd: number, to: number, fromClient: boolean, own: boolean, n: number, finQueued: boolean): void {
    if (finQueued) {
      // the FIN (or, past an urgent mark, more bytes) is there now; back-pressure waits for `to`
      if (!this.closed && this.pending(to) === null) this.readFrom(fd, to, fromClient, 0);
      return;
    }
    if (!own && n >= BULK_READ_BYTES && !this.closed) {
      if (fromClient) this.fromClientBuffer = takeOwnBuffer();
      else this.fromUpstreamBuffer = takeOwnBuffer();
    }
  }

  /**
   * uring (poller.ts): onEvent would be a plain readFrom of `fd` into the shared buffer. Not when a
   * drain is due (EPOLLOUT), the connect is still under way, the side is paused or ended, or that
   * direction reads into a bulk buffer of its own: those run on epoll's path.
   */
  batchRead(fd: number, events: number): boolean {
    if (!this.connected || this.closed || events & EPOLLOUT) return false;
    if ((events & (EPOLLIN | ERR_OR_HUP)) === 0 || (this.svc.poller.mask(fd) & EPOLLIN) === 0) return false;
    return fd === this.client ? this.fromClientBuffer === null : this.fromUpstreamBuffer === null;
  }

  /** uring: readFrom's read came back from the batch; its send goes into the batch's send submit. */
  readDone(fd: number, events: number, res: number, _buf: Buffer, off: number, cap: number): void {
    if (this.closed) return;
    const fromClient = fd === this.client;
    const to = fromClient ? this.upstream : this.client;
    if (res <= 0) {
      this.readNothing(fromClient, to, -res);
      return;
    }
    const finQueued = this.readSome(fromClient, res, events, cap);
    this.svc.poller.queueSend(this, to, fd, off, res, MSG_NOSIGNAL | (finQueued ? MSG_MORE : 0));
  }

  /** uring: the batched send of a read came back: as send() and the rest of readFrom on epoll. */
  sendDone(to: number, source: number, buf: Buffer, off: number, n: number, flags: number, res: number): void {
    if (this.closed) return;
    if (res < 0 && -res !== EAGAIN && -res !== EINTR) {
      // the destination is gone: the source learns by a reset
      this.close(source);
      return;
    }
    const w = Math.max(res, 0);
    if (w < n) {
      // the batch's buffer is read into again next batch: what `to` did not take is copied aside
      const rest = Buffer.allocUnsafeSlow(n - w);
      buf.copy(rest, 0, off + w, off + n);
      this.pause(to, source, rest);
    }
    this.afterSend(source, to, source === this.client, false, n, (flags & MSG_MORE) !== 0);
  }

  /** Writes data[0..n) to `to`; what it does not take now is kept and `source` waits for it. */
  private send(to: number, source: number, data: Buffer, n: number, flags = 0): void {
    const w = this.sendNow(to, source, data, n, flags);
    if (w === n || w < 0) return;
    // an own buffer is not read into again until the rest is gone; the shared one is, so copy
    let rest: Buffer;
    if (data === READ_BUFFER) {
      rest = Buffer.allocUnsafeSlow(n - w);
      data.copy(rest, 0, w, n);
    } else rest = data.subarray(w, n);
    this.pause(to, source, rest);
  }

  /** `rest` waits for `to`, which is watched for room; `source` is not read until it is gone. */
  private pause(to: number, source: number, rest: Buffer): void {
    this.setPending(to, rest);
    const p = this.svc.poller;
    p.watch(source, p.mask(source) & ~READ, this);
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
    if (this.held && source === this.client) {
      // held for a removed real server: the client stays unread
      p.watch(to, p.mask(to) & ~EPOLLOUT, this);
      return;
    }
    // a paused source most likely has more: read it now, not after another wait; if `to` cannot
    // take all of it again, both stay as they are (no epoll change in a steady bulk transfer)
    this.readFrom(source, to, source === this.client, 0);
    if (this.closed || this.pending(to) !== null) return;
    p.watch(to, p.mask(to) & ~EPOLLOUT, this);
    if (!this.hasEnded(source) && !(this.held && source === this.client)) p.watch(source, p.mask(source) | READ, this);
  }

  /** send() what `to` takes now: the byte count, or -1 when `to` failed (the connection is then closed, `source` reset). */
  private sendNow(to: number, source: number, data: Buffer, n: number, flags = 0): number {
    const w = this.svc.libc.send(to, data, n, MSG_NOSIGNAL | flags);
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
    p.watch(source, p.mask(source) & ~READ, this);
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
