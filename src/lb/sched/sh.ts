/**
 * sh: source hashing (ip_vs_sh.c). The client address (and port with `sh-port`) selects one of
 * 256 buckets; an unavailable, quiesced or overloaded bucket owner means no destination unless
 * `sh-fallback` walks on to the next eligible bucket.
 */
import { buildBuckets, TABLE_SIZE } from './buckets.js';
import { eligible, hashAddress, type SchedDest, type Scheduler, type SchedulerOptions } from './scheduler.js';

export function createSh(options: SchedulerOptions): Scheduler {
  const hashPort = options.flags.includes('sh-port');
  const fallback = options.flags.includes('sh-fallback');
  let table: (SchedDest | null)[] = [];
  return {
    name: 'sh',
    update(dests) {
      table = buildBuckets(dests, true);
    },
    pick(_dests, input) {
      if (table.length === 0) return null;
      const start = hashAddress(input.client.address, hashPort ? input.client.port : 0) % TABLE_SIZE;
      const first = table[start];
      if (first && eligible(first)) return first;
      if (!fallback) return null;
      for (let k = 1; k < TABLE_SIZE; k++) {
        const d = table[(start + k) % TABLE_SIZE];
        if (d && eligible(d)) return d;
      }
      return null;
    },
  };
}
