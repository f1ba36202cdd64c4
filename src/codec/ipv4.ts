/** The IPv4 header (RFC 791 §3.1), as raw VRRP sockets see and build it. */
import ipaddr from 'ipaddr.js';
import { err, ok, type Result } from '../util/result.js';
import { inetChecksum } from './inet-checksum.js';

export interface Ipv4Header {
  readonly tos: number;
  readonly totalLength: number;
  readonly id: number;
  /** flags and fragment offset, as one 16-bit field */
  readonly fragment: number;
  readonly ttl: number;
  readonly protocol: number;
  readonly src: string;
  readonly dst: string;
  readonly headerLength: number;
}

export function decodeIpv4(buf: Uint8Array): Result<{ header: Ipv4Header; payload: Uint8Array }, string> {
  if (buf.length < 20) return err('shorter than an IPv4 header');
  if (buf[0] >> 4 !== 4) return err(`IP version ${buf[0] >> 4}`);
  const headerLength = (buf[0] & 0x0f) * 4;
  const totalLength = (buf[2] << 8) | buf[3];
  if (headerLength < 20 || totalLength < headerLength || buf.length < totalLength) return err('bad IPv4 lengths');
  const header: Ipv4Header = {
    tos: buf[1],
    totalLength,
    id: (buf[4] << 8) | buf[5],
    fragment: (buf[6] << 8) | buf[7],
    ttl: buf[8],
    protocol: buf[9],
    src: ipaddr.fromByteArray([...buf.subarray(12, 16)]).toString(),
    dst: ipaddr.fromByteArray([...buf.subarray(16, 20)]).toString(),
    headerLength,
  };
  return ok({ header, payload: buf.subarray(headerLength, totalLength) });
}

export function encodeIpv4(h: Omit<Ipv4Header, 'headerLength'>): Uint8Array {
  const out = new Uint8Array(20);
  out[0] = 0x45;
  out[1] = h.tos;
  out[2] = h.totalLength >>> 8;
  out[3] = h.totalLength & 0xff;
  out[4] = h.id >>> 8;
  out[5] = h.id & 0xff;
  out[6] = h.fragment >>> 8;
  out[7] = h.fragment & 0xff;
  out[8] = h.ttl;
  out[9] = h.protocol;
  out.set(ipaddr.parse(h.src).toByteArray(), 12);
  out.set(ipaddr.parse(h.dst).toByteArray(), 16);
  const c = inetChecksum(out);
  out[10] = c >>> 8;
  out[11] = c & 0xff;
  return out;
}
