/**
 * Receive checks for one advert and one instance (RFC 5798 §7.1, RFC 3768 §7.1), in the order and
 * with the log wording keepalived's vrrp_check_packet() applies them. Pure: the driver hands over
 * what the socket saw (addresses, TTL/hop limit, the bytes) and gets back the advert or the
 * counter the drop is counted against. Counter names are keepalived's statistics names.
 */
import ipaddr from 'ipaddr.js';
import { AH_PROTOCOL, type AhHeader, decodeAh, verifyIcv } from '../codec/ah.js';
import { decodeIpv4, type Ipv4Header } from '../codec/ipv4.js';
import {
  AUTH_AH,
  AUTH_NONE,
  AUTH_PASS,
  decodeVrrp,
  passAuthData,
  VRRP_PROTOCOL,
  type VrrpAdvert,
} from '../codec/vrrp.js';
import type { VrrpInstance } from '../config/model.js';

/** A received advert: IPv4 sockets hand over the whole IP packet, IPv6 ones the VRRP message and recvmsg's control data. */
export type Received =
  | { readonly family: 4; readonly packet: Uint8Array }
  | {
      readonly family: 6;
      readonly vrrp: Uint8Array;
      readonly src: string;
      /** IPV6_PKTINFO: the address the advert was sent to */
      readonly dst: string;
      /** IPV6_HOPLIMIT */
      readonly hopLimit: number;
    };

/** What the socket saw, before any VRRP check. */
export interface Seen {
  readonly family: 4 | 6;
  readonly src: string;
  readonly dst: string;
  readonly ttl: number;
  /** the VRRP message (inside AH when there is one) */
  readonly vrrp: Uint8Array;
  readonly ah?: { readonly ip: Ipv4Header; readonly ah: AhHeader };
}

/** Splits off the IP (and AH) headers; undefined for what is not VRRP at all (kept out of every counter). */
export function seen(r: Received): Seen | undefined {
  if (r.family === 6) return { family: 6, src: r.src, dst: r.dst, ttl: r.hopLimit, vrrp: r.vrrp };
  const ip = decodeIpv4(r.packet);
  if (!ip.ok) return undefined;
  const h = ip.value.header;
  const base = { family: 4 as const, src: h.src, dst: h.dst, ttl: h.ttl };
  if (h.protocol === VRRP_PROTOCOL) return { ...base, vrrp: ip.value.payload };
  if (h.protocol !== AH_PROTOCOL) return undefined;
  const ah = decodeAh(ip.value.payload);
  // AH for another protocol is not ours (keepalived: VRRP_PACKET_DROP, uncounted)
  if (!ah.ok || ah.value.ah.nextHeader !== VRRP_PROTOCOL) return undefined;
  return { ...base, vrrp: ah.value.payload, ah: { ip: h, ah: ah.value.ah } };
}

export type Verdict =
  | { readonly ok: true; readonly advert: VrrpAdvert; readonly ahSeq?: number }
  | {
      readonly ok: false;
      /** the statistics counter; undefined: dropped without counting (keepalived does not count it either) */
      readonly counter?: string;
      readonly log: string;
    };

export interface ReceiveContext {
  /** the last AH sequence number seen or sent (keepalived's ipsecah_counter: one for both) */
  readonly ahSeq: number;
  /** vrrp_check_unicast_src in global_defs */
  readonly checkUnicastSrcGlobal: boolean;
  /** this router's priority now: an owner with owner_ignore_adverts drops everything */
  readonly effectivePriority: number;
}

const drop = (counter: string | undefined, log: string): Verdict => ({ ok: false, counter, log });
const isMulticast = (a: string) => ipaddr.parse(a).range() === 'multicast';
const same = (a: string, b: string) => ipaddr.parse(a).toNormalizedString() === ipaddr.parse(b).toNormalizedString();

/** keepalived's check_ttl_hl(): a unicast peer's min_ttl/max_ttl, else 255 (RFC 5798 §7.1) */
function ttlRange(i: VrrpInstance, src: string): [number, number] {
  const peer = i.unicastPeers.find((p) => same(p.address, src));
  if (peer && (peer.minTtl !== undefined || peer.maxTtl !== undefined)) return [peer.minTtl ?? 0, peer.maxTtl ?? 255];
  return [255, 255];
}

export function checkAdvert(i: VrrpInstance, s: Seen, ctx: ReceiveContext): Verdict {
  const name = i.name;
  const from = s.src;
  const wantAh = i.authentication?.type === 'AH';
  if (s.family === 4 && !!s.ah !== wantAh)
    return drop(
      'authtype_mismatch',
      s.ah
        ? `(${name}) Received AH header but auth type not AH from ${from}`
        : `(${name}) No AH header but auth type is AH from ${from}`,
    );
  const b = s.vrrp;
  if (b.length < 8) return drop('packet_len_err', `(${name}) ip/vrrp header too short from ${from}`);
  const version = b[0] >> 4;
  const count = b[3];
  const expected = 8 + count * (s.family === 4 ? 4 : 16) + (version === 2 ? 8 : 0);
  // the IP layer already trimmed Ethernet padding: anything else beyond the message is malformed
  if (b.length !== expected)
    return drop(
      'packet_len_err',
      `(${name}) vrrp packet from ${from} too ${b.length > expected ? 'long' : 'short'}, length ${b.length} and expect ${expected}`,
    );
  // RFC 5798 §7.1 / RFC 3768 §7.1: TTL / hop limit 255, multicast and unicast alike (keepalived
  // checks unicast only against a peer's min_ttl/max_ttl: an off-link host could take the VIP)
  const [minTtl, maxTtl] = ttlRange(i, from);
  if (s.ttl < minTtl || s.ttl > maxTtl)
    return drop(
      'ip_ttl_err',
      `(${name}) invalid TTL/HL from ${from}. Received ${s.ttl} and expect ${minTtl === maxTtl ? minTtl : `${minTtl}-${maxTtl}`}`,
    );
  if (version !== i.version)
    return drop(
      'version_err',
      `(${name}) wrong VRRP version from ${from}. Received ${version} and expect ${i.version}`,
    );
  let ahSeq: number | undefined;
  if (version === 2) {
    const authType = b[4];
    if (authType !== AUTH_NONE && authType !== AUTH_PASS && authType !== AUTH_AH)
      return drop('invalid_authtype', `(${name}) Invalid auth type from ${from}: ${authType}`);
    const want = i.authentication ? (i.authentication.type === 'PASS' ? AUTH_PASS : AUTH_AH) : AUTH_NONE;
    if (authType !== want)
      return drop('authtype_mismatch', `(${name}) received a ${authType} auth from ${from}, expecting ${want}!`);
    if (want === AUTH_PASS) {
      const got = Buffer.from(b.subarray(expected - 8, expected));
      if (!got.equals(Buffer.from(passAuthData(i.authentication!.pass))))
        return drop('auth_failure', `(${name}) received an invalid passwd from ${from}!`);
    }
    if (want === AUTH_AH && s.ah) {
      const { ip, ah } = s.ah;
      if (!verifyIcv(ip, ah, b, i.authentication!.pass, !isMulticast(s.dst)))
        return drop(
          'auth_failure',
          `(${name}) IPSEC-AH : invalid IPSEC HMAC-MD5 value. Due to fields mutation or bad password !`,
        );
      const srcWord = ipaddr.IPv4.parse(from)
        .toByteArray()
        .reduce((a, x) => (a << 8) | x, 0);
      if (ah.spi !== srcWord >>> 0)
        return drop('auth_failure', `IPSEC AH : invalid IPSEC SPI value. ${ah.spi} and expect ${srcWord >>> 0}`);
      // RFC 2402 §3.4.3 anti-replay as keepalived keeps it: a sequence number must be new
      if (ah.seq <= ctx.ahSeq)
        return drop(
          'auth_failure',
          `(${name}) IPSEC-AH : sequence number ${ah.seq} already processed. Packet dropped. Local(${ctx.ahSeq})`,
        );
      ahSeq = ah.seq;
    }
    // RFC 3768 §7.1: a v2 advert with another interval is dropped (two masters otherwise)
    if (b[5] !== i.advertInt)
      return drop(
        'advert_interval_err',
        `(${name}) advertisement interval mismatch with ${from} mine=${i.advertInt} sec rcv'd=${b[5]} sec`,
      );
  }
  if ((b[0] & 0x0f) !== 1)
    return drop('invalid_type_rcvd', `(${name}) Invalid packet type from ${from}. ${b[0] & 0x0f} and expect 1`);
  // v3 over IPv4: the pseudo-header holds the real source and destination (RFC 5798 §5.2.8);
  // IPv6: the kernel verified it against the real addresses (IPV6_CHECKSUM) before we saw it
  const d = decodeVrrp(b, s.family, {
    src: s.src,
    dst: s.dst,
    checksumAsV2: i.v3ChecksumAsV2,
    kernelChecked: s.family === 6,
  });
  if (!d.ok) {
    if (d.error.code === 'vrrpStatsChecksumErrors')
      return drop('checksum_err', `(${name}) Invalid VRRPv${version} checksum from ${from}`);
    return drop('packet_len_err', `(${name}) malformed advert from ${from}: ${d.error.detail}`);
  }
  const unicast = i.unicastPeers.length > 0;
  if (isMulticast(s.dst) === unicast)
    return drop(
      'addr_list_err',
      `(${name}) Expected ${unicast ? 'un' : 'mult'}icast packet but received ${unicast ? 'mult' : 'un'}icast packet from ${from}`,
    );
  if (i.ownerIgnoreAdverts && ctx.effectivePriority === 255)
    return drop(undefined, `(${name}) Dropping packet(s) from ${from} since we are address owner`);
  const a = d.value;
  const vips = i.virtualIpaddresses;
  if (a.addresses.length !== vips.length)
    return drop('addr_list_err', `(${name}) expected ${vips.length} VIPs but received ${a.addresses.length}`);
  if (!i.skipCheckAdvAddr) {
    const missing = vips.find((v) => !a.addresses.some((x) => same(x, v.address)));
    if (missing)
      return drop(
        'addr_list_err',
        `(${name}) ip address associated with VRID ${i.vrid} not present in advert from ${from}: ${missing.address}`,
      );
  }
  if (unicast && (ctx.checkUnicastSrcGlobal || i.checkUnicastSrc) && !i.unicastPeers.some((p) => same(p.address, from)))
    return drop('unicast_src_err', `(${name}) unicast source address ${from} not a unicast peer`);
  return { ok: true, advert: a, ...(ahSeq !== undefined ? { ahSeq } : {}) };
}
