/**
 * mh: Maglev hashing (ip_vs_mh.c, after Google's Maglev paper §3.4). Each destination gets a
 * permutation (offset, skip) of a prime-sized table and claims slots in turn, `weight / gcd`
 * slots per round, so slots are weight-proportional and removing one of N destinations remaps
 * only about 1/N of keys. Weight-0 destinations keep their slots (built from the last non-zero
 * weight) but are unavailable; `mh-fallback` then walks on, `mh-port` hashes the port too.
 */
import { eligible, gcd, hashAddress, type SchedDest, type Scheduler, type SchedulerOptions } from './scheduler.js';

/** CONFIG_IP_VS_MH_TAB_INDEX default 12 -> 4093 slots. */
export const MH_TABLE_SIZE = 4093;

function hashString(s: string, seed: number): number {
  let h = seed >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h >>> 0;
}

export function buildMaglev(dests: readonly SchedDest[], size = MH_TABLE_SIZE): (SchedDest | null)[] {
  const table: (SchedDest | null)[] = new Array(size).fill(null);
  const members = dests.filter((d) => d.lastWeight > 0);
  if (members.length === 0) return table;
  let g = 0;
  for (const d of members) g = gcd(g, d.lastWeight);
  const perm = members.map((d) => {
    const key = `${d.address}:${d.port}`;
    return {
      d,
      offset: hashString(key, 2654435761) % size,
      skip: (hashString(key, 40503) % (size - 1)) + 1,
      next: 0,
      turns: d.lastWeight / g,
    };
  });
  let filled = 0;
  while (filled < size) {
    for (const p of perm) {
      for (let t = 0; t < p.turns && filled < size; t++) {
        let slot = (p.offset + p.next * p.skip) % size;
        while (table[slot] !== null) {
          p.next++;
          slot = (p.offset + p.next * p.skip) % size;
        }
        table[slot] = p.d;
        p.next++;
        filled++;
      }
      if (filled >= size) break;
    }
  }
  return table;
}

export function createMh(options: SchedulerOptions): Scheduler {
  const hashPort = options.flags.includes('mh-port');
  const fallback = options.flags.includes('mh-fallback');
  let table: (SchedDest | null)[] = [];
  return {
    name: 'mh',
    update(dests) {
      table = buildMaglev(dests);
    },
    pick(_dests, input) {
      if (table.length === 0) return null;
      const start = hashAddress(input.client.address, hashPort ? input.client.port : 0) % table.length;
      const d = table[start];
      if (d && eligible(d)) return d;
      if (!fallback) return null;
      for (let k = 1; k < table.length; k++) {
        const x = table[(start + k) % table.length];
        if (x && eligible(x)) return x;
      }
      return null;
    },
  };
}
