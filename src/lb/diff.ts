/**
 * Minimal operations that turn one desired table into another. Replaying them is harmless: the
 * table reports "exists"/"no such" for repeats, and the daemon treats those as already applied.
 */
import type { DesiredTable } from './desired.js';
import type { TableOp } from './types.js';

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

export function diffTables(current: DesiredTable, desired: DesiredTable): TableOp[] {
  const ops: TableOp[] = [];
  for (const [id, cur] of current) {
    if (!desired.has(id)) ops.push({ op: 'del-service', key: cur.key });
  }
  for (const [id, want] of desired) {
    const cur = current.get(id);
    if (!cur) {
      ops.push({ op: 'add-service', key: want.key, params: want.params });
      for (const d of want.dests.values()) ops.push({ op: 'add-dest', key: want.key, dest: d.dest, params: d.params });
      continue;
    }
    if (!same(cur.params, want.params)) ops.push({ op: 'edit-service', key: want.key, params: want.params });
    for (const [did, d] of cur.dests)
      if (!want.dests.has(did)) ops.push({ op: 'del-dest', key: want.key, dest: d.dest });
    for (const [did, d] of want.dests) {
      const c = cur.dests.get(did);
      if (!c) ops.push({ op: 'add-dest', key: want.key, dest: d.dest, params: d.params });
      else if (!same(c.params, d.params)) ops.push({ op: 'edit-dest', key: want.key, dest: d.dest, params: d.params });
    }
  }
  return ops;
}
