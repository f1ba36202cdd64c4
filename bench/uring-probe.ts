/**
 * Prototype (not the product): a one-process keep-alive TCP proxy driven by io_uring through koffi
 * (io_uring_setup/enter as raw syscalls, the rings mmap'd and read and written from JS through
 * koffi.view), to weigh CPU per request against the epoll loop of src/dataplane/proxy before
 * building it in. Multishot accept, one RECV per side in flight, SEND of what came, all submitted
 * and reaped with one io_uring_enter per loop turn. The upstream connect is a blocking connect().
 * `epoll` as third argument runs the same minimal proxy on epoll + recv/send instead (the
 * comparison without the product's bookkeeping on either side).
 * Usage: node dist/bench/uring-probe.js <listen-port> <real-port> [uring|epoll]; prints {"pid":N}.
 */
import koffi from 'koffi';
import {
  EPOLL_CTL_ADD,
  EPOLLIN,
  loadLibc,
  NONBLOCK_CLOEXEC,
  SO_REUSEADDR,
  SOL_SOCKET,
  setIntOption,
} from '../src/os/libc.js';

const libc = loadLibc();
if (!libc) throw new Error('no libc');
const lib = koffi.load('libc.so.6');
const sys3 = lib.func('long syscall(long, long, void *)') as (nr: number, a: number, p: Buffer) => number;
const sysEnter = lib.func('long syscall(long, int, uint32_t, uint32_t, uint32_t, void *, size_t)') as (
  nr: number,
  fd: number,
  toSubmit: number,
  minComplete: number,
  flags: number,
  sig: null,
  sz: number,
) => number;
const mmap = lib.func('void *mmap(void *, size_t, int, int, int, long)') as (
  a: null,
  len: number,
  prot: number,
  flags: number,
  fd: number,
  off: number,
) => unknown;

const SYS_io_uring_setup = 425;
const SYS_io_uring_enter = 426;
const IORING_SETUP_SINGLE_ISSUER = 1 << 12;
const IORING_SETUP_DEFER_TASKRUN = 1 << 13;
const IORING_ENTER_GETEVENTS = 1;
const OP_ACCEPT = 13;
const OP_SEND = 26;
const OP_RECV = 27;
const IORING_ACCEPT_MULTISHOT = 1;
const MSG_NOSIGNAL = 0x4000;
const ENTRIES = 1024;
const BUF = 16 * 1024;
const MAX_CONNS = 512;

const params = Buffer.alloc(120);
params.writeUInt32LE(IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN, 8);
const ring = sys3(SYS_io_uring_setup, ENTRIES, params);
if (ring < 0) throw new Error(`io_uring_setup failed: errno ${koffi.errno()}`);
const sqEntries = params.readUInt32LE(0);
const cqEntries = params.readUInt32LE(4);
const so = (i: number) => params.readUInt32LE(40 + i * 4);
const co = (i: number) => params.readUInt32LE(80 + i * 4);
const sqSize = so(6) + sqEntries * 4;
const cqSize = co(5) + cqEntries * 16;
const ringLen = Math.max(sqSize, cqSize);
const PROT_RW = 3;
const MAP_SHARED_POPULATE = 0x01 | 0x8000;
const ringPtr = mmap(null, ringLen, PROT_RW, MAP_SHARED_POPULATE, ring, 0);
const sqePtr = mmap(null, sqEntries * 64, PROT_RW, MAP_SHARED_POPULATE, ring, 0x10000000);
const ringMem = koffi.view(ringPtr, ringLen) as ArrayBuffer;
const sqeMem = koffi.view(sqePtr, sqEntries * 64) as ArrayBuffer;
const u32 = new Uint32Array(ringMem);
const sqes = new DataView(sqeMem);
const sqeU32 = new Uint32Array(sqeMem);
const sqTail = so(1) / 4;
const sqMask = u32[so(2) / 4]!;
const sqArray = so(6) / 4;
const cqHead = co(0) / 4;
const cqTail = co(1) / 4;
const cqMask = u32[co(2) / 4]!;
const cqes = co(5);
const cqeView = new DataView(ringMem);
// connection buffers: native, so the kernel may read and write them while JS goes on
const bufLen = MAX_CONNS * 2 * BUF;
const bufPtr = mmap(null, bufLen, PROT_RW, 0x02 | 0x20, -1, 0); // MAP_PRIVATE | MAP_ANONYMOUS
const bufBase = Number(koffi.address(bufPtr));

let tail = u32[sqTail]!;
let pending = 0;
function sqe(op: number, fd: number, addr: number, len: number, opFlags: number, user: number, ioprio = 0): void {
  const idx = tail & sqMask;
  const o = idx * 64;
  sqeU32.fill(0, o / 4, o / 4 + 16);
  sqes.setUint8(o, op);
  sqes.setUint16(o + 2, ioprio, true);
  sqes.setInt32(o + 4, fd, true);
  sqes.setFloat64(o + 16, 0); // cleared, then the address's two halves
  sqes.setUint32(o + 16, addr % 0x100000000, true);
  sqes.setUint32(o + 20, Math.floor(addr / 0x100000000), true);
  sqes.setUint32(o + 24, len, true);
  sqes.setUint32(o + 28, opFlags, true);
  sqes.setUint32(o + 32, user, true);
  u32[sqArray + idx] = idx;
  tail = (tail + 1) >>> 0;
  pending++;
}

// user_data: conn * 8 + kind
const K_ACCEPT = 0;
const K_RECV_C = 1;
const K_RECV_S = 2;
const K_SEND_S = 3;
const K_SEND_C = 4;
const clientFd = new Int32Array(MAX_CONNS).fill(-1);
const serverFd = new Int32Array(MAX_CONNS).fill(-1);
const free: number[] = Array.from({ length: MAX_CONNS }, (_, i) => MAX_CONNS - 1 - i);
const c2s = (c: number) => bufBase + c * 2 * BUF;
const s2c = (c: number) => bufBase + (c * 2 + 1) * BUF;
const sentSoFar = new Int32Array(MAX_CONNS * 2);
const toSend = new Int32Array(MAX_CONNS * 2);

const [listenPort, realPort] = process.argv.slice(2, 4).map(Number) as [number, number];
const MODE = process.argv[4] ?? 'uring';
const sa = (port: number) => {
  const b = Buffer.alloc(16);
  b.writeUInt16LE(2, 0);
  b.writeUInt16BE(port, 2);
  b.set([127, 0, 0, 1], 4);
  return b;
};
const lfd = libc.socket(2, 1 | 0o2000000, 0);
setIntOption(libc, lfd, SOL_SOCKET, SO_REUSEADDR, true);
if (libc.bind(lfd, sa(listenPort), 16) !== 0 || libc.listen(lfd, 4096) !== 0) throw new Error('listen failed');
const upstreamAddr = sa(realPort);
const ONE = Buffer.from([1, 0, 0, 0]);
if (MODE === 'epoll') epollLoop();
sqe(OP_ACCEPT, lfd, 0, 0, NONBLOCK_CLOEXEC & ~0o4000, K_ACCEPT, IORING_ACCEPT_MULTISHOT);
process.stdout.write(`${JSON.stringify({ pid: process.pid })}\n`);

function closeConn(c: number): void {
  if (clientFd[c]! < 0) return;
  libc!.close(clientFd[c]!);
  libc!.close(serverFd[c]!);
  clientFd[c] = serverFd[c] = -1;
}

function onCqe(user: number, res: number): void {
  const c = user >>> 3;
  const kind = user & 7;
  if (kind === K_ACCEPT) {
    if (res < 0) return;
    const s = libc!.socket(2, 1 | 0o2000000, 0);
    if (libc!.connect(s, upstreamAddr, 16) !== 0 || free.length === 0) {
      libc!.close(res);
      libc!.close(s);
      return;
    }
    libc!.setsockopt(s, 6, 1, ONE, 4); // TCP_NODELAY as the product
    const n = free.pop()!;
    clientFd[n] = res;
    serverFd[n] = s;
    sqe(OP_RECV, res, c2s(n), BUF, 0, n * 8 + K_RECV_C);
    sqe(OP_RECV, s, s2c(n), BUF, 0, n * 8 + K_RECV_S);
    return;
  }
  if (clientFd[c]! < 0) {
    // the other side's completions after a close
    return;
  }
  if (kind === K_RECV_C || kind === K_RECV_S) {
    if (res <= 0) {
      closeConn(c);
      free.push(c);
      return;
    }
    const dir = kind === K_RECV_C ? 0 : 1;
    toSend[c * 2 + dir] = res;
    sentSoFar[c * 2 + dir] = 0;
    if (dir === 0) sqe(OP_SEND, serverFd[c]!, c2s(c), res, MSG_NOSIGNAL, c * 8 + K_SEND_S);
    else sqe(OP_SEND, clientFd[c]!, s2c(c), res, MSG_NOSIGNAL, c * 8 + K_SEND_C);
    return;
  }
  const dir = kind === K_SEND_S ? 0 : 1;
  if (res < 0) {
    closeConn(c);
    free.push(c);
    return;
  }
  const done = (sentSoFar[c * 2 + dir]! += res);
  const left = toSend[c * 2 + dir]! - done;
  const base = dir === 0 ? c2s(c) : s2c(c);
  if (left > 0) {
    sqe(OP_SEND, dir === 0 ? serverFd[c]! : clientFd[c]!, base + done, left, MSG_NOSIGNAL, user);
    return;
  }
  if (dir === 0) sqe(OP_RECV, clientFd[c]!, c2s(c), BUF, 0, c * 8 + K_RECV_C);
  else sqe(OP_RECV, serverFd[c]!, s2c(c), BUF, 0, c * 8 + K_RECV_S);
}

// the loop never yields to Node: SIGTERM's default action ends the process
for (;;) {
  u32[sqTail] = tail;
  const r = sysEnter(SYS_io_uring_enter, ring, pending, 1, IORING_ENTER_GETEVENTS, null, 0);
  if (r >= 0) pending -= r;
  else if (koffi.errno() !== 4 && koffi.errno() !== 16) throw new Error(`io_uring_enter: errno ${koffi.errno()}`);
  let head = u32[cqHead]!;
  const end = u32[cqTail]!;
  while (head !== end) {
    const o = cqes + (head & cqMask) * 16;
    const user = cqeView.getUint32(o, true);
    const res = cqeView.getInt32(o + 8, true);
    head = (head + 1) >>> 0;
    onCqe(user, res);
  }
  u32[cqHead] = head;
}

function epollLoop(): never {
  const c = libc!;
  const ep = c.epoll_create1(0);
  const ev = Buffer.alloc(12);
  const add = (fd: number) => {
    ev.writeUInt32LE(EPOLLIN, 0);
    ev.writeInt32LE(fd, 4);
    c.epoll_ctl(ep, EPOLL_CTL_ADD, fd, ev);
  };
  const other = new Int32Array(65536).fill(-1);
  const events = Buffer.alloc(12 * 256);
  const buf = Buffer.allocUnsafeSlow(BUF);
  const nb = Buffer.alloc(4);
  nb.writeInt32LE(1);
  add(lfd);
  for (;;) {
    const n = c.epoll_wait(ep, events, 256, -1);
    for (let i = 0; i < n; i++) {
      const fd = events.readInt32LE(i * 12 + 4);
      if (fd === lfd) {
        const cl = c.accept4(lfd, null, null, NONBLOCK_CLOEXEC);
        if (cl < 0) continue;
        const s = c.socket(2, 1 | 0o2000000, 0);
        if (c.connect(s, upstreamAddr, 16) !== 0) {
          c.close(cl);
          c.close(s);
          continue;
        }
        c.setsockopt(s, 6, 1, nb, 4); // TCP_NODELAY as the product
        other[cl] = s;
        other[s] = cl;
        add(cl);
        add(s);
        continue;
      }
      const to = other[fd]!;
      if (to < 0) continue;
      const r = c.recv(fd, buf, BUF, 0);
      if (r > 0) c.send(to, buf, r, MSG_NOSIGNAL);
      else if (r === 0 || koffi.errno() !== 11) {
        c.close(fd);
        c.close(to);
        other[fd] = other[to] = -1;
      }
    }
  }
}
