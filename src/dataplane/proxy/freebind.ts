/**
 * Listening sockets that may bind an address this host does not hold yet (a BACKUP director's VIP).
 * We create the socket through libc (koffi), set IP_FREEBIND / IPV6_FREEBIND (no privilege needed,
 * unlike the ip_nonlocal_bind sysctl which is host-wide) and SO_REUSEPORT (so every worker gets its
 * own accept queue and the kernel spreads connections), bind it, then hand the fd to
 * net.Server.listen({ fd }). Linux only; callers fall back to a plain listen when unavailable.
 */
import { isIPv6 } from 'node:net';
import ipaddr from 'ipaddr.js';
import koffi from 'koffi';

// linux/socket.h, linux/in.h, linux/in6.h
const AF_INET = 2;
const AF_INET6 = 10;
const SOCK_STREAM = 1;
const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_REUSEADDR = 2;
const SO_REUSEPORT = 15;
const SOL_IP = 0;
const IP_FREEBIND = 15;
const SOL_IPV6 = 41;
const IPV6_V6ONLY = 26;
const IPV6_FREEBIND = 78;

export interface BoundSocket {
  readonly fd: number;
  readonly port: number;
}

export interface FreebindLib {
  /** A bound (not listening) socket with IP_FREEBIND and SO_REUSEPORT; throws with errno text on failure. */
  bind(kind: 'tcp' | 'udp', address: string, port: number): BoundSocket;
  close(fd: number): void;
}

interface LibcFns {
  socket: (d: number, t: number, p: number) => number;
  setsockopt: (fd: number, level: number, name: number, val: Buffer, len: number) => number;
  bind: (fd: number, addr: Buffer, len: number) => number;
  getsockname: (fd: number, addr: Buffer, len: Buffer) => number;
  close: (fd: number) => number;
  strerror: (e: number) => string;
}

function sockaddr(address: string, port: number): Buffer {
  if (isIPv6(address)) {
    const b = Buffer.alloc(28);
    b.writeUInt16LE(AF_INET6, 0);
    b.writeUInt16BE(port, 2);
    ipv6Bytes(address).copy(b, 8);
    return b;
  }
  const b = Buffer.alloc(16);
  b.writeUInt16LE(AF_INET, 0);
  b.writeUInt16BE(port, 2);
  const parts = address.split('.').map(Number);
  for (let i = 0; i < 4; i++) b[4 + i] = parts[i] ?? 0;
  return b;
}

function ipv6Bytes(address: string): Buffer {
  return Buffer.from(ipaddr.IPv6.parse(address).toByteArray());
}

/** Loads libc through koffi; null when that is impossible (non-Linux, missing library). */
export function loadFreebind(): FreebindLib | null {
  let fns: LibcFns;
  try {
    const lib = koffi.load('libc.so.6');
    fns = {
      socket: lib.func('int socket(int, int, int)'),
      setsockopt: lib.func('int setsockopt(int, int, int, const void *, uint32_t)'),
      bind: lib.func('int bind(int, const void *, uint32_t)'),
      getsockname: lib.func('int getsockname(int, void *, void *)'),
      close: lib.func('int close(int)'),
      strerror: lib.func('const char *strerror(int)'),
    };
  } catch {
    return null;
  }
  const one = Buffer.alloc(4);
  one.writeInt32LE(1);
  const fail = (fd: number, what: string): never => {
    const e = koffi.errno();
    if (fd >= 0) fns.close(fd);
    const error = new Error(`${what}: ${fns.strerror(e)}`) as Error & { errno: number };
    error.errno = e;
    throw error;
  };
  return {
    bind(kind, address, port) {
      const v6 = isIPv6(address);
      const type = (kind === 'tcp' ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC;
      const fd = fns.socket(v6 ? AF_INET6 : AF_INET, type, 0);
      if (fd < 0) fail(fd, 'socket');
      if (fns.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, one, 4) < 0) fail(fd, 'SO_REUSEADDR');
      if (fns.setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, one, 4) < 0) fail(fd, 'SO_REUSEPORT');
      if (v6) {
        // a specific v6 VIP; `::` should not also take v4 traffic meant for a v4 service
        if (fns.setsockopt(fd, SOL_IPV6, IPV6_V6ONLY, one, 4) < 0) fail(fd, 'IPV6_V6ONLY');
        if (fns.setsockopt(fd, SOL_IPV6, IPV6_FREEBIND, one, 4) < 0) fail(fd, 'IPV6_FREEBIND');
      } else if (fns.setsockopt(fd, SOL_IP, IP_FREEBIND, one, 4) < 0) fail(fd, 'IP_FREEBIND');
      const sa = sockaddr(address, port);
      if (fns.bind(fd, sa, sa.length) < 0) fail(fd, `bind ${address}:${port}`);
      const out = Buffer.alloc(28);
      const len = Buffer.alloc(4);
      len.writeUInt32LE(28);
      if (fns.getsockname(fd, out, len) < 0) fail(fd, 'getsockname');
      return { fd, port: out.readUInt16BE(2) };
    },
    close(fd) {
      fns.close(fd);
    },
  };
}
