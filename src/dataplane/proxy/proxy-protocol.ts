/**
 * PROXY protocol headers towards real servers (HAProxy's proxy-protocol.txt, versions 1 and 2),
 * so a real server behind the full-NAT proxy can still see the client address.
 */
import { isIPv6 } from 'node:net';
import ipaddr from 'ipaddr.js';

export type ProxyProtocolVersion = 'v1' | 'v2';

/** v2 signature: \r\n\r\n\0\r\nQUIT\n (proxy-protocol.txt section 2.2) */
export const PROXY_V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

function unmapped(address: string): string {
  // a v4 client seen on a dual-stack socket: report it as IPv4
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

/** v1 (section 2.1): "PROXY TCP4 <src> <dst> <sport> <dport>\r\n", at most 107 bytes. */
export function proxyV1(srcAddr: string, srcPort: number, dstAddr: string, dstPort: number): Buffer {
  const s = unmapped(srcAddr);
  const d = unmapped(dstAddr);
  const v6 = isIPv6(s) || isIPv6(d);
  if (v6 && !(isIPv6(s) && isIPv6(d))) return Buffer.from('PROXY UNKNOWN\r\n', 'latin1');
  return Buffer.from(`PROXY ${v6 ? 'TCP6' : 'TCP4'} ${s} ${d} ${srcPort} ${dstPort}\r\n`, 'latin1');
}

/**
 * v2 (section 2.2): signature, ver/cmd 0x21 (v2, PROXY), family/transport
 * (0x11 TCP4, 0x12 UDP4, 0x21 TCP6, 0x22 UDP6), big-endian length, then addresses and ports.
 */
export function proxyV2(
  transport: 'tcp' | 'udp',
  srcAddr: string,
  srcPort: number,
  dstAddr: string,
  dstPort: number,
): Buffer {
  const s = unmapped(srcAddr);
  const d = unmapped(dstAddr);
  const v6 = isIPv6(s) || isIPv6(d);
  const alen = v6 ? 36 : 12;
  const b = Buffer.alloc(16 + alen);
  PROXY_V2_SIGNATURE.copy(b, 0);
  b[12] = 0x21;
  b[13] = (v6 ? 0x20 : 0x10) | (transport === 'tcp' ? 0x01 : 0x02);
  b.writeUInt16BE(alen, 14);
  const bytes = (a: string): number[] => {
    const p = ipaddr.parse(a);
    if (v6) return (p.kind() === 'ipv4' ? (p as ipaddr.IPv4).toIPv4MappedAddress() : p).toByteArray();
    return p.toByteArray();
  };
  const n = v6 ? 16 : 4;
  Buffer.from(bytes(s)).copy(b, 16);
  Buffer.from(bytes(d)).copy(b, 16 + n);
  b.writeUInt16BE(srcPort, 16 + 2 * n);
  b.writeUInt16BE(dstPort, 18 + 2 * n);
  return b;
}
