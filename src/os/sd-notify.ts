/**
 * systemd's readiness protocol (sd_notify(3)): datagrams such as READY=1 sent to the AF_UNIX socket
 * named in $NOTIFY_SOCKET (a path, or an abstract name written with a leading '@'). Node's dgram
 * has no Unix datagram sockets, so the datagram goes through libc (os/libc.ts). Without
 * NOTIFY_SOCKET (not started by systemd with Type=notify) every call does nothing.
 */
import { errno, errnoName, loadLibc, MSG_NOSIGNAL, SOCK_DGRAM } from './libc.js';

const AF_UNIX = 1;
const SOCK_CLOEXEC = 0o2000000;
/** sizeof(struct sockaddr_un): sa_family_t + 108 bytes of path */
const SUN_PATH_MAX = 108;

/** struct sockaddr_un for a $NOTIFY_SOCKET value, and the length to pass (abstract names are not NUL-terminated) */
export function unixSockaddr(name: string): { addr: Buffer; len: number } | undefined {
  const abstract = name.startsWith('@');
  const path = Buffer.from(abstract ? `\0${name.slice(1)}` : name);
  if (path.length === 0 || path.length >= SUN_PATH_MAX || !(abstract || name.startsWith('/'))) return undefined;
  const addr = Buffer.alloc(2 + SUN_PATH_MAX);
  addr.writeUInt16LE(AF_UNIX, 0);
  path.copy(addr, 2);
  return { addr, len: 2 + path.length + (abstract ? 0 : 1) };
}

export interface Notifier {
  /** sends `state` (lines KEY=VALUE); a failure is returned as text, never thrown */
  notify(state: string): string | undefined;
}

export function systemdNotifier(env: NodeJS.ProcessEnv = process.env): Notifier | undefined {
  const name = env.NOTIFY_SOCKET;
  if (!name) return undefined;
  const target = unixSockaddr(name);
  return {
    notify(state) {
      if (!target) return `NOTIFY_SOCKET ${JSON.stringify(name)} is not a socket path or @name`;
      const libc = loadLibc();
      if (!libc) return 'libc is not available (koffi)';
      const fd = libc.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      if (fd < 0) return `socket: ${errnoName(errno())}`;
      try {
        const msg = Buffer.from(state);
        const n = libc.sendto(fd, msg, msg.length, MSG_NOSIGNAL, target.addr, target.len);
        return n < 0 ? `sendto ${name}: ${errnoName(errno())}` : undefined;
      } finally {
        libc.close(fd);
      }
    },
  };
}

/** RELOADING=1 carries the monotonic clock (systemd 253+ checks it; older ones ignore it) */
export function reloadingMessage(): string {
  return `RELOADING=1\nMONOTONIC_USEC=${process.hrtime.bigint() / 1000n}`;
}
