/**
 * ICMP echo for PING_CHECK through libc via koffi (Node has no ICMP sockets). Tries an
 * unprivileged SOCK_DGRAM IPPROTO_ICMP socket (allowed by net.ipv4.ping_group_range), then a raw
 * socket (root / CAP_NET_RAW). Waiting happens in poll() on the libuv thread pool, in short
 * slices, so the event loop never blocks and the probe's AbortSignal is honoured.
 */

import { isIPv4 } from 'node:net';
import { inetChecksum } from '../codec/inet-checksum.js';
import { sockaddrBytes } from '../util/address.js';
import { LbError } from '../util/errors.js';
import { AF_INET, AF_INET6, errno, type Libc, requireLibc, SOCK_DGRAM, SOCK_NONBLOCK, SOCK_RAW } from './libc.js';

const IPPROTO_ICMP = 1;
const IPPROTO_ICMPV6 = 58;
const POLLIN = 1;
const POLL_SLICE_MS = 50;

export class IcmpPinger {
  private seq = 0;
  private readonly ident = process.pid & 0xffff;

  private lib(): Libc {
    return requireLibc();
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
        errno: errno(),
      });
    try {
      this.seq = (this.seq + 1) & 0xffff;
      const seq = this.seq;
      const pkt = Buffer.alloc(16);
      pkt.writeUInt8(family === 4 ? 8 : 128, 0); // echo request (RFC 792 / RFC 4443 §4.1)
      pkt.writeUInt16BE(this.ident, 4);
      pkt.writeUInt16BE(seq, 6);
      pkt.write('keepvs!!', 8, 'latin1');
      if (family === 4) pkt.writeUInt16BE(inetChecksum(pkt), 2); // the kernel fills the ICMPv6 checksum
      const sa = sockaddrBytes(host, 0);
      if (libc.sendto(fd, pkt, pkt.length, 0, sa, sa.length) < 0)
        throw new LbError('ESENDTO', 'ICMP sendto failed', { errno: errno(), address: host });
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
