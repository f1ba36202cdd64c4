/**
 * Indexed binary heap: O(log n) insert, remove and re-key of a known item, O(1) peek.
 * Lets lc/wlc/sed/nq/fo/ovf answer in O(log n) where IPVS scans its list; the
 * ordering function carries IPVS's tie-break (list order), so the choice is the same.
 */
/** Items carry their heap positions in `heapPos[slot]` (-1 = absent): no Map lookups per swap. */
export interface HeapItem {
  readonly heapPos: Int32Array;
}

/** Positions stored per item: one slot per heap an item can be in at once. */
export const HEAP_SLOTS = 2;

class PosView<T extends HeapItem> {
  constructor(private readonly slot: number) {}
  get(item: T): number | undefined {
    const p = item.heapPos[this.slot];
    return p < 0 ? undefined : p;
  }
  has(item: T): boolean {
    return item.heapPos[this.slot] >= 0;
  }
  set(item: T, i: number): void {
    item.heapPos[this.slot] = i;
  }
  delete(item: T): void {
    item.heapPos[this.slot] = -1;
  }
}

export class IndexedHeap<T extends HeapItem> {
  private readonly items: T[] = [];
  private readonly pos: PosView<T>;

  /** `slot` (0..HEAP_SLOTS-1) must differ between heaps that hold the same item at once. */
  constructor(
    private readonly before: (a: T, b: T) => boolean,
    slot = 0,
  ) {
    this.pos = new PosView<T>(slot);
  }

  get size(): number {
    return this.items.length;
  }
  peek(): T | undefined {
    return this.items[0];
  }
  has(item: T): boolean {
    return this.pos.has(item);
  }
  clear(): void {
    for (const x of this.items) this.pos.delete(x);
    this.items.length = 0;
  }
  /** Inserts, or re-positions an item already present. */
  upsert(item: T): void {
    const i = this.pos.get(item);
    if (i === undefined) {
      this.items.push(item);
      this.pos.set(item, this.items.length - 1);
      this.up(this.items.length - 1);
    } else if (!this.up(i)) this.down(i);
  }
  remove(item: T): void {
    const i = this.pos.get(item);
    if (i === undefined) return;
    const last = this.items.pop()!;
    this.pos.delete(item);
    if (i < this.items.length) {
      this.items[i] = last;
      this.pos.set(last, i);
      if (!this.up(i)) this.down(i);
    }
  }
  private up(i: number): boolean {
    const x = this.items[i];
    const start = i;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(x, this.items[p])) break;
      this.items[i] = this.items[p];
      this.pos.set(this.items[i], i);
      i = p;
    }
    this.items[i] = x;
    this.pos.set(x, i);
    return i !== start;
  }
  private down(i: number): void {
    const n = this.items.length;
    const x = this.items[i];
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && this.before(this.items[r], this.items[l]) ? r : l;
      if (!this.before(this.items[c], x)) break;
      this.items[i] = this.items[c];
      this.pos.set(this.items[i], i);
      i = c;
    }
    this.items[i] = x;
    this.pos.set(x, i);
  }
}
