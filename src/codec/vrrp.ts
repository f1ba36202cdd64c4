/**
 * VRRP advertisements, version 2 (RFC 3768 §5.1) and version 3 (RFC 5798 §5.1).
 *
 *  v2:  0                   1                   2                   3
 *       |Version| Type  | Virtual Rtr ID|   Priority    | Count IP Addrs|
 *       |   Auth Type   |   Adver Int   |          Checksum             |
 *       |                         IP Address (1..n)                     |
 *       |                     Authentication Data (1)                   |
 *       |                     Authentication Data (2)                   |
 *
 *  v3:  |Version| Type  | Virtual Rtr ID|   Priority    |Count IPvX Addr|
 *       |(rsvd) |     Max Adver Int     |          Checksum             |
 *       |                       IPvX Address(es)                        |
 *
 * decode never throws: malformed input is a DecodeError whose name is the RFC 5798 statistics
 * counter (VRRPv3-MIB) it counts against.
 */
import ipaddr from 'ipaddr.js';
import { err, ok, type Result } from '../util/result.js';
import { inetChecksum, onesSum, pseudoHeaderSum } from './inet-checksum.js';

export const VRRP_PROTOCOL = 112;
/** RFC 3768 §5.3.6: auth types. keepalived sends 2 (AH) in the VRRP header when AH wraps it. */
export const AUTH_NONE = 0;
export const AUTH_PASS = 1;
export const AUTH_AH = 2;

export interface VrrpAdvert {
  readonly version: 2 | 3;
  readonly vrid: number;
  readonly priority: number;
  readonly family: 4 | 6;
  readonly addresses: readonly string[];
  /** v2: seconds (RFC 3768 §5.3.7) */
  readonly advertInt?: number;
  /** v2 */
  readonly authType?: number;
  /** v2: the 8 octets of authentication data (PASS: the password, zero padded) */
  readonly authData?: Uint8Array;
  /** v3: centiseconds (RFC 5798 §5.2.7) */
  readonly maxAdvertIntCs?: number;
}

/** Addresses of the IP header, needed for the v3 pseudo-header checksum. */
export interface IpContext {
  readonly src: string;
  readonly dst: string;
  /** keepalived's v3_checksum_as_v2: checksum without the pseudo-header */
  readonly checksumAsV2?: boolean;
  /** the kernel already verified the checksum (IPv6 raw sockets with IPV6_CHECKSUM) */
  readonly kernelChecked?: boolean;
}

export type VrrpDecodeError =
  | { readonly code: 'vrrpStatsPacketLengthErrors'; readonly detail: string }
  | { readonly code: 'vrrpStatsVersionErrors'; readonly detail: string }
  | { readonly code: 'vrrpStatsInvalidTypePktsRcvd'; readonly detail: string }
  | { readonly code: 'vrrpStatsChecksumErrors'; readonly detail: string }
  | { readonly code: 'vrrpStatsVrIdErrors'; readonly detail: string };

const addrLen = (family: 4 | 6) => (family === 4 ? 4 : 16);

export function encodingLength(a: Pick<VrrpAdvert, 'version' | 'family' | 'addresses'>): number {
  return 8 + a.addresses.length * addrLen(a.family) + (a.version === 2 ? 8 : 0);
}

export function encodeVrrp(a: VrrpAdvert, ip?: IpContext): Uint8Array {
  const out = new Uint8Array(encodingLength(a));
  out[0] = (a.version << 4) | 1;
  out[1] = a.vrid;
  out[2] = a.priority;
  out[3] = a.addresses.length;
  if (a.version === 2) {
    out[4] = a.authType ?? AUTH_NONE;
    out[5] = a.advertInt ?? 1;
  } else {
    const cs = a.maxAdvertIntCs ?? 100;
    out[4] = (cs >>> 8) & 0x0f;
    out[5] = cs & 0xff;
  }
  let o = 8;
  for (const addr of a.addresses) {
    out.set(ipaddr.parse(addr).toByteArray(), o);
    o += addrLen(a.family);
  }
  if (a.version === 2 && a.authData) out.set(a.authData.subarray(0, 8), o);
  const sum =
    a.version === 3 && ip && !ip.checksumAsV2
      ? pseudoHeaderSum(bytes(ip.src), bytes(ip.dst), VRRP_PROTOCOL, out.length)
      : 0;
  const c = inetChecksum(out, sum);
  out[6] = c >>> 8;
  out[7] = c & 0xff;
  return out;
}

const bytes = (a: string) => Uint8Array.from(ipaddr.parse(a).toByteArray());

export function decodeVrrp(
  buf: Uint8Array,
  family: 4 | 6,
  ip?: IpContext,
): Result<VrrpAdvert & { checksum: number }, VrrpDecodeError> {
  if (buf.length < 8)
    return err({ code: 'vrrpStatsPacketLengthErrors', detail: `${buf.length} bytes is shorter than a VRRP header` });
  const version = buf[0] >> 4;
  if (version !== 2 && version !== 3) return err({ code: 'vrrpStatsVersionErrors', detail: `version ${version}` });
  if ((buf[0] & 0x0f) !== 1) return err({ code: 'vrrpStatsInvalidTypePktsRcvd', detail: `type ${buf[0] & 0x0f}` });
  if (version === 2 && family === 6) return err({ code: 'vrrpStatsVersionErrors', detail: 'VRRPv2 over IPv6' });
  const vrid = buf[1];
  if (vrid === 0) return err({ code: 'vrrpStatsVrIdErrors', detail: 'VRID 0' });
  const count = buf[3];
  const need = 8 + count * addrLen(family) + (version === 2 ? 8 : 0);
  // the IP layer trims Ethernet padding (IP total length): bytes beyond the message are malformed,
  // as keepalived has it ("vrrp packet too long")
  if (buf.length !== need)
    return err({
      code: 'vrrpStatsPacketLengthErrors',
      detail: `${count} addresses need ${need} bytes, got ${buf.length}`,
    });
  const msg = buf;
  const checksum = (msg[6] << 8) | msg[7];
  const initial =
    version === 3 && ip && !ip.checksumAsV2 ? pseudoHeaderSum(bytes(ip.src), bytes(ip.dst), VRRP_PROTOCOL, need) : 0;
  if (!ip?.kernelChecked && onesSum(msg, initial) !== 0xffff)
    return err({
      code: 'vrrpStatsChecksumErrors',
      detail: `checksum 0x${checksum.toString(16).padStart(4, '0')} does not verify`,
    });
  const addresses: string[] = [];
  for (let i = 0; i < count; i++) {
    const o = 8 + i * addrLen(family);
    addresses.push(ipaddr.fromByteArray([...msg.subarray(o, o + addrLen(family))]).toString());
  }
  const base = { version: version as 2 | 3, vrid, priority: buf[2], family, addresses, checksum };
  if (version === 2) {
    const o = 8 + count * 4;
    return ok({ ...base, authType: buf[4], advertInt: buf[5], authData: msg.slice(o, o + 8) });
  }
  return ok({ ...base, maxAdvertIntCs: ((buf[4] & 0x0f) << 8) | buf[5] });
}

/** PASS authentication data: the password zero-padded or truncated to 8 octets (RFC 3768 §5.3.10). */
export function passAuthData(pass: string): Uint8Array {
  const out = new Uint8Array(8);
  out.set(new TextEncoder().encode(pass).subarray(0, 8));
  return out;
}
