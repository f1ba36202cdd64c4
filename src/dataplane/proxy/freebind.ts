/**
 * Listening sockets that may bind an address this host does not hold yet (a BACKUP director's VIP).
 * We create the socket through libc (koffi), set IP_FREEBIND / IPV6_FREEBIND (no privilege needed,
 * unlike the ip_nonlocal_bind sysctl which is host-wide) and SO_REUSEPORT (so every worker gets its
 * own accept queue and the kernel spreads connections), bind it, then hand the fd to
 * net.Server.listen({ fd }). Linux only; callers fall back to a plain listen when unavailable.
 */
import { isIPv6 } from 'node:net';
import {
  AF_INET,
  AF_INET6,
  encodeSockaddr,
  errno,
  IP_FREEBIND,
  IPV6_FREEBIND,
  IPV6_V6ONLY,
  loadLibc,
  NONBLOCK_CLOEXEC,
  SO_REUSEADDR,
  SO_REUSEPORT,
  SOCK_DGRAM,
  SOCK_STREAM,
  SOL_IP,
  SOL_IPV6,
  SOL_SOCKET,
  setIntOption,
  socketAddress,
} from '../../os/libc.js';

export interface BoundSocket {
  readonly fd: number;
  readonly port: number;
}

export interface FreebindLib {
  /** A bound (not listening) socket with IP_FREEBIND and SO_REUSEPORT; throws with errno text on failure. */
  bind(kind: 'tcp' | 'udp', address: string, port: number): BoundSocket;
  close(fd: number): void;
}

/** Loads libc through koffi; null when that is impossible (non-Linux, missing library). */
export function loadFreebind(): FreebindLib | null {
  const libc = loadLibc();
  if (!libc) return null;
  const fail = (fd: number, what: string): never => {
    const e = errno();
    if (fd >= 0) libc.close(fd);
    const error = new Error(`${what}: ${libc.strerror(e)}`) as Error & { errno: number };
    error.errno = e;
    throw error;
  };
  return {
    bind(kind, address, port) {
      const v6 = isIPv6(address);
      const fd = libc.socket(
        v6 ? AF_INET6 : AF_INET,
        (kind === 'tcp' ? SOCK_STREAM : SOCK_DGRAM) | NONBLOCK_CLOEXEC,
        0,
      );
      if (fd < 0) fail(fd, 'socket');
      if (!setIntOption(libc, fd, SOL_SOCKET, SO_REUSEADDR)) fail(fd, 'SO_REUSEADDR');
      if (!setIntOption(libc, fd, SOL_SOCKET, SO_REUSEPORT)) fail(fd, 'SO_REUSEPORT');
      if (v6) {
        // a specific v6 VIP; `::` should not also take v4 traffic meant for a v4 service
        if (!setIntOption(libc, fd, SOL_IPV6, IPV6_V6ONLY)) fail(fd, 'IPV6_V6ONLY');
        if (!setIntOption(libc, fd, SOL_IPV6, IPV6_FREEBIND)) fail(fd, 'IPV6_FREEBIND');
      } else if (!setIntOption(libc, fd, SOL_IP, IP_FREEBIND)) fail(fd, 'IP_FREEBIND');
      const sa = encodeSockaddr(address, port);
      if (libc.bind(fd, sa, sa.length) < 0) fail(fd, `bind ${address}:${port}`);
      const local = socketAddress(libc, fd, 'local');
      if (!local) fail(fd, 'getsockname');
      return { fd, port: local?.port ?? port };
    },
    close(fd) {
      libc.close(fd);
    },
  };
}
