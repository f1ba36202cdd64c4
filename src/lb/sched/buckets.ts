/**
 * The 256-bucket table dh and sh share (IP_VS_SH_TAB_SIZE / IP_VS_DH_TAB_SIZE): buckets are
 * filled in list order, each destination taking `weight` consecutive buckets (sh) or one (dh),
 * cycling until the table is full. Destinations with weight 0 are left out.
 */
import type { SchedDest } from './scheduler.js';

export const TABLE_SIZE = 256;

export function buildBuckets(dests: readonly SchedDest[], weighted: boolean): (SchedDest | null)[] {
  const table: (SchedDest | null)[] = new Array(TABLE_SIZE).fill(null);
  const live = dests.filter((d) => d.weight > 0);
  if (live.length === 0) return table;
  let i = 0;
  let di = 0;
  let left = weighted ? live[0].weight : 1;
  while (i < TABLE_SIZE) {
    table[i++] = live[di];
    if (--left <= 0) {
      di = (di + 1) % live.length;
      left = weighted ? live[di].weight : 1;
    }
  }
  return table;
}
