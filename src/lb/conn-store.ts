/**
 * Struct-of-arrays storage for connection entries: about 40 bytes per entry instead of
 * a JS object per connection. Slots are recycled through a free list; a generation
 * number per slot lets stale handles detect that their entry is gone.
 *
 * Expiry uses a 1-second bucket wheel: an entry is queued in the bucket of its expiry
 * second. Re-arming later (every packet) does not move it; when its bucket comes due
 * and the entry is not yet expired it is re-queued. Re-arming earlier queues it again
 * in the earlier bucket; `queuedAt` tells live queue positions from stale ones.
 */

export const F_USED = 1;
export const F_TEMPLATE = 2;
/** counted in InActConn (IPVS IP_VS_CONN_F_INACTIVE) */
export const F_INACTIVE = 4;
export const F_OPS = 8;
export const F_V6 = 16;
/** template no longer found by lookups (IPVS unhashed it) */
export const F_UNHASHED = 32;
/** protocol in bits 6-7: 0 tcp, 1 udp, 2 sctp */
export const PROTO_SHIFT = 6;

export class ConnStore {
  capacity = 0;
  /** number of live entries */
  count = 0;
  clientV4 = new Uint32Array(0);
  clientPort = new Uint16Array(0);
  destRef = new Uint32Array(0);
  state = new Uint8Array(0);
  flags = new Uint8Array(0);
  expires = new Float64Array(0);
  queuedAt = new Int32Array(0);
  gen = new Uint32Array(0);
  control = new Int32Array(0);
  nControl = new Uint32Array(0);
  /** IPv6 client addresses (rare enough to keep aside) */
  readonly clientV6 = new Map<number, string>();
  private freeList = new Int32Array(0);
  private freeTop = 0;
  private readonly wheel = new Map<number, number[]>();
  private wheelCursor = -1;

  constructor(initialCapacity = 1024) {
    this.grow(initialCapacity);
  }

  private grow(to: number): void {
    const old = this.capacity;
    const copy = <T extends Uint32Array | Uint16Array | Uint8Array | Float64Array | Int32Array>(
      a: T,
      make: (n: number) => T,
    ): T => {
      const b = make(to);
      b.set(a);
      return b;
    };
    this.clientV4 = copy(this.clientV4, (n) => new Uint32Array(n));
    this.clientPort = copy(this.clientPort, (n) => new Uint16Array(n));
    this.destRef = copy(this.destRef, (n) => new Uint32Array(n));
    this.state = copy(this.state, (n) => new Uint8Array(n));
    this.flags = copy(this.flags, (n) => new Uint8Array(n));
    this.expires = copy(this.expires, (n) => new Float64Array(n));
    this.queuedAt = copy(this.queuedAt, (n) => new Int32Array(n));
    this.gen = copy(this.gen, (n) => new Uint32Array(n));
    this.control = copy(this.control, (n) => new Int32Array(n));
    this.nControl = copy(this.nControl, (n) => new Uint32Array(n));
    const free = new Int32Array(to);
    free.set(this.freeList.subarray(0, this.freeTop));
    // new slots pushed so that the lowest index is handed out first
    for (let s = to - 1; s >= old; s--) free[this.freeTop++] = s;
    this.freeList = free;
    this.capacity = to;
  }

  alloc(): number {
    if (this.freeTop === 0) this.grow(this.capacity * 2);
    const slot = this.freeList[--this.freeTop];
    this.flags[slot] = F_USED;
    this.control[slot] = -1;
    this.nControl[slot] = 0;
    this.queuedAt[slot] = -1;
    this.count++;
    return slot;
  }

  free(slot: number): void {
    this.flags[slot] = 0;
    this.gen[slot] = (this.gen[slot] + 1) >>> 0;
    this.queuedAt[slot] = -1;
    this.clientV6.delete(slot);
    this.freeList[this.freeTop++] = slot;
    this.count--;
  }

  used(slot: number): boolean {
    return (this.flags[slot] & F_USED) !== 0;
  }

  /** Sets the expiry time and makes sure the entry is queued no later than it. */
  arm(slot: number, expiresAt: number): void {
    this.expires[slot] = expiresAt;
    const bucket = Math.ceil(expiresAt / 1000);
    const q = this.queuedAt[slot];
    if (q >= 0 && q <= bucket) return;
    this.queue(slot, Math.max(bucket, this.wheelCursor + 1));
  }

  private queue(slot: number, bucket: number): void {
    let list = this.wheel.get(bucket);
    if (!list) {
      list = [];
      this.wheel.set(bucket, list);
    }
    list.push(slot);
    this.queuedAt[slot] = bucket;
  }

  /**
   * Calls `expire(slot)` for every entry due at `now` (ms). `expire` either frees the
   * slot or re-arms it (templates with controlled connections).
   */
  sweep(now: number, expire: (slot: number) => void): void {
    const upTo = Math.floor(now / 1000);
    // first sweep, or a long jump: visit only the buckets that exist
    if (this.wheelCursor < 0 || upTo - this.wheelCursor > 4096) {
      const due = [...this.wheel.keys()].filter((b) => b <= upTo).sort((a, b) => a - b);
      for (const b of due) this.sweepBucket(b, now, expire);
      this.wheelCursor = upTo;
      return;
    }
    while (this.wheelCursor < upTo) {
      this.wheelCursor++;
      this.sweepBucket(this.wheelCursor, now, expire);
    }
  }

  private sweepBucket(b: number, now: number, expire: (slot: number) => void): void {
    const list = this.wheel.get(b);
    if (!list) return;
    this.wheel.delete(b);
    for (const slot of list) {
      if (!this.used(slot) || this.queuedAt[slot] !== b) continue;
      this.queuedAt[slot] = -1;
      if (this.expires[slot] <= now) expire(slot);
      else this.queue(slot, Math.max(Math.ceil(this.expires[slot] / 1000), this.wheelCursor + 1));
    }
  }

  /** Bytes held by the typed columns (capacity-based). */
  columnBytes(): number {
    return this.capacity * (4 + 2 + 4 + 1 + 1 + 8 + 4 + 4 + 4 + 4 + 4);
  }
}
