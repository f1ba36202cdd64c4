/**
 * mh: Maglev hashing (ip_vs_mh.c). A prime-sized lookup table (default 4093) is filled
 * from per-destination (offset, skip) permutations, each destination taking
 * `(last_weight / gcd) >> rshift` turns per round, so its share of slots is proportional
 * to its weight. Built from last_weight: a quiesced (weight 0) server keeps its slots but
 * is unavailable (null, or with `mh-fallback` the next slot of the client's probe
 * sequence). `mh-port` hashes the source port too.
 *
 * Deviations: IPVS hashes with hsiphash; this uses a murmur3-style 32-bit mix with two
 * seeds (same algorithm and distribution, different concrete slot assignment). IPVS fills the
 * table in list order (history); this fills it in identity order, so two directors with the same
 * servers and weights build the same table (identityOrder in types.ts).
 */
import {
  type DestChange,
  gcd,
  identityOrder,
  type SchedClient,
  type SchedDest,
  type SchedService,
  type Scheduler,
} from './types.js';

export const MH_DEFAULT_TABLE_SIZE = 4093;
/** IP_VS_MH_TAB_BITS = CONFIG_IP_VS_MH_TAB_INDEX(12) / 2 */
const TAB_BITS = 6;
const SEED1 = 2654435761;
const SEED2 = 2654446892;

function mix32(v: number, seed: number): number {
  let h = (v ^ seed) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  h ^= h >>> 16;
  h = Math.imul(h ^ seed, 0x27d4eb2f);
  return (h ^ (h >>> 15)) >>> 0;
}

function hashKey(addrFold: number, port: number, seed: number, offset: number): number {
  return mix32((offset + port + addrFold) >>> 0, seed);
}

const fls = (x: number): number => (x === 0 ? 0 : 32 - Math.clz32(x));
const unavailable = (d: SchedDest): boolean => d.weight <= 0 || d.overloaded;

export class MaglevHashing implements Scheduler {
  readonly name = 'mh';
  /**
   * The lookup table: per slot, the position of its destination in `built` (-1: none). Indexes, not
   * object references, so that a table of a million slots is one typed array.
   */
  private readonly lookupIndex: Int32Array;
  /** the destination list the table was last built from, in the service's list order */
  private built: readonly SchedDest[] = [];

  constructor(readonly tableSize = MH_DEFAULT_TABLE_SIZE) {
    this.lookupIndex = new Int32Array(tableSize).fill(-1);
  }

  private at(slot: number): SchedDest | null {
    const k = this.lookupIndex[slot];
    return k < 0 ? null : this.built[k];
  }

  pick(svc: SchedService, client: SchedClient): SchedDest | null {
    const port = svc.flags.has('mh-port') ? client.port : 0;
    const size = this.tableSize;
    const first = hashKey(client.addrFold, port, SEED1, 0) % size;
    const d = this.at(first);
    if (!d) return null;
    if (!unavailable(d)) return d;
    if (!svc.flags.has('mh-fallback')) return null;
    for (let offset = 0; offset < size; offset++) {
      const alt = this.at(hashKey(client.addrFold, port, SEED1, (offset + first) % size) % size);
      if (!alt) break;
      if (!unavailable(alt)) return alt;
    }
    return null;
  }

  destsChanged(svc: SchedService, _change?: DestChange): void {
    const size = this.tableSize;
    this.built = [...svc.dests];
    const dests = identityOrder(svc.dests);
    // the table holds list positions (what slotIndexes() answers), filled in identity order
    const listIndex = new Map(svc.dests.map((d, i) => [d, i]));
    const position = Int32Array.from(dests, (d) => listIndex.get(d) ?? -1);
    let g = 0;
    let maxW = 0;
    for (const d of dests) {
      if (d.lastWeight > 0) g = g > 0 ? gcd(d.lastWeight, g) : d.lastWeight;
      if (d.lastWeight > maxW) maxW = d.lastWeight;
    }
    this.lookupIndex.fill(-1);
    if (g < 1 || dests.length > size) return;
    const rshift = Math.max(0, fls(Math.floor(maxW / g)) - TAB_BITS);
    const n = dests.length;
    const perm = new Int32Array(n);
    const skip = new Int32Array(n);
    const turns = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const d = dests[i];
      perm[i] = hashKey(d.addrFold, d.port, SEED1, 0) % size;
      skip[i] = (hashKey(d.addrFold, d.port, SEED2, 0) % (size - 1)) + 1;
      const lw = d.lastWeight;
      turns[i] = Math.floor(lw / g) >> rshift || (lw !== 0 ? 1 : 0);
    }
    const taken = new Uint8Array(size);
    let filled = 0;
    while (filled < size) {
      for (let i = 0; i < n && filled < size; i++) {
        for (let t = 0; t < turns[i] && filled < size; t++) {
          let c = perm[i];
          while (taken[c]) {
            c += skip[i];
            if (c >= size) c -= size;
          }
          perm[i] = c;
          taken[c] = 1;
          this.lookupIndex[c] = position[i];
          filled++;
        }
      }
    }
  }
  loadChanged(): void {}
  /** the lookup table itself, slot by slot (the kernel TUN plane copies it into its slot map) */
  slotTable(): readonly (SchedDest | null)[] {
    return Array.from(this.lookupIndex, (k) => (k < 0 ? null : this.built[k]));
  }
  /** the lookup table as indexes into the service's destination list it was built from (-1: none) */
  slotIndexes(): Int32Array {
    return this.lookupIndex;
  }
  /** slots per destination (tests, diagnostics) */
  slotShare(): Map<SchedDest, number> {
    const m = new Map<SchedDest, number>();
    for (const k of this.lookupIndex) if (k >= 0) m.set(this.built[k], (m.get(this.built[k]) ?? 0) + 1);
    return m;
  }
}

export const createMaglevHashing = (): MaglevHashing => new MaglevHashing();
