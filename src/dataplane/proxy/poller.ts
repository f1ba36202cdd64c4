/**
 * One epoll set per process for the TCP data plane, driven from Node's event loop.
 *
 * Each turn of Node's loop runs `drive` once (as an immediate): one epoll_wait, then each ready
 * fd's owner. That wait blocks (at most WAIT_MS) so that an idle proxy sleeps in the kernel like
 * HAProxy does; Node's own work still runs promptly because libuv's epoll fd is itself in the set
 * (found once through /proc/self/fdinfo), so any libuv event (IPC, UDP, timers' neighbours) ends the
 * wait and the turn goes back to libuv. Only Node timers can be late, by at most WAIT_MS.
 * With nothing registered, no immediate is scheduled and the process idles in libuv alone.
 *
 * fds closed while a batch is dispatched are closed after it, so a later event of the same batch
 * never reaches a new socket that reused the number.
 *
 * Two I/O backends (KEEPVS_PROXY_IO=epoll|uring, else chosen at start): `epoll` runs each ready
 * fd's owner at once (its recv() and send() are system calls of their own); `uring` keeps the same
 * readiness loop but lets an owner hand in the plain read-and-forward of a ready fd instead: the
 * reads of the whole batch then go in one io_uring_enter, the sends they lead to in one more
 * (uring.ts). Everything else (accept, connect, back-pressure drains, FINs, closes) runs as on epoll.
 */

import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import net from 'node:net';
import koffi from 'koffi';
import {
  EPOLL_CLOEXEC,
  EPOLL_CTL_ADD,
  EPOLL_CTL_DEL,
  EPOLL_CTL_MOD,
  EPOLL_EVENT_BYTES,
  EPOLLIN,
  type Libc,
  NONBLOCK_CLOEXEC,
  setLingerZero,
} from '../../os/libc.js';
import { IoBatch, MSG_DONTWAIT, OP_RECV, OP_SEND } from './uring.js';

export interface FdOwner {
  onEvent(fd: number, events: number): void;
  /**
   * uring: would onEvent(fd, events) be one read of fd and a send of what came, nothing else?
   * Asked when the event is seen and again before the batched read is submitted.
   */
  batchRead?(fd: number, events: number): boolean;
  /** uring: the batched read of `fd` returned `res` (bytes at buf[off..], 0 at EOF, or -errno); `cap` was its length */
  readDone?(fd: number, events: number, res: number, buf: Buffer, off: number, cap: number): void;
  /** uring: the batched send of buf[off..off+n) to `to` (read from `source`) returned `res` (bytes or -errno) */
  sendDone?(to: number, source: number, buf: Buffer, off: number, n: number, flags: number, res: number): void;
}

export type ProxyIo = 'epoll' | 'uring';

/** one batched read's length: a request's or a reply's worth (a bulk direction reads on its own buffer, on epoll) */
export const URING_READ_BYTES = 64 * 1024;

/** the longest a Node timer waits for the data plane's epoll_wait */
const WAIT_MS = 10;
const MAX_EVENTS = 256;
const BATCHES_PER_TURN = 8;
/** libuv registers a new fd on its next loop turn: look for it on this many turns */
const DISCOVERY_TURNS = 50;

export class Poller {
  private readonly ep: number;
  private readonly owners: (FdOwner | undefined)[] = [];
  /** the events each fd is registered for (0: not in the epoll set) */
  private readonly masks: number[] = [];
  private readonly events = Buffer.alloc(EPOLL_EVENT_BYTES * MAX_EVENTS);
  private readonly ctlEvent = Buffer.alloc(EPOLL_EVENT_BYTES);
  private registered = 0;
  private scheduled = false;
  private dispatching = false;
  private readonly closeAfterBatch: number[] = [];
  /** 0 until libuv's epoll fd is in the set (a blocking wait would hold libuv's events back) */
  private waitMs = 0;
  private libuvFd = -1;
  /** uring: the ring, the reads and sends of the batch being dispatched, and their buffers */
  private io: IoBatch | null;
  private readonly slots: Buffer | null = null;
  private slotsAddr = 0;
  private readonly readOwner: (FdOwner | undefined)[] = [];
  private readonly readFd = new Int32Array(MAX_EVENTS);
  private readonly readEvents = new Uint32Array(MAX_EVENTS);
  private readonly readOp = new Int32Array(MAX_EVENTS);
  private reads = 0;
  private readonly sendOwner: (FdOwner | undefined)[] = [];
  private readonly sendTo = new Int32Array(MAX_EVENTS);
  private readonly sendSource = new Int32Array(MAX_EVENTS);
  private readonly sendOff = new Int32Array(MAX_EVENTS);
  private readonly sendLen = new Int32Array(MAX_EVENTS);
  private readonly sendFlags = new Int32Array(MAX_EVENTS);
  private readonly sendOp = new Int32Array(MAX_EVENTS);
  private sends = 0;

  /** `io` null: the epoll backend; else the ring the uring backend batches its reads and sends in */
  constructor(
    private readonly libc: Libc,
    private readonly onError: (e: unknown) => void,
    io: IoBatch | null = null,
  ) {
    this.ep = libc.epoll_create1(EPOLL_CLOEXEC);
    if (this.ep < 0) throw new Error('epoll_create1 failed');
    this.io = io;
    if (io) {
      // native memory: the kernel reads into and sends from it by address (touched only as used)
      const p = koffi.alloc('uint8_t', MAX_EVENTS * URING_READ_BYTES);
      this.slotsAddr = Number(koffi.address(p));
      this.slots = Buffer.from(koffi.view(p, MAX_EVENTS * URING_READ_BYTES) as ArrayBuffer);
    }
    this.findLibuvFd();
  }

  /** the I/O backend: `uring` batches reads and sends through io_uring, `epoll` makes one system call each */
  get backend(): ProxyIo {
    return this.io ? 'uring' : 'epoll';
  }

  /** why this backend (for the log line and the status) */
  reason = '';

  /** io_uring_enter calls so far (0 on epoll) */
  get enters(): number {
    return this.io?.enters ?? 0;
  }

  /** Registers `fd` for `mask` (0: out of the set, still owned) and routes its events to `owner`. */
  watch(fd: number, mask: number, owner: FdOwner): void {
    this.owners[fd] = owner;
    const old = this.masks[fd] ?? 0;
    if (old === mask) return;
    const ev = this.ctlEvent;
    ev.writeUInt32LE(mask >>> 0, 0);
    ev.writeInt32LE(fd, 4);
    if (old === 0) {
      this.libc.epoll_ctl(this.ep, EPOLL_CTL_ADD, fd, ev);
      this.registered++;
      this.schedule();
    } else if (mask === 0) {
      this.libc.epoll_ctl(this.ep, EPOLL_CTL_DEL, fd, ev);
      this.registered--;
    } else this.libc.epoll_ctl(this.ep, EPOLL_CTL_MOD, fd, ev);
    this.masks[fd] = mask;
  }

  /** how many fds are in the set (0: the poller is not driving) */
  get watching(): number {
    return this.registered;
  }

  /** libuv's epoll fd was found and is in the set (the wait may block) */
  get nested(): boolean {
    return this.libuvFd >= 0;
  }

  mask(fd: number): number {
    return this.masks[fd] ?? 0;
  }

  /** Forgets and closes `fd`; `reset` sends an RST instead of a FIN. */
  close(fd: number, reset = false): void {
    if (fd < 0) return;
    // closing the fd takes it out of the epoll set: no EPOLL_CTL_DEL needed
    if (this.masks[fd]) {
      this.masks[fd] = 0;
      this.registered--;
    }
    this.owners[fd] = undefined;
    if (reset) setLingerZero(this.libc, fd);
    if (this.dispatching) this.closeAfterBatch.push(fd);
    else this.libc.close(fd);
  }

  private schedule(): void {
    if (this.scheduled || this.registered === 0) return;
    this.scheduled = true;
    setImmediate(this.drive);
  }

  private readonly drive = (): void => {
    this.scheduled = false;
    // a busy proxy finds more events at once: a few batches per turn of Node's loop, unless
    // libuv has work too (its fd is in the batch) or there is nothing more
    for (let round = 0; round < BATCHES_PER_TURN && this.registered > 0; round++) {
      const n = this.libc.epoll_wait(this.ep, this.events, MAX_EVENTS, round === 0 ? this.waitMs : 0);
      if (n <= 0 || this.dispatch(n)) break;
    }
    this.schedule();
  };

  /** Runs the owners of n ready fds; true when libuv's fd was among them. */
  private dispatch(n: number): boolean {
    let libuvReady = false;
    const batching = this.io !== null;
    this.dispatching = true;
    for (let i = 0; i < n; i++) {
      const off = i * EPOLL_EVENT_BYTES;
      const fd = this.events.readInt32LE(off + 4);
      const owner = this.owners[fd];
      if (owner === undefined) {
        // libuv's fd, or one closed earlier in this batch
        if (fd === this.libuvFd) libuvReady = true;
        continue;
      }
      const events = this.events.readUInt32LE(off);
      try {
        if (batching && owner.batchRead?.(fd, events)) {
          const k = this.reads++;
          this.readOwner[k] = owner;
          this.readFd[k] = fd;
          this.readEvents[k] = events;
        } else owner.onEvent(fd, events);
      } catch (e) {
        this.onError(e);
      }
    }
    if (this.reads > 0) this.runBatch();
    this.dispatching = false;
    const closing = this.closeAfterBatch;
    if (closing.length > 0) {
      for (let i = 0; i < closing.length; i++) this.libc.close(closing[i] as number);
      closing.length = 0;
    }
    return libuvReady;
  }

  /**
   * uring: the batch's reads in one submit, then the sends they queued in another. An owner's
   * state may have changed since its event was seen (another fd's handler ran first): its read is
   * then left out, and level-triggered epoll reports the fd again. A send whose fd has changed
   * hands since it was queued (its connection closed) is left out too.
   */
  private runBatch(): void {
    const io = this.io as IoBatch;
    const slots = this.slots as Buffer;
    // (a ring that fails during the reads fails the sends too: their bytes then wait for EPOLLOUT)
    const nReads = this.reads;
    this.reads = 0;
    for (let k = 0; k < nReads; k++) {
      const owner = this.readOwner[k] as FdOwner;
      const fd = this.readFd[k] as number;
      let op = -1;
      try {
        if (this.owners[fd] === owner && owner.batchRead?.(fd, this.readEvents[k] as number))
          op = io.add(OP_RECV, fd, this.slotsAddr + k * URING_READ_BYTES, URING_READ_BYTES, MSG_DONTWAIT);
      } catch (e) {
        this.onError(e);
      }
      this.readOp[k] = op;
    }
    this.runIo(io);
    for (let k = 0; k < nReads; k++) {
      const owner = this.readOwner[k] as FdOwner;
      this.readOwner[k] = undefined;
      const op = this.readOp[k] as number;
      if (op < 0) continue;
      try {
        owner.readDone?.(
          this.readFd[k] as number,
          this.readEvents[k] as number,
          io.results[op] as number,
          slots,
          k * URING_READ_BYTES,
          URING_READ_BYTES,
        );
      } catch (e) {
        this.onError(e);
      }
    }
    const nSends = this.sends;
    this.sends = 0;
    if (nSends === 0) return;
    for (let j = 0; j < nSends; j++) {
      const to = this.sendTo[j] as number;
      this.sendOp[j] =
        this.owners[to] === this.sendOwner[j]
          ? io.add(
              OP_SEND,
              to,
              this.slotsAddr + (this.sendOff[j] as number),
              this.sendLen[j] as number,
              (this.sendFlags[j] as number) | MSG_DONTWAIT,
            )
          : -1;
    }
    this.runIo(io);
    for (let j = 0; j < nSends; j++) {
      const owner = this.sendOwner[j] as FdOwner;
      this.sendOwner[j] = undefined;
      const op = this.sendOp[j] as number;
      if (op < 0) continue;
      try {
        owner.sendDone?.(
          this.sendTo[j] as number,
          this.sendSource[j] as number,
          slots,
          this.sendOff[j] as number,
          this.sendLen[j] as number,
          this.sendFlags[j] as number,
          io.results[op] as number,
        );
      } catch (e) {
        this.onError(e);
      }
    }
  }

  /**
   * A failed submit (the ring itself broken) leaves what did not complete at -EAGAIN: a read's fd
   * is reported by epoll again, a send's bytes wait aside for EPOLLOUT. The process then goes on
   * on epoll, said once.
   */
  private runIo(io: IoBatch): void {
    try {
      io.run();
    } catch (e) {
      if (this.io)
        this.onError(new Error(`io_uring batch failed (${(e as Error).message}): this process goes on on epoll`));
      this.io = null;
    }
  }

  /**
   * uring, from readDone: sends buf[off..off+n) (the batch's read buffer) to `to` in the batch's
   * send submit; `flags` as send(2)'s (MSG_DONTWAIT is added).
   */
  queueSend(owner: FdOwner, to: number, source: number, off: number, n: number, flags: number): void {
    const j = this.sends++;
    this.sendOwner[j] = owner;
    this.sendTo[j] = to;
    this.sendSource[j] = source;
    this.sendOff[j] = off;
    this.sendLen[j] = n;
    this.sendFlags[j] = flags;
  }

  /**
   * libuv's epoll fd is the eventpoll fd whose watch list holds a pipe Node has just started
   * reading. Without /proc (or if it is never seen) the wait stays short instead: 1 ms.
   */
  private findLibuvFd(): void {
    const fds = new Int32Array(2);
    if (this.libc.pipe2(fds, NONBLOCK_CLOEXEC) !== 0) {
      this.waitMs = 1;
      return;
    }
    const [readEnd, writeEnd] = fds as unknown as [number, number];
    const probe = new net.Socket({ fd: readEnd, readable: true, writable: false });
    probe.on('error', () => {});
    probe.unref();
    let turns = 0;
    const look = (): void => {
      const found = epollHolding(readEnd, this.ep);
      if (found < 0 && ++turns < DISCOVERY_TURNS) {
        setImmediate(look).unref();
        return;
      }
      probe.destroy();
      this.libc.close(writeEnd);
      if (found < 0) {
        this.waitMs = 1;
        return;
      }
      const ev = this.ctlEvent;
      ev.writeUInt32LE(EPOLLIN, 0);
      ev.writeInt32LE(found, 4);
      this.libc.epoll_ctl(this.ep, EPOLL_CTL_ADD, found, ev);
      this.libuvFd = found;
      this.waitMs = WAIT_MS;
    };
    setImmediate(look).unref();
  }
}

/** The eventpoll fd of this process (other than `except`) that watches `target`, or -1. */
function epollHolding(target: number, except: number): number {
  let names: string[];
  try {
    names = readdirSync('/proc/self/fd');
  } catch {
    return -1;
  }
  for (const name of names) {
    const fd = Number(name);
    if (fd === except) continue;
    try {
      if (!readlinkSync(`/proc/self/fd/${name}`).includes('eventpoll')) continue;
      const info = readFileSync(`/proc/self/fdinfo/${name}`, 'utf8');
      if (new RegExp(`^tfd:\\s+${target}\\s`, 'm').test(info)) return fd;
    } catch {}
  }
  return -1;
}

let shared: Poller | null = null;

/** The backend KEEPVS_PROXY_IO asks for, or an error for a value it does not know. */
export function requestedProxyIo(env = process.env.KEEPVS_PROXY_IO): ProxyIo | 'auto' {
  const v = (env ?? '').trim();
  if (v === '' || v === 'auto') return 'auto';
  if (v === 'epoll' || v === 'uring') return v;
  throw new Error(`KEEPVS_PROXY_IO=${v}: expected epoll, uring or auto`);
}

/**
 * The proxy's I/O backend and why: KEEPVS_PROXY_IO=epoll|uring forces one (a forced uring that
 * cannot run is an error, never a silent epoll); unset or `auto` takes DEFAULT_PROXY_IO when it can
 * run, else epoll. Opens the ring when uring is chosen.
 */
export function chooseProxyIo(
  libc: Libc,
  env = process.env.KEEPVS_PROXY_IO,
  open: (libc: Libc, entries: number, maxOps: number) => IoBatch | string = IoBatch.open,
): { io: IoBatch | null; reason: string } {
  const want = requestedProxyIo(env);
  if (want === 'epoll') return { io: null, reason: 'epoll (KEEPVS_PROXY_IO=epoll)' };
  if (want === 'auto' && DEFAULT_PROXY_IO === 'epoll')
    return { io: null, reason: 'epoll (the default; KEEPVS_PROXY_IO=uring batches reads and sends through io_uring)' };
  const ring = open(libc, URING_ENTRIES, MAX_EVENTS);
  if (typeof ring !== 'string')
    return {
      io: ring,
      reason: `uring (${want === 'uring' ? 'KEEPVS_PROXY_IO=uring' : 'io_uring usable'}: reads and sends batched per epoll_wait)`,
    };
  if (want === 'uring') throw new Error(`KEEPVS_PROXY_IO=uring, but io_uring cannot run here: ${ring}`);
  return { io: null, reason: `epoll (io_uring not usable: ${ring})` };
}

/** what `auto` picks when io_uring can run */
export const DEFAULT_PROXY_IO: ProxyIo = 'uring';
/** submission slots: one epoll batch's reads fit in one submit */
const URING_ENTRIES = MAX_EVENTS;

/** The process's poller (created on first use, on the backend chooseProxyIo picks). */
export function processPoller(libc: Libc): Poller {
  if (!shared) {
    const { io, reason } = chooseProxyIo(libc);
    shared = new Poller(libc, (e) => process.emitWarning(`keepvs data plane: ${String(e)}`), io);
    shared.reason = reason;
  }
  return shared;
}
