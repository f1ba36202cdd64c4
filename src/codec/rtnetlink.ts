/**
 * rtnetlink address messages (RTM_NEWADDR / RTM_DELADDR, rtnetlink(7), linux/if_addr.h) and the
 * kernel's NLMSG_ERROR acknowledgement (netlink(7)). Pure: bytes in, bytes out. The VRRP worker
 * adds a VIP with one of these instead of spawning `ip`: a process spawn on a loaded 2-core machine
 * took up to 600 ms, all of it time without service after a takeover.
 */
import ipaddr from 'ipaddr.js';
import { netlinkAttr as attr } from './netlink-attr.js';

export const RTM_NEWADDR = 20;
export const RTM_DELADDR = 21;
const NLMSG_ERROR = 2;
const NLM_F_REQUEST = 0x1;
const NLM_F_ACK = 0x4;
const NLM_F_EXCL = 0x200;
const NLM_F_CREATE = 0x400;
const IFA_ADDRESS = 1;
const IFA_LOCAL = 2;
const IFA_LABEL = 3;
const IFA_BROADCAST = 4;
/** linux/if_addr.h: no duplicate address detection (keepalived adds IPv6 VIPs with it) */
const IFA_F_NODAD = 0x02;
const AF_INET = 2;
const AF_INET6 = 10;
const IFNAMSIZ = 16;

/** rtnetlink scopes (linux/rtnetlink.h, iproute2's rt_scopes) */
const SCOPES = { global: 0, site: 200, link: 253, host: 254, nowhere: 255 } as const;

export interface AddressRequest {
  readonly op: 'add' | 'del';
  readonly family: 4 | 6;
  readonly address: string;
  readonly prefixLen: number;
  readonly ifindex: number;
  /** an IPv4 broadcast address */
  readonly brd?: string;
  readonly scope?: keyof typeof SCOPES;
  readonly label?: string;
  readonly seq: number;
}

/**
 * One RTM_NEWADDR/RTM_DELADDR request asking for an acknowledgement. As `ip addr add`: the local
 * and the address attribute both carry the address (no peer), an add is CREATE|EXCL (an existing
 * address answers EEXIST), and without a scope 127/8 and ::1 get host scope, others global. The bytes
 * are those `ip addr` sends (test/codec/rtnetlink.test.ts holds its requests, captured with strace).
 * Throws on an address, broadcast or label the kernel would refuse.
 */
export function encodeAddressRequest(r: AddressRequest): Buffer {
  const addr = Buffer.from(ipaddr.parse(r.address).toByteArray());
  if (addr.length !== (r.family === 4 ? 4 : 16)) throw new Error(`${r.address} is not an IPv${r.family} address`);
  const max = r.family === 4 ? 32 : 128;
  if (!Number.isInteger(r.prefixLen) || r.prefixLen < 0 || r.prefixLen > max)
    throw new Error(`prefix length ${r.prefixLen} out of range`);
  const loopback =
    r.family === 4 ? addr[0] === 127 : r.address === '::1' || ipaddr.parse(r.address).range() === 'loopback';
  const scope = r.scope !== undefined ? SCOPES[r.scope] : loopback ? SCOPES.host : SCOPES.global;
  const flags = r.family === 6 && r.op === 'add' ? IFA_F_NODAD : 0;
  // attribute order and set as iproute2 sends them (ipaddr_modify): local, broadcast, label, address;
  // flags that fit ifa_flags need no IFA_FLAGS attribute
  const attrs = [attr(IFA_LOCAL, addr)];
  if (r.brd !== undefined) {
    const b = ipaddr.parse(r.brd).toByteArray();
    if (r.family !== 4 || b.length !== 4) throw new Error(`broadcast ${r.brd} is not an IPv4 address`);
    attrs.push(attr(IFA_BROADCAST, Buffer.from(b)));
  }
  if (r.label !== undefined) {
    if (r.label.length === 0 || Buffer.byteLength(r.label) >= IFNAMSIZ) throw new Error(`label '${r.label}' too long`);
    attrs.push(attr(IFA_LABEL, Buffer.from(`${r.label}\0`)));
  }
  attrs.push(attr(IFA_ADDRESS, addr));
  const ifa = Buffer.alloc(8);
  ifa.writeUInt8(r.family === 4 ? AF_INET : AF_INET6, 0);
  ifa.writeUInt8(r.prefixLen, 1);
  ifa.writeUInt8(flags, 2);
  ifa.writeUInt8(scope, 3);
  ifa.writeUInt32LE(r.ifindex, 4);
  const body = Buffer.concat([ifa, ...attrs]);
  const hdr = Buffer.alloc(16);
  hdr.writeUInt32LE(16 + body.length, 0);
  hdr.writeUInt16LE(r.op === 'add' ? RTM_NEWADDR : RTM_DELADDR, 4);
  hdr.writeUInt16LE(NLM_F_REQUEST | NLM_F_ACK | (r.op === 'add' ? NLM_F_CREATE | NLM_F_EXCL : 0), 6);
  hdr.writeUInt32LE(r.seq >>> 0, 8);
  hdr.writeUInt32LE(0, 12);
  return Buffer.concat([hdr, body]);
}

/**
 * The acknowledgement of request `seq` in a datagram from the kernel: 0 (done) or a positive
 * errno; null when the datagram holds no NLMSG_ERROR for it (another message, truncated bytes).
 */
export function decodeAck(buf: Buffer, seq: number): number | null {
  let off = 0;
  while (off + 16 <= buf.length) {
    const len = buf.readUInt32LE(off);
    if (len < 16 || off + len > buf.length) return null;
    const type = buf.readUInt16LE(off + 4);
    if (type === NLMSG_ERROR && buf.readUInt32LE(off + 8) === seq >>> 0 && len >= 20)
      return 0 - buf.readInt32LE(off + 16) || 0;
    off += (len + 3) & ~3;
  }
  return null;
}
