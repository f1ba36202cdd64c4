/** The Internet checksum (RFC 1071): 16-bit one's complement of the one's complement sum. */
export function onesSum(data: Uint8Array, initial = 0): number {
  let sum = initial;
  for (let i = 0; i + 1 < data.length; i += 2) sum += (data[i] << 8) | data[i + 1];
  if (data.length % 2) sum += data[data.length - 1] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

export function inetChecksum(data: Uint8Array, initial = 0): number {
  return ~onesSum(data, initial) & 0xffff;
}

/** Sum of the IPv4/IPv6 pseudo-header used by VRRPv3 (RFC 5798 §5.2.8): src, dst, zero, protocol 112, length. */
export function pseudoHeaderSum(src: Uint8Array, dst: Uint8Array, protocol: number, length: number): number {
  const ph = new Uint8Array(src.length + dst.length + (src.length === 16 ? 8 : 4));
  ph.set(src, 0);
  ph.set(dst, src.length);
  const o = src.length + dst.length;
  if (src.length === 16) {
    ph[o] = (length >>> 24) & 0xff;
    ph[o + 1] = (length >>> 16) & 0xff;
    ph[o + 2] = (length >>> 8) & 0xff;
    ph[o + 3] = length & 0xff;
    ph[o + 7] = protocol;
  } else {
    ph[o + 1] = protocol;
    ph[o + 2] = (length >>> 8) & 0xff;
    ph[o + 3] = length & 0xff;
  }
  return onesSum(ph);
}
