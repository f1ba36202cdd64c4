/**
 * Adds and removes interface addresses over an rtnetlink socket (codec/rtnetlink.ts), the way `ip
 * addr` does, without spawning a process: a takeover's VIPs are up in microseconds, not after a
 * fork/exec that took up to 600 ms on a loaded machine. The kernel handles an rtnetlink request
 * inside send() (rtnetlink(7)), so its acknowledgement is waiting when send() returns.
 */
import { type AddressRequest, decodeAck, encodeAddressRequest } from '../codec/rtnetlink.js';
import { errno, errnoName, ifNameToIndex, type Libc, loadLibc } from './libc.js';

const AF_NETLINK = 16;
const NETLINK_ROUTE = 0;
const SOCK_RAW_CLOEXEC = 3 | 0o2000000;
const MSG_DONTWAIT = 0x40;

/** The outcome of one request: done, or an errno name (EEXIST, EADDRNOTAVAIL, ENODEV...). */
export type NetlinkOutcome = { ok: true } | { ok: false; error: string };

export type AddressChange = Omit<AddressRequest, 'ifindex' | 'seq'> & { readonly dev: string };

export class NetlinkAddresses {
  private seq = Math.floor(Math.random() * 0x7fffffff);
  private readonly reply = Buffer.alloc(8192);

  private constructor(
    private readonly libc: Libc,
    private readonly fd: number,
  ) {}

  /** An rtnetlink socket, or null where there is none (no libc through koffi, not Linux). */
  static open(): NetlinkAddresses | null {
    const libc = loadLibc();
    if (!libc) return null;
    const fd = libc.socket(AF_NETLINK, SOCK_RAW_CLOEXEC, NETLINK_ROUTE);
    return fd < 0 ? null : new NetlinkAddresses(libc, fd);
  }

  change(c: AddressChange): NetlinkOutcome {
    const ifindex = ifNameToIndex(c.dev);
    if (!ifindex) return { ok: false, error: 'ENODEV' };
    const seq = ++this.seq;
    let msg: Buffer;
    try {
      msg = encodeAddressRequest({ ...c, ifindex, seq });
    } catch (e) {
      return { ok: false, error: `${(e as Error).message}` };
    }
    if (this.libc.send(this.fd, msg, msg.length, 0) < 0) return { ok: false, error: errnoName(errno()) };
    // the acknowledgement is queued by now; older replies (a timed-out seq) are skipped
    for (let i = 0; i < 16; i++) {
      const n = Number(this.libc.recv(this.fd, this.reply, this.reply.length, MSG_DONTWAIT));
      if (n < 0) return { ok: false, error: `no reply (${errnoName(errno())})` };
      const code = decodeAck(this.reply.subarray(0, n), seq);
      if (code === null) continue;
      return code === 0 ? { ok: true } : { ok: false, error: errnoName(code) };
    }
    return { ok: false, error: 'no reply' };
  }

  close(): void {
    this.libc.close(this.fd);
  }
}
