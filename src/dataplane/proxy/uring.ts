/**
 * io_uring as a system-call batcher for the proxy's readiness loop (poller.ts): the reads of the
 * fds one epoll_wait found ready go to the kernel in one io_uring_enter, the sends they lead to in
 * one more, instead of one recv()/send() each. Every operation carries MSG_DONTWAIT, so the kernel
 * completes it during the submit (data, a count, -EAGAIN or another error; io_uring/net.c marks
 * such a request REQ_F_NOWAIT and never arms a poll for it): nothing stays in flight across
 * batches, no buffer is owned by the kernel after `run` returns, and epoll keeps deciding what is
 * ready. Raw system calls through koffi (no liburing, no native addon); the rings are mmap'd and
 * written from JS.
 */

import { readFileSync } from 'node:fs';
import koffi from 'koffi';
import { errno, errnoName, type Libc, loadUringCalls, type UringCalls } from '../../os/libc.js';

export const OP_SEND = 26;
export const OP_RECV = 27;
export const MSG_DONTWAIT = 0x40;

const SETUP_SUBMIT_ALL = 1 << 7;
const SETUP_SINGLE_ISSUER = 1 << 12;
const SETUP_DEFER_TASKRUN = 1 << 13;
const FEAT_SINGLE_MMAP = 1 << 0;
const ENTER_GETEVENTS = 1;
const REGISTER_PROBE = 8;
const PROBE_OPS = 64;
const OP_SUPPORTED = 1;
const OFF_SQ_RING = 0;
const OFF_SQES = 0x10000000;
const PROT_RW = 3;
const MAP_SHARED_POPULATE = 0x01 | 0x8000;
const SQE_BYTES = 64;
const CQE_BYTES = 16;
const EINTR = 4;
const EAGAIN = 11;
const EBUSY = 16;
const TWO32 = 0x100000000;
/** a ring that keeps refusing (EAGAIN, EBUSY) is broken: the batch fails rather than spin */
const MAX_ENTER_RETRIES = 1000;

/** A ring of `entries` submission slots with the calls it needs, or why there cannot be one. */
export class IoBatch {
  /** submission-queue entries: a batch with more operations is submitted in several rounds */
  readonly capacity: number;
  /** per operation: its result (bytes, or -errno), filled by run() */
  readonly results: Int32Array;
  private readonly op: Uint8Array;
  private readonly fd: Int32Array;
  private readonly addrLo: Uint32Array;
  private readonly addrHi: Uint32Array;
  private readonly len: Uint32Array;
  private readonly flags: Uint32Array;
  private count = 0;
  private readonly ring: Uint32Array;
  private readonly cqe: Int32Array;
  private readonly sqe: Uint32Array;
  private readonly sqHead: number;
  private readonly sqTail: number;
  private readonly sqMask: number;
  private readonly sqArray: number;
  private readonly cqHead: number;
  private readonly cqTail: number;
  private readonly cqMask: number;
  private readonly cqes: number;
  /** io_uring_enter calls made (for tests and profiling) */
  enters = 0;

  private constructor(
    private readonly sys: UringCalls,
    private readonly ringFd: number,
    params: Buffer,
    ringMem: ArrayBuffer,
    sqeMem: ArrayBuffer,
    maxOps: number,
  ) {
    this.capacity = params.readUInt32LE(0);
    const so = (i: number) => params.readUInt32LE(40 + i * 4) / 4;
    const co = (i: number) => params.readUInt32LE(80 + i * 4) / 4;
    this.ring = new Uint32Array(ringMem);
    this.cqe = new Int32Array(ringMem);
    this.sqe = new Uint32Array(sqeMem);
    this.sqHead = so(0);
    this.sqTail = so(1);
    this.sqMask = this.ring[so(2)] as number;
    this.sqArray = so(6);
    this.cqHead = co(0);
    this.cqTail = co(1);
    this.cqMask = this.ring[co(2)] as number;
    this.cqes = co(5);
    this.results = new Int32Array(maxOps);
    this.op = new Uint8Array(maxOps);
    this.fd = new Int32Array(maxOps);
    this.addrLo = new Uint32Array(maxOps);
    this.addrHi = new Uint32Array(maxOps);
    this.len = new Uint32Array(maxOps);
    this.flags = new Uint32Array(maxOps);
  }

  /**
   * A ring for batches of up to `maxOps` operations, `entries` submission slots (a power of two);
   * a string says why io_uring cannot serve (disabled, filtered, too old, no RECV/SEND, or a
   * MSG_DONTWAIT recv that did not complete during its submit).
   */
  static open(libc: Libc, entries: number, maxOps: number): IoBatch | string {
    const sys = loadUringCalls();
    if (!sys) return 'no io_uring system calls through libc on this platform';
    const params = Buffer.alloc(120);
    let fd = -1;
    let e = 0;
    // the newest flags first: single issuer + deferred task work (6.1) save work per enter
    for (const f of [SETUP_SUBMIT_ALL | SETUP_SINGLE_ISSUER | SETUP_DEFER_TASKRUN, SETUP_SUBMIT_ALL, 0]) {
      params.fill(0);
      params.writeUInt32LE(f, 8);
      fd = sys.setup(entries, params);
      if (fd >= 0) break;
      e = errno();
      if (e !== 22) break; // EINVAL: an older kernel without that flag; anything else is final
    }
    if (fd < 0) {
      const disabled = ioUringDisabled();
      return `io_uring_setup: ${errnoName(e)}${disabled ? ` (kernel.io_uring_disabled = ${disabled})` : ''}`;
    }
    const fail = (why: string): string => {
      libc.close(fd);
      return why;
    };
    if ((params.readUInt32LE(20) & FEAT_SINGLE_MMAP) === 0)
      return fail('io_uring without IORING_FEAT_SINGLE_MMAP (kernel < 5.4)');
    const probe = Buffer.alloc(16 + PROBE_OPS * 8);
    if (sys.register(fd, REGISTER_PROBE, probe, PROBE_OPS) < 0)
      return fail(`IORING_REGISTER_PROBE: ${errnoName(errno())}`);
    for (const op of [OP_SEND, OP_RECV]) {
      if (op > probe[0]! || (probe.readUInt16LE(16 + op * 8 + 2) & OP_SUPPORTED) === 0)
        return fail(`io_uring without ${op === OP_SEND ? 'IORING_OP_SEND' : 'IORING_OP_RECV'}`);
    }
    const sqEntries = params.readUInt32LE(0);
    const cqEntries = params.readUInt32LE(4);
    const ringLen = Math.max(
      params.readUInt32LE(40 + 24) + sqEntries * 4,
      params.readUInt32LE(80 + 20) + cqEntries * CQE_BYTES,
    );
    const ringPtr = sys.mmap(null, ringLen, PROT_RW, MAP_SHARED_POPULATE, fd, OFF_SQ_RING);
    const sqePtr = sys.mmap(null, sqEntries * SQE_BYTES, PROT_RW, MAP_SHARED_POPULATE, fd, OFF_SQES);
    if (!mapped(ringPtr) || !mapped(sqePtr)) return fail(`mmap of the io_uring rings: ${errnoName(errno())}`);
    const b = new IoBatch(
      sys,
      fd,
      params,
      koffi.view(ringPtr, ringLen) as ArrayBuffer,
      koffi.view(sqePtr, sqEntries * SQE_BYTES) as ArrayBuffer,
      maxOps,
    );
    b.unmap = () => {
      sys.munmap(ringPtr, ringLen);
      sys.munmap(sqePtr, sqEntries * SQE_BYTES);
    };
    const why = b.selfTest(libc);
    if (why) {
      b.close(libc);
      return why;
    }
    return b;
  }

  /** operations added since the last run */
  get size(): number {
    return this.count;
  }

  /** Adds one operation; its index is where run() puts its result. */
  add(op: number, fd: number, addr: number, len: number, flags: number): number {
    const i = this.count;
    if (i >= this.results.length) throw new Error(`io batch full (${i} operations)`);
    this.op[i] = op;
    this.fd[i] = fd;
    this.addrLo[i] = addr % TWO32;
    this.addrHi[i] = Math.floor(addr / TWO32);
    this.len[i] = len;
    this.flags[i] = flags;
    // until its completion is reaped: nothing done (a broken ring leaves it so)
    this.results[i] = -EAGAIN;
    this.count = i + 1;
    return i;
  }

  /** Submits what was added (in rounds of `capacity`), waits for every completion, fills `results`. */
  run(): void {
    const n = this.count;
    this.count = 0;
    for (let done = 0; done < n; ) {
      const k = Math.min(this.capacity, n - done);
      this.round(done, k, true);
      done += k;
    }
  }

  /** Submits operations first..first+k; `wait`: until all completed, else true when they did at once. */
  private round(first: number, k: number, wait: boolean): boolean {
    const ring = this.ring;
    const sqe = this.sqe;
    let tail = ring[this.sqTail] as number;
    for (let i = first; i < first + k; i++) {
      const idx = tail & this.sqMask;
      const o = idx * 16;
      sqe.fill(0, o, o + 16);
      sqe[o] = this.op[i] as number;
      sqe[o + 1] = this.fd[i] as number;
      sqe[o + 4] = this.addrLo[i] as number;
      sqe[o + 5] = this.addrHi[i] as number;
      sqe[o + 6] = this.len[i] as number;
      sqe[o + 7] = this.flags[i] as number;
      sqe[o + 8] = i; // user_data
      ring[this.sqArray + idx] = idx;
      tail = (tail + 1) >>> 0;
    }
    // the kernel reads the tail in io_uring_enter, after these plain stores (no SQPOLL thread)
    ring[this.sqTail] = tail;
    let reaped = 0;
    let failures = 0;
    for (;;) {
      const toSubmit = (tail - (ring[this.sqHead] as number)) >>> 0;
      this.enters++;
      const r = this.sys.enter(this.ringFd, toSubmit, wait ? k - reaped : 0, ENTER_GETEVENTS, null, 0);
      if (r < 0) {
        const e = errno();
        // EAGAIN/EBUSY: the kernel is short of memory or the completion queue is full (reaped below)
        if ((e !== EINTR && e !== EAGAIN && e !== EBUSY) || ++failures > MAX_ENTER_RETRIES)
          throw new Error(`io_uring_enter: ${errnoName(e)}`);
      }
      reaped += this.reap();
      if (reaped >= k && ring[this.sqHead] === tail) return true;
      if (!wait && ring[this.sqHead] === tail) return false;
    }
  }

  private reap(): number {
    const ring = this.ring;
    let head = ring[this.cqHead] as number;
    const end = ring[this.cqTail] as number;
    let n = 0;
    while (head !== end) {
      const o = this.cqes + (head & this.cqMask) * (CQE_BYTES / 4);
      // user_data's low word is the operation's index; res follows user_data
      this.results[ring[o] as number] = this.cqe[o + 2] as number;
      head = (head + 1) >>> 0;
      n++;
    }
    ring[this.cqHead] = head;
    return n;
  }

  /**
   * On a socket pair: a MSG_DONTWAIT recv with nothing there must come back -EAGAIN from its own
   * submit (a kernel that armed a poll for it instead would leave it in flight), and one with a
   * byte there must return it.
   */
  private selfTest(libc: Libc): string | null {
    const fds = new Int32Array(2);
    if (this.sys.socketpair(1, 1 | 0o4000 | 0o2000000, 0, fds) !== 0) return `socketpair: ${errnoName(errno())}`;
    const scratch = koffi.alloc('uint8_t', 16);
    const addr = Number(koffi.address(scratch));
    let inFlight = false;
    try {
      this.add(OP_RECV, fds[0] as number, addr, 16, MSG_DONTWAIT);
      this.count = 0;
      if (!this.round(0, 1, false)) {
        inFlight = true;
        return 'io_uring kept a MSG_DONTWAIT recv in flight (no REQ_F_NOWAIT): batching would block';
      }
      if (this.results[0] !== -EAGAIN) return `io_uring RECV on an empty socket returned ${this.results[0]}`;
      if (libc.send(fds[1] as number, Buffer.from([7]), 1, 0) !== 1) return `send: ${errnoName(errno())}`;
      this.add(OP_RECV, fds[0] as number, addr, 16, MSG_DONTWAIT);
      this.run();
      if (this.results[0] !== 1) return `io_uring RECV of one byte returned ${this.results[0]}`;
      return null;
    } catch (err) {
      return (err as Error).message;
    } finally {
      libc.close(fds[0] as number);
      libc.close(fds[1] as number);
      // a recv left in flight may still write there until the ring is closed
      if (!inFlight) koffi.free(scratch);
    }
  }

  private unmap = (): void => {};

  /** Closes and unmaps the ring (nothing may be added afterwards). */
  close(libc: Libc): void {
    libc.close(this.ringFd);
    this.unmap();
  }
}

function mapped(p: unknown): boolean {
  if (p === null) return false;
  const a = BigInt(koffi.address(p));
  return a !== 0n && a !== 0xffffffffffffffffn;
}

function ioUringDisabled(): string | null {
  try {
    const v = readFileSync('/proc/sys/kernel/io_uring_disabled', 'utf8').trim();
    return v === '0' ? null : v;
  } catch {
    return null;
  }
}
