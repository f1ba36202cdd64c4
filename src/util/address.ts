/**
 * Address arithmetic in one place (pure): parsing, canonical text, 32-bit folds for hashing
 * (IPVS folds IPv6 by XOR of its four words, ip_vs_sh.c / ip_vs_mh.c), masking for persistence
 * granularity, netmask <-> prefix length, and struct sockaddr_in / sockaddr_in6 bytes.
 * config, lb, notify, cli and os import it; it imports nothing of keepvs.
 */
import ipaddr from 'ipaddr.js';

/** IP version, as config/model's Family. */
export type Family = 4 | 6;

/** Canonical text of an address of the given family, or null if it is not one. */
export function canonicalAddress(text: string, family: Family): string | null {
  try {
    if (family === 4) {
      if (!ipaddr.IPv4.isValidFourPartDecimal(text)) return null;
      return ipaddr.IPv4.parse(text).toString();
    }
    if (!ipaddr.IPv6.isValid(text)) return null;
    return ipaddr.IPv6.parse(text).toString();
  } catch {
    return null;
  }
}

/** Fast IPv4 dotted-quad to uint32, or -1. */
export function parseV4(text: string): number {
  let value = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || part > 255) return -1;
      value = value * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57) {
      part = part * 10 + (c - 48);
      digits++;
      if (digits > 3) return -1;
    } else return -1;
  }
  if (dots !== 3 || digits === 0 || part > 255) return -1;
  return value * 256 + part;
}

export function v4ToText(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

/** The four 32-bit words of an IPv6 address. */
function v6Words(text: string): [number, number, number, number] | null {
  try {
    const p = ipaddr.IPv6.parse(text).parts;
    return [
      ((p[0] << 16) | p[1]) >>> 0,
      ((p[2] << 16) | p[3]) >>> 0,
      ((p[4] << 16) | p[5]) >>> 0,
      ((p[6] << 16) | p[7]) >>> 0,
    ];
  } catch {
    return null;
  }
}

/** 32-bit fold of an address in host order: IPv4 value, or XOR of the IPv6 words (as IPVS). */
export function addressFold(text: string): number {
  const v4 = parseV4(text);
  if (v4 >= 0) return v4 >>> 0;
  const w = v6Words(text);
  if (!w) return 0;
  return (w[0] ^ w[1] ^ w[2] ^ w[3]) >>> 0;
}

/** The address with all bits after `prefixLen` cleared, as canonical text (persistence granularity). */
export function maskAddress(text: string, family: Family, prefixLen: number): string {
  if (family === 4) {
    const v = parseV4(text);
    if (v < 0) return text;
    const mask = prefixLen <= 0 ? 0 : prefixLen >= 32 ? 0xffffffff : (0xffffffff << (32 - prefixLen)) >>> 0;
    return v4ToText((v & mask) >>> 0);
  }
  try {
    const bytes = ipaddr.IPv6.parse(text).toByteArray();
    for (let i = 0; i < 16; i++) {
      const keep = Math.max(0, Math.min(8, prefixLen - i * 8));
      bytes[i] &= keep === 0 ? 0 : (0xff << (8 - keep)) & 0xff;
    }
    return ipaddr.fromByteArray(bytes).toString();
  } catch {
    return text;
  }
}

/** Prefix length of a contiguous IPv4 netmask (`255.255.255.0` -> 24), or null. */
export function netmaskToPrefix(mask: string): number | null {
  const v = parseV4(mask);
  if (v < 0) return null;
  let len = 0;
  while (len < 32 && (v >>> (31 - len)) & 1) len++;
  const rebuilt = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  return rebuilt === v ? len : null;
}

/** Dotted IPv4 netmask of a prefix length (24 -> `255.255.255.0`). */
export function prefixToNetmask(len: number): string {
  return v4ToText(len <= 0 ? 0 : len >= 32 ? 0xffffffff : (0xffffffff << (32 - len)) >>> 0);
}

/** Prefix length of an IPv4 netmask or a bare number (`255.255.255.0`, `24`); IPv6 takes a number only. */
export function maskTextToPrefix(mask: string, family: Family): number | null {
  if (/^\d+$/.test(mask)) return Number(mask);
  return family === 4 ? netmaskToPrefix(mask) : null;
}

/** The 4 or 16 bytes of an address (IPv6 without a zone). */
export function addressBytes(text: string): Uint8Array {
  return Uint8Array.from(ipaddr.parse(text).toByteArray());
}

/** Canonical text of 4 or 16 address bytes (IPv6 in its compact form, as Node prints it). */
export function addressFromBytes(bytes: ArrayLike<number>): string {
  return ipaddr.fromByteArray(Array.from(bytes)).toString();
}

/** An address as it stands before `:port`: IPv6 in brackets (`[2001:db8::1]`). */
export function hostText(address: string, family: Family): string {
  return family === 6 ? `[${address}]` : address;
}

// linux/socket.h
export const AF_INET = 2;
export const AF_INET6 = 10;

/**
 * struct sockaddr_in (16 bytes) or sockaddr_in6 (28 bytes) for an address and port. An IPv6
 * address may carry a zone (`fe80::1%eth0`); `scopeId` turns the zone into sin6_scope_id (the
 * interface index lookup is the caller's: os/libc encodeSockaddr), else `scopeId` is used as is.
 */
export function sockaddrBytes(address: string, port: number, scopeId: number | ((zone: string) => number) = 0): Buffer {
  const zoned = address.indexOf('%');
  const bare = zoned < 0 ? address : address.slice(0, zoned);
  if (bare.includes(':')) {
    const b = Buffer.alloc(28);
    b.writeUInt16LE(AF_INET6, 0);
    b.writeUInt16BE(port, 2);
    Buffer.from(ipaddr.IPv6.parse(bare).toByteArray()).copy(b, 8);
    const scope = typeof scopeId === 'number' ? scopeId : zoned >= 0 ? scopeId(address.slice(zoned + 1)) : 0;
    b.writeUInt32LE(scope, 24);
    return b;
  }
  const b = Buffer.alloc(16);
  b.writeUInt16LE(AF_INET, 0);
  b.writeUInt16BE(port, 2);
  const parts = bare.split('.');
  for (let i = 0; i < 4; i++) b[4 + i] = Number(parts[i] ?? 0);
  return b;
}

export interface SocketAddress {
  address: string;
  port: number;
}

/** Reads back a sockaddr filled by the kernel (IPv6 in its compact form, as Node prints it). */
export function decodeSockaddr(b: Buffer): SocketAddress | null {
  const family = b.readUInt16LE(0);
  const port = b.readUInt16BE(2);
  if (family === AF_INET) return { address: `${b[4]}.${b[5]}.${b[6]}.${b[7]}`, port };
  if (family === AF_INET6) return { address: addressFromBytes(b.subarray(8, 24)), port };
  return null;
}
