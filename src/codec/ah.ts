/**
 * IPsec AH around VRRPv2 as keepalived implements it in user space (RFC 2402 §2, §3.3.3.1):
 *
 *   | Next Header   |  Payload Len  |          RESERVED             |
 *   |                 Security Parameters Index (SPI)               |
 *   |                    Sequence Number Field                      |
 *   |                Authentication Data (ICV, 96 bits)             |
 *
 * keepalived: SPI = the sender's IPv4 address, sequence numbers from 1, ICV = the first 12 bytes of
 * HMAC-MD5 keyed with auth_pass (zero padded to 8 bytes) over the IP header with the mutable fields
 * zeroed (TOS, flags/fragment, checksum; TTL too in unicast), the AH header with a zero ICV, and the
 * VRRP message.
 */
import { createHmac } from 'node:crypto';
import ipaddr from 'ipaddr.js';
import { err, ok, type Result } from '../util/result.js';
import { encodeIpv4, type Ipv4Header } from './ipv4.js';
import { VRRP_PROTOCOL } from './vrrp.js';

export const AH_PROTOCOL = 51;
export const AH_LENGTH = 24;

export interface AhHeader {
  readonly nextHeader: number;
  readonly spi: number;
  readonly seq: number;
  readonly icv: Uint8Array;
}

export function decodeAh(buf: Uint8Array): Result<{ ah: AhHeader; payload: Uint8Array }, string> {
  if (buf.length < AH_LENGTH) return err('shorter than an AH header');
  // Payload Len counts 32-bit words minus 2 (RFC 2402 §2.2): 4 for a 96-bit ICV
  if (buf[1] !== AH_LENGTH / 4 - 2) return err(`AH payload length ${buf[1]} (expected 4)`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  return ok({
    ah: { nextHeader: buf[0], spi: view.getUint32(4), seq: view.getUint32(8), icv: buf.slice(12, 24) },
    payload: buf.subarray(AH_LENGTH),
  });
}

function ahBytes(ah: AhHeader): Uint8Array {
  const out = new Uint8Array(AH_LENGTH);
  const v = new DataView(out.buffer);
  out[0] = ah.nextHeader;
  out[1] = AH_LENGTH / 4 - 2;
  v.setUint32(4, ah.spi);
  v.setUint32(8, ah.seq);
  out.set(ah.icv.subarray(0, 12), 12);
  return out;
}

function key(pass: string): Buffer {
  const k = Buffer.alloc(8);
  Buffer.from(pass, 'utf8').copy(k, 0, 0, 8);
  return k;
}

/** keepalived's ICV over the packet with mutable fields zeroed. */
export function computeIcv(
  ip: Omit<Ipv4Header, 'headerLength'>,
  ah: Omit<AhHeader, 'icv'>,
  vrrp: Uint8Array,
  pass: string,
  unicast: boolean,
): Uint8Array {
  const header = encodeIpv4({ ...ip, tos: 0, fragment: 0, ttl: unicast ? 0 : ip.ttl });
  header[10] = 0;
  header[11] = 0;
  const hmac = createHmac('md5', key(pass));
  hmac.update(header);
  hmac.update(ahBytes({ ...ah, icv: new Uint8Array(12) }));
  hmac.update(vrrp);
  return new Uint8Array(hmac.digest().subarray(0, 12));
}

/** A whole IPv4 packet: IP header + AH + VRRP message. */
export function encodeAhPacket(
  ip: { tos: number; id: number; ttl: number; src: string; dst: string },
  seq: number,
  vrrp: Uint8Array,
  pass: string,
  unicast: boolean,
): Uint8Array {
  const full = { ...ip, fragment: 0, protocol: AH_PROTOCOL, totalLength: 20 + AH_LENGTH + vrrp.length };
  const spi =
    ipaddr.IPv4.parse(ip.src)
      .toByteArray()
      .reduce((a, b) => (a << 8) | b, 0) >>> 0;
  const icv = computeIcv(full, { nextHeader: VRRP_PROTOCOL, spi, seq }, vrrp, pass, unicast);
  const out = new Uint8Array(full.totalLength);
  out.set(encodeIpv4(full), 0);
  out.set(ahBytes({ nextHeader: VRRP_PROTOCOL, spi, seq, icv }), 20);
  out.set(vrrp, 20 + AH_LENGTH);
  return out;
}

export function verifyIcv(ip: Ipv4Header, ah: AhHeader, vrrp: Uint8Array, pass: string, unicast: boolean): boolean {
  const want = computeIcv(ip, ah, vrrp, pass, unicast);
  return Buffer.from(want).equals(Buffer.from(ah.icv));
}
