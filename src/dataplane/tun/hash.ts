/**
 * The flow hash of tun_encap.bpf.c (murmur3 rounds over the words the service hashes), mirrored so
 * tests can predict which real server a flow reaches and two directors agree without coordination.
 */
import type { Family } from '../../config/model.js';
import { addressBytes, KV_HASH_DADDR, KV_HASH_SADDR, KV_HASH_SPORT } from './layout.js';

function mix(h: number, v: number): number {
  v = Math.imul(v, 0xcc9e2d51);
  v = (v << 15) | (v >>> 17);
  v = Math.imul(v, 0x1b873593);
  h ^= v;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) >>> 0;
}

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The address's words as the program loads them: little-endian u32 of network-order bytes. */
function words(address: string, family: Family, prefix: number): number[] {
  const b = addressBytes(address);
  const v = new DataView(b.buffer);
  const out: number[] = [];
  for (let i = 0; i < (family === 4 ? 1 : 4); i++) {
    const bits = Math.max(0, Math.min(32, prefix - i * 32));
    const maskBe = bits === 0 ? 0 : bits === 32 ? 0xffffffff : (0xffffffff << (32 - bits)) >>> 0;
    out.push((v.getUint32(i * 4, true) & swap32(maskBe)) >>> 0);
  }
  return out;
}

const swap32 = (x: number): number =>
  (((x & 0xff) << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) | (x >>> 24)) >>> 0;

/** Network-order 16-bit port as the program loads it (a little-endian u16 of the wire bytes). */
const portWord = (port: number): number => ((port & 0xff) << 8) | (port >>> 8);

export interface FlowFields {
  readonly family: Family;
  readonly saddr: string;
  readonly sport: number;
  readonly daddr: string;
}

export function flowHash(f: FlowFields, flags: number, prefix: number): number {
  let h = 0;
  if (flags & KV_HASH_SADDR) for (const w of words(f.saddr, f.family, prefix)) h = mix(h, w);
  if (flags & KV_HASH_SPORT) h = mix(h, portWord(f.sport));
  if (flags & KV_HASH_DADDR) for (const w of words(f.daddr, f.family, 128)) h = mix(h, w);
  return fmix(h);
}
