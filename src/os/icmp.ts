/**
 * ICMP echo for PING_CHECK through libc via koffi (Node has no ICMP sockets). Tries an
 * unprivileged SOCK_DGRAM IPPROTO_ICMP socket (allowed by net.ipv4.ping_group_range), then a raw
 * socket (root / CAP_NET_RAW). Waiting happens in poll() on the libuv thread pool, in short
 * slices, so the event loop never blocks and the probe's AbortSignal is honoured.
 */

import { isIPv4 } from 'node:net';
import koffi from 'koffi';
import { LbError } from '../util/errors.js';

const AF_INET = 2;
const AF_INET6 = 10;
const SOCK_RAW = 3;
const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0o4000;
const IPPROTO_ICMP = 1;
const IPPROTO_ICMPV6 = 58;
const POLLIN = 1;
const POLL_SLICE_MS = 50;

type Fn = (...args: unknown[]) => number;
interface Libc {
  socket: Fn;
  sendto: Fn;
  recv: Fn;
  close: Fn;
  poll: Fn & { async: (...args: unknown[]) => void };
}

/** RFC 1071 Internet checksum. */
function checksum(b: Buffer): number {
  let sum = 0;
  for (let i = 0; i + 1 < b.length; i += 2) sum += b.readUInt16BE(i);
  if (b.length % 2) sum += b[b.length - 1] << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return ~sum & 0xffff;
}

function sockaddr(host: string, family: 4 | 6): Buffer {
  if (family === 4) {
    const sa = Buffer.alloc(16);
    sa.writeUInt16LE(AF_INET, 0);
    host.split('.').forEach((o, i) => {
      sa.writeUInt8(Number(o), 4 + i);
    });
    return sa;
  }
  const sa = Buffer.alloc(28);
  sa.writeUInt16LE(AF_INET6, 0);
  expand6(host).copy(sa, 8);
  return sa;
}

function expand6(host: string): Buffer {
  const [head, tail] = host.includes('::') ? host.split('::') : [host, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => {
    b.writeUInt16BE(Number.parseInt(g || '0', 16), i * 2);
  });
  return b;
}

export class IcmpPinger {
  private libc?: Libc;
  private seq = 0;
  private readonly ident = process.pid & 0xffff;

  private lib(): Libc {
    if (this.libc) return this.libc;
    const l = koffi.load('libc.so.6');
    this.libc = {
      socket: l.func('int socket(int, int, int)') as Fn,
      sendto: l.func('long sendto(int, void *, unsigned long, int, void *, unsigned int)') as Fn,
      recv: l.func('long recv(int, _Out_ void *, unsigned long, int)') as Fn,
      close: l.func('int close(int)') as Fn,
      poll: l.func('int poll(_Inout_ void *, unsigned long, int)') as Libc['poll'],
    };
    return this.libc;
  }

  async ping(host: string, family: 4 | 6, signal: AbortSignal): Promise<boolean> {
    if ((family === 4) !== isIPv4(host)) throw new LbError('EINVAL', `bad address ${host}`, { address: host });
    const libc = this.lib();
    const af = family === 4 ? AF_INET : AF_INET6;
    const proto = family === 4 ? IPPROTO_ICMP : IPPROTO_ICMPV6;
    let raw = false;
    let fd = libc.socket(af, SOCK_DGRAM | SOCK_NONBLOCK, proto);
    if (fd < 0) {
      fd = libc.socket(af, SOCK_RAW | SOCK_NONBLOCK, proto);
      raw = true;
    }
    if (fd < 0)
      throw new LbError('KV_PING_UNAVAILABLE', 'no ICMP socket: not root and ping_group_range excludes us', {
        errno: koffi.errno(),
      });
    try {
      this.seq = (this.seq + 1) & 0xffff;
      const seq = this.seq;
      const pkt = Buffer.alloc(16);
      pkt.writeUInt8(family === 4 ? 8 : 128, 0); // echo request (RFC 792 / RFC 4443 §4.1)
      pkt.writeUInt16BE(this.ident, 4);
      pkt.writeUInt16BE(seq, 6);
      pkt.write('keepvs!!', 8, 'latin1');
      if (family === 4) pkt.writeUInt16BE(checksum(pkt), 2); // the kernel fills the ICMPv6 checksum
      const sa = sockaddr(host, family);
      if (libc.sendto(fd, pkt, pkt.length, 0, sa, sa.length) < 0)
        throw new LbError('ESENDTO', 'ICMP sendto failed', { errno: koffi.errno(), address: host });
      const buf = Buffer.alloc(1500);
      const pfd = Buffer.alloc(8);
      while (!signal.aborted) {
        pfd.writeInt32LE(fd, 0);
        pfd.writeInt16LE(POLLIN, 4);
        pfd.writeInt16LE(0, 6);
        const n = await new Promise<number>((resolve) =>
          libc.poll.async(pfd, 1, POLL_SLICE_MS, (e: unknown, r: number) => resolve(e ? -1 : r)),
        );
        if (n < 0) return false;
        if (n === 0) continue;
        for (;;) {
          const len = libc.recv(fd, buf, buf.length, 0);
          if (len <= 0) break;
          let off = 0;
          if (raw && family === 4) off = (buf[0] & 0x0f) * 4; // raw IPv4 sockets include the IP header
          if (len < off + 8) continue;
          const type = buf[off];
          const replySeq = buf.readUInt16BE(off + 6);
          const replyId = buf.readUInt16BE(off + 4);
          const isReply = family === 4 ? type === 0 : type === 129;
          // datagram ICMP sockets rewrite the identifier; raw ones see everyone's replies
          if (isReply && replySeq === seq && (!raw || replyId === this.ident)) return true;
        }
      }
      return false;
    } finally {
      libc.close(fd);
    }
  }
}
