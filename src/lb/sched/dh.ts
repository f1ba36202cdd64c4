/** dh: destination hashing (ip_vs_dh.c): the virtual address picks the bucket; no fallback. */
import { buildBuckets, TABLE_SIZE } from './buckets.js';
import { eligible, hashAddress, type SchedDest, type Scheduler } from './scheduler.js';

export function createDh(): Scheduler {
  let table: (SchedDest | null)[] = [];
  return {
    name: 'dh',
    update(dests) {
      table = buildBuckets(dests, false);
    },
    pick(_dests, input) {
      const d = table[hashAddress(input.vip.address) % TABLE_SIZE];
      return d && eligible(d) ? d : null;
    },
  };
}
