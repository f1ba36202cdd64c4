/**
 * Indexed binary heap: O(log n) insert, remove and re-key of a known item, O(1) peek.
 * Lets lc/wlc/sed/nq/fo/ovf answer in O(log n) where IPVS scans its list; the
 * ordering function carries IPVS's tie-break (list order), so the choice is the same.
 */
export class IndexedHeap<T> {
  private readonly items: T[] = [];
  private readonly pos = new Map<T, number>();

  constructor(private readonly before: (a: T, b: T) => boolean) {}

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
    this.items.length = 0;
    this.pos.clear();
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
