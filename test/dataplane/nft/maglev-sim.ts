/**
 * The Maglev simulation's pieces (test/dataplane/nft/maglev-scale.test.ts, bench/maglev-scale.ts):
 * a pool of real servers, a director's slot map as the kernel plane builds it (slots.ts), and the
 * fraction of slots two maps disagree on.
 */
import assert from 'node:assert/strict';
import { type SlotDest, slotTable } from '../../../src/dataplane/nft/slots.js';
import { seededRandom } from '../../../src/util/seeded-random.js';

export const SERVERS = 10_000;
const FALLBACK = new Set(['mh-fallback']);

export const rng = seededRandom;

export function mix(v: number, seed: number): number {
  let h = (v ^ seed) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

export const server = (i: number, weight = 1): SlotDest => ({
  address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
  port: 80,
  weight,
  lastWeight: weight,
  overloaded: false,
  activeConns: 0,
  inactConns: 0,
});
export const pool = (weightOf: (i: number) => number = () => 1) =>
  Array.from({ length: SERVERS }, (_, i) => server(i + 1, weightOf(i)));

export function shuffled<T>(xs: readonly T[], seed: number): T[] {
  const r = rng(seed);
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** Each real server's number, from its address (directors hold them at different list positions). */
export const serverNo = (address: string): number => {
  const [, b, c, d] = address.split('.').map(Number);
  return (b << 16) | (c << 8) | d;
};

/** A director's slot map as real-server numbers (its own indexes differ with its list order); -1: none. */
export function addressMap(dests: readonly SlotDest[], flags = FALLBACK): Int32Array {
  const t = slotTable('mh', flags, dests, true);
  const ids = dests.map((d) => serverNo(d.address));
  return Int32Array.from(t.slots, (i) => (i >= 0 ? ids[i] : -1));
}

/** Fraction of slots (so of uniformly hashed flows) whose real server differs. */
export function moved(a: Int32Array, b: Int32Array): number {
  assert.equal(a.length, b.length);
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) n++;
  return n / a.length;
}
