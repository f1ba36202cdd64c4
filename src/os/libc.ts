/**
 * libc through koffi (an FFI made for calling C libraries from Node), bound once for all of
 * keepvs: the proxy data plane's socket and epoll calls, raw VRRP sockets, gratuitous ARP /
 * unsolicited NA, ICMP echo. Linux only. Every function returns what libc returns (-1 on failure,
 * errno then in `errno()`); no exceptions on the hot path.
 *
 * Why libc and not Node's sockets: per request, a proxy does one read and one write per direction;
 * Node adds a C++-to-JS callback, a handle object and a view per chunk on top, which measured as
 * the difference between keepvs and HAProxy (docs/dataplane.md, "Fast path"). VRRP, ARP and ICMP
 * need raw sockets, which Node does not offer at all.
 */
import { constants, networkInterfaces } from 'node:os';
import koffi from 'koffi';
import { AF_INET, AF_INET6, decodeSockaddr, type SocketAddress, sockaddrBytes } from '../util/address.js';

export { AF_INET, AF_INET6, decodeSockaddr, type SocketAddress };

// linux/socket.h, linux/in.h, linux/in6.h, linux/tcp.h, sys/epoll.h, asm-generic/errno.h
export const AF_PACKET = 17;
export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const SOCK_RAW = 3;
/** SOCK_NONBLOCK alone (raw and ICMP sockets) */
export const SOCK_NONBLOCK = 0o4000;
/** SOCK_NONBLOCK | SOCK_CLOEXEC, also accept4's and pipe2's flags */
export const NONBLOCK_CLOEXEC = 0o4000 | 0o2000000;
export const EPOLL_CLOEXEC = 0o2000000;
export const SOL_SOCKET = 1;
export const SO_REUSEADDR = 2;
export const SO_ERROR = 4;
const SO_LINGER = 13;
export const SO_REUSEPORT = 15;
export const SOL_IP = 0;
export const IP_FREEBIND = 15;
export const SOL_IPV6 = 41;
export const IPV6_V6ONLY = 26;
export const IPV6_FREEBIND = 78;
export const IPPROTO_TCP = 6;
export const TCP_NODELAY = 1;
export const TCP_INFO = 11;
/** 0: delayed-ACK (pingpong) mode, the ACK of received data waits for data going back */
export const TCP_QUICKACK = 12;
export const SHUT_WR = 1;
/** a write to a reset peer fails with EPIPE instead of raising SIGPIPE */
export const MSG_NOSIGNAL = 0x4000;
/** more data follows (here: the FIN): the kernel holds a partial segment back until the next send or shutdown */
export const MSG_MORE = 0x8000;
export const EPOLLIN = 0x1;
export const EPOLLOUT = 0x4;
export const EPOLLERR = 0x8;
export const EPOLLHUP = 0x10;
/** the peer shut down its writing side (its FIN is queued behind the data still to read) */
export const EPOLLRDHUP = 0x2000;
export const EPOLL_CTL_ADD = 1;
export const EPOLL_CTL_DEL = 2;
export const EPOLL_CTL_MOD = 3;
/** struct epoll_event is packed on x86-64: u32 events, u64 data (we keep the fd in its low half) */
export const EPOLL_EVENT_BYTES = 12;
export const EAGAIN = constants.errno.EAGAIN;
export const EINPROGRESS = constants.errno.EINPROGRESS;
export const EINTR = constants.errno.EINTR;
export const EMFILE = constants.errno.EMFILE;
export const ENFILE = constants.errno.ENFILE;
export const EADDRNOTAVAIL = constants.errno.EADDRNOTAVAIL;

export interface Libc {
  socket(domain: number, type: number, protocol: number): number;
  setsockopt(fd: number, level: number, name: number, value: Buffer, len: number): number;
  getsockopt(fd: number, level: number, name: number, value: Buffer, len: Buffer): number;
  bind(fd: number, addr: Buffer, len: number): number;
  listen(fd: number, backlog: number): number;
  accept4(fd: number, addr: Buffer | null, len: Buffer | null, flags: number): number;
  connect(fd: number, addr: Buffer, len: number): number;
  getsockname(fd: number, addr: Buffer, len: Buffer): number;
  getpeername(fd: number, addr: Buffer, len: Buffer): number;
  recv(fd: number, buf: Buffer, len: number, flags: number): number;
  send(fd: number, buf: Buffer, len: number, flags: number): number;
  sendto(fd: number, buf: Buffer, len: number, flags: number, addr: Buffer, addrLen: number): number;
  recvfrom(fd: number, buf: Buffer, len: number, flags: number, addr: Buffer, addrLen: Buffer): number;
  /** struct msghdr in `msg`, its pointers into memory from nativeBuffer() */
  recvmsg(fd: number, msg: Buffer, flags: number): number;
  sendmsg(fd: number, msg: Buffer, flags: number): number;
  read(fd: number, buf: Buffer, len: number): number;
  shutdown(fd: number, how: number): number;
  close(fd: number): number;
  pipe2(fds: Int32Array, flags: number): number;
  epoll_create1(flags: number): number;
  epoll_ctl(epfd: number, op: number, fd: number, event: Buffer): number;
  epoll_wait(epfd: number, events: Buffer, max: number, timeoutMs: number): number;
  strerror(errnum: number): string;
  /** poll(2); called with `.async` so the wait happens on libuv's thread pool */
  poll: ((fds: Buffer, nfds: number, timeoutMs: number) => number) & {
    async(fds: Buffer, nfds: number, timeoutMs: number, cb: (e: unknown, r: number) => void): void;
  };
}

let library: ReturnType<typeof koffi.load> | null | undefined;

/** The one koffi handle on libc.so.6, or null (not Linux, no koffi build). */
function libcLibrary(): ReturnType<typeof koffi.load> | null {
  if (library !== undefined) return library;
  library = null;
  if (process.platform !== 'linux') return null;
  try {
    library = koffi.load('libc.so.6');
  } catch {
    library = null;
  }
  return library;
}

/** Binds functions of the one libc handle once; null where libc or a symbol is missing. */
function bindOnce<T>(bind: (lib: NonNullable<ReturnType<typeof libcLibrary>>) => T): () => T | null {
  let bound: T | null | undefined;
  return () => {
    if (bound !== undefined) return bound;
    bound = null;
    const lib = libcLibrary();
    if (!lib) return null;
    try {
      bound = bind(lib);
    } catch {
      bound = null;
    }
    return bound;
  };
}

/** struct sock_filter (classic BPF instruction) */
export interface SockFilter {
  readonly code: number;
  readonly jt: number;
  readonly jf: number;
  readonly k: number;
}

const SO_ATTACH_REUSEPORT_CBPF = 51;

const loadAttachCbpf = bindOnce((lib) => {
  const filter = koffi.struct('keepvs_sock_filter', { code: 'uint16', jt: 'uint8', jf: 'uint8', k: 'uint32' });
  koffi.struct('keepvs_sock_fprog', { len: 'uint16', filter: koffi.pointer(filter) });
  return lib.func('int setsockopt(int, int, int, const keepvs_sock_fprog *, uint32_t)') as (
    fd: number,
    level: number,
    name: number,
    prog: unknown,
    len: number,
  ) => number;
});

/**
 * setsockopt(SO_ATTACH_REUSEPORT_CBPF): a classic BPF program that picks the socket of a reuseport
 * group (its return value is the index). false when koffi/libc are missing or the kernel refuses.
 */
export function attachReuseportCbpf(fd: number, program: readonly SockFilter[]): boolean {
  const attach = loadAttachCbpf();
  if (!attach) return false;
  return attach(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, { len: program.length, filter: program }, 16) === 0;
}

const SO_ATTACH_FILTER = 26;

/**
 * setsockopt(SO_ATTACH_FILTER): a classic BPF program run on each packet (or netlink message)
 * before it is queued to the socket; it returns the bytes to keep, 0 to drop. false when
 * koffi/libc are missing or the kernel refuses.
 */
export function attachSocketFilter(fd: number, program: readonly SockFilter[]): boolean {
  const attach = loadAttachCbpf();
  if (!attach) return false;
  return attach(fd, SOL_SOCKET, SO_ATTACH_FILTER, { len: program.length, filter: program }, 16) === 0;
}

const loadRecvmmsg = bindOnce(
  (lib) =>
    lib.func('int recvmmsg(int, void *, unsigned int, int, void *)') as (
      fd: number,
      vec: Buffer,
      vlen: number,
      flags: number,
      timeout: null,
    ) => number,
);

/** recvmmsg(2) without a timeout: `vec` holds `vlen` struct mmsghdr (64 bytes each on LP64); null without libc */
export function recvmmsgCall(): ((fd: number, vec: Buffer, vlen: number, flags: number) => number) | null {
  const call = loadRecvmmsg();
  return call ? (fd, vec, vlen, flags) => call(fd, vec, vlen, flags, null) : null;
}

const SYS_BPF = 321; // x86-64; arm64 280

const loadBpfSyscall = bindOnce((lib) => {
  const call = lib.func('long syscall(long, int, void *, uint32_t)') as (
    nr: number,
    cmd: number,
    attr: Buffer,
    size: number,
  ) => number;
  const nr = process.arch === 'x64' ? SYS_BPF : process.arch === 'arm64' ? 280 : -1;
  return nr < 0 ? null : (cmd: number, attr: Buffer) => call(nr, cmd, attr, attr.length);
});

/** bpf(2) with `attr` (union bpf_attr, zero-padded); -1 and errno() on failure, null without libc */
export function bpfCall(cmd: number, attr: Buffer): number | null {
  const call = loadBpfSyscall();
  return call ? call(cmd, attr) : null;
}

/** libc through koffi, or null where that is impossible (not Linux, no koffi build). */
export const loadLibc: () => Libc | null = bindOnce(
  (lib) =>
    ({
      socket: lib.func('int socket(int, int, int)'),
      setsockopt: lib.func('int setsockopt(int, int, int, const void *, uint32_t)'),
      getsockopt: lib.func('int getsockopt(int, int, int, void *, void *)'),
      bind: lib.func('int bind(int, const void *, uint32_t)'),
      listen: lib.func('int listen(int, int)'),
      accept4: lib.func('int accept4(int, void *, void *, int)'),
      connect: lib.func('int connect(int, const void *, uint32_t)'),
      getsockname: lib.func('int getsockname(int, void *, void *)'),
      getpeername: lib.func('int getpeername(int, void *, void *)'),
      recv: lib.func('long recv(int, void *, unsigned long, int)'),
      send: lib.func('long send(int, const void *, unsigned long, int)'),
      sendto: lib.func('long sendto(int, const void *, unsigned long, int, const void *, uint32_t)'),
      recvfrom: lib.func('long recvfrom(int, void *, unsigned long, int, void *, void *)'),
      recvmsg: lib.func('long recvmsg(int, void *, int)'),
      sendmsg: lib.func('long sendmsg(int, const void *, int)'),
      read: lib.func('long read(int, void *, unsigned long)'),
      shutdown: lib.func('int shutdown(int, int)'),
      close: lib.func('int close(int)'),
      pipe2: lib.func('int pipe2(int *, int)'),
      epoll_create1: lib.func('int epoll_create1(int)'),
      epoll_ctl: lib.func('int epoll_ctl(int, int, int, void *)'),
      epoll_wait: lib.func('int epoll_wait(int, void *, int, int)'),
      strerror: lib.func('const char *strerror(int)'),
      poll: lib.func('int poll(_Inout_ void *, unsigned long, int)'),
    }) as Libc,
);

export interface Syslog {
  openlog(ident: Buffer, option: number, facility: number): void;
  /** syslog(priority, "%s", message): the message is never a format */
  syslog(priority: number, message: string): void;
}

/** openlog(3) / syslog(3), or null where libc is not available. */
export const loadSyslog: () => Syslog | null = bindOnce((lib) => {
  const openlog = lib.func('void openlog(const char *ident, int option, int facility)');
  const syslog = lib.func('void syslog(int priority, const char *format, ...)');
  return { openlog, syslog: (p, m) => syslog(p, '%s', 'str', m) };
});

const loadIfNameToIndex = bindOnce(
  (lib) => lib.func('unsigned int if_nametoindex(const char *)') as (n: string) => number,
);

/** if_nametoindex(3): the interface's index in this network namespace, 0 when there is none; null without libc */
export function ifNameToIndex(name: string): number | null {
  const f = loadIfNameToIndex();
  return f ? f(name) : null;
}

/** libc, or an Error saying why not (raw-socket users that cannot work without it). */
export function requireLibc(): Libc {
  const libc = loadLibc();
  if (!libc) throw new Error('libc is not available through koffi (keepvs needs Linux for raw sockets)');
  return libc;
}

/**
 * Calls `onReadable` whenever `fd` has data, from Node's event loop (koffi's poll handle on libuv).
 * koffi 3.3.4 calls back with (status, events), although its typings declare (events).
 */
export function watchReadable(fd: number, onReadable: () => void): { close(): void } {
  const poll = koffi.node.poll as unknown as (
    fd: number,
    want: { readable: boolean },
    cb: (status: number, events: { readable?: boolean }) => void,
  ) => { close(): void };
  return poll(fd, { readable: true }, (_status, events) => {
    if (events?.readable) onReadable();
  });
}

/** Memory outside the JS heap with a stable address, for the pointers inside struct msghdr. */
export interface NativeBuffer {
  readonly address: bigint;
  readonly bytes: Uint8Array;
  free(): void;
}

export function nativeBuffer(size: number): NativeBuffer {
  const p = koffi.alloc('uint8_t', size);
  return {
    address: BigInt(koffi.address(p)),
    bytes: new Uint8Array(koffi.view(p, size)),
    free: () => koffi.free(p),
  };
}

const PROT_READ_WRITE = 0x3;
const MAP_SHARED = 0x1;

const loadMmap = bindOnce(
  (lib) => lib.func('void *mmap(void *, unsigned long, int, int, int, long)') as (...a: unknown[]) => unknown,
);

/** io_uring's three system calls (raw, no liburing) and mmap, for the proxy's I/O batcher (dataplane/proxy/uring.ts) */
export interface UringCalls {
  setup(entries: number, params: Buffer): number;
  enter(fd: number, toSubmit: number, minComplete: number, flags: number, sig: null, sigSize: number): number;
  register(fd: number, opcode: number, arg: Buffer, nrArgs: number): number;
  mmap(addr: null, len: number, prot: number, flags: number, fd: number, offset: number): unknown;
  munmap(addr: unknown, len: number): number;
  socketpair(domain: number, type: number, protocol: number, fds: Int32Array): number;
}

const SYS_IO_URING_SETUP = 425;
const SYS_IO_URING_ENTER = 426;
const SYS_IO_URING_REGISTER = 427;

/** null without libc, or off x86-64/arm64 (other syscall numbers there) */
export const loadUringCalls: () => UringCalls | null = bindOnce((lib) => {
  // the io_uring syscall numbers are the same on every 64-bit architecture of the generic table and on x86-64
  if (process.arch !== 'x64' && process.arch !== 'arm64') throw new Error('unsupported architecture');
  const s3 = lib.func('long syscall(long, uint32_t, void *)') as (nr: number, a: number, p: Buffer) => number;
  const s6 = lib.func('long syscall(long, int, uint32_t, uint32_t, uint32_t, void *, size_t)') as (
    nr: number,
    ...a: unknown[]
  ) => number;
  const s4 = lib.func('long syscall(long, int, uint32_t, void *, uint32_t)') as (nr: number, ...a: unknown[]) => number;
  const mmap = lib.func('void *mmap(void *, unsigned long, int, int, int, long)') as UringCalls['mmap'];
  const munmap = lib.func('int munmap(void *, unsigned long)') as UringCalls['munmap'];
  return {
    setup: (entries, params) => s3(SYS_IO_URING_SETUP, entries, params),
    enter: (fd, toSubmit, minComplete, flags, sig, sigSize) =>
      s6(SYS_IO_URING_ENTER, fd, toSubmit, minComplete, flags, sig, sigSize),
    register: (fd, opcode, arg, nrArgs) => s4(SYS_IO_URING_REGISTER, fd, opcode, arg, nrArgs),
    mmap,
    munmap,
    socketpair: lib.func('int socketpair(int, int, int, int *)') as UringCalls['socketpair'],
  };
});

/**
 * The first `bytes` of the open file `fd` mapped MAP_SHARED, as an ArrayBuffer: every process
 * mapping the same file sees each write at once, and Atomics on an Int32Array over it are atomic
 * across them (lock-prefixed instructions on the shared page). Never unmapped. null without libc
 * or when mmap fails.
 */
export function mapSharedFile(fd: number, bytes: number): ArrayBuffer | null {
  const mmap = loadMmap();
  if (!mmap) return null;
  const p = mmap(null, bytes, PROT_READ_WRITE, MAP_SHARED, fd, 0);
  if (p === null || BigInt(koffi.address(p)) === 0xffffffffffffffffn) return null;
  return koffi.view(p, bytes);
}

/** errno of the last failed call */
export function errno(): number {
  return koffi.errno();
}

const ERRNO_NAMES = new Map<number, string>(Object.entries(constants.errno).map(([name, n]) => [n, name]));

/** 'EADDRINUSE' for its number (as Node names system errors) */
export function errnoName(e: number): string {
  return ERRNO_NAMES.get(e) ?? `errno ${e}`;
}

/** One int option value, reused (setsockopt copies it). */
const INT_ONE = Buffer.alloc(4);
INT_ONE.writeInt32LE(1);
const INT_ZERO = Buffer.alloc(4);

export function setIntOption(libc: Libc, fd: number, level: number, name: number, on = true): boolean {
  return libc.setsockopt(fd, level, name, on ? INT_ONE : INT_ZERO, 4) === 0;
}

/** struct linger { on = 1, linger = 0 }: close() then sends an RST instead of a FIN */
const LINGER_ZERO = Buffer.alloc(8);
LINGER_ZERO.writeInt32LE(1, 0);

export function setLingerZero(libc: Libc, fd: number): void {
  libc.setsockopt(fd, SOL_SOCKET, SO_LINGER, LINGER_ZERO, 8);
}

/**
 * struct sockaddr_in / sockaddr_in6 for an address and port; a link-local real server
 * (fe80::1%eth0) gets the interface's index as sin6_scope_id.
 */
export function encodeSockaddr(address: string, port: number): Buffer {
  return sockaddrBytes(address, port, scopeId);
}

/** An interface name or number as the index the kernel wants (0 when unknown: connect fails). */
function scopeId(zone: string): number {
  if (/^\d+$/.test(zone)) return Number(zone);
  return networkInterfaces()[zone]?.find((a) => a.family === 'IPv6' && a.scopeid)?.scopeid ?? 0;
}

const ADDR_BUF = Buffer.alloc(28);
const ADDR_LEN = Buffer.alloc(4);

/** getpeername/getsockname as an address, or null (e.g. the peer already reset) */
export function socketAddress(libc: Libc, fd: number, which: 'peer' | 'local'): SocketAddress | null {
  ADDR_LEN.writeUInt32LE(ADDR_BUF.length);
  const r = which === 'peer' ? libc.getpeername(fd, ADDR_BUF, ADDR_LEN) : libc.getsockname(fd, ADDR_BUF, ADDR_LEN);
  return r === 0 ? decodeSockaddr(ADDR_BUF) : null;
}

const ERR_BUF = Buffer.alloc(4);
const ERR_LEN = Buffer.alloc(4);

/** SO_ERROR: the outcome of a non-blocking connect (0 = connected) */
export function socketError(libc: Libc, fd: number): number {
  ERR_LEN.writeUInt32LE(4);
  if (libc.getsockopt(fd, SOL_SOCKET, SO_ERROR, ERR_BUF, ERR_LEN) !== 0) return errno();
  return ERR_BUF.readInt32LE(0);
}

/** One int option value for setsockopt. */
export function intOption(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32LE(v);
  return b;
}
