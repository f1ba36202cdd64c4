/**
 * PROXY protocol headers towards real servers (HAProxy's proxy-protocol.txt, versions 1 and 2),
 * so real servers can see the client address behind the userspace data plane.
 */
import { isIPv6 } from 'node:net';
import ipaddr from 'ipaddr.js';
import type { Endpoint } from '../../lb/types.js';

/** `PROXY TCP4 <src> <dst> <sport> <dport>\r\n` (proxy-protocol.txt §2.1) */
export function proxyV1(client: Endpoint, local: Endpoint): Buffer {
  const six = isIPv6(client.address);
  return Buffer.from(
    `PROXY ${six ? 'TCP6' : 'TCP4'} ${client.address} ${local.address} ${client.port} ${local.port}\r\n`,
    'ascii',
  );
}

const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

/** Binary header (proxy-protocol.txt §2.2): version 2, PROXY command, TCP over IPv4/IPv6 (or UDP). */
export function proxyV2(client: Endpoint, local: Endpoint, transport: 'tcp' | 'udp' = 'tcp'): Buffer {
  const src = ipaddr.process(client.address);
  const dst = ipaddr.process(local.address);
  const six = src.kind() === 'ipv6' || dst.kind() === 'ipv6';
  const toBytes = (a: ipaddr.IPv4 | ipaddr.IPv6) =>
    (six && a.kind() === 'ipv4' ? (a as ipaddr.IPv4).toIPv4MappedAddress() : a).toByteArray();
  const addrLen = six ? 36 : 12;
  const buf = Buffer.alloc(16 + addrLen);
  V2_SIGNATURE.copy(buf, 0);
  buf[12] = 0x21; // version 2, command PROXY
  buf[13] = (six ? 0x20 : 0x10) | (transport === 'tcp' ? 0x01 : 0x02);
  buf.writeUInt16BE(addrLen, 14);
  const alen = six ? 16 : 4;
  Buffer.from(toBytes(src)).copy(buf, 16);
  Buffer.from(toBytes(dst)).copy(buf, 16 + alen);
  buf.writeUInt16BE(client.port, 16 + 2 * alen);
  buf.writeUInt16BE(local.port, 18 + 2 * alen);
  return buf;
}
