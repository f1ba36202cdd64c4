/**
 * sh: source hashing (ip_vs_sh.c). 256 buckets filled in list order, each destination
 * taking `weight` consecutive buckets (at least one); key = hash_32(port + source fold).
 * Flags: `sh-port` hashes the source port too, `sh-fallback` walks to another bucket
 * when the chosen server is unavailable (weight 0 or OVERLOAD). Deviation: the buckets are
 * filled in identity order, not IPVS's list order (history), so two directors agree (types.ts).
 */
import {
  type DestChange,
  identityOrder,
  type SchedClient,
  type SchedDest,
  type SchedService,
  type Scheduler,
} from './types.js';

const BITS = 8;
const BUCKETS = 1 << BITS;

/** The kernel's hash_32(): multiply by GOLDEN_RATIO_32, keep the top bits. */
function hash32(v: number, bits: number): number {
  return Math.imul(v >>> 0, 0x61c88647) >>> (32 - bits);
}

export function shBucket(addrFold: number, port: number, offset: number): number {
  return (offset + hash32((port + addrFold) >>> 0, BITS)) & (BUCKETS - 1);
}

const unavailable = (d: SchedDest): boolean => d.weight <= 0 || d.overloaded;

export class SourceHashing implements Scheduler {
  readonly name = 'sh';
  private readonly buckets: (SchedDest | null)[] = new Array(BUCKETS).fill(null);

  pick(svc: SchedService, client: SchedClient): SchedDest | null {
    const port = svc.flags.has('sh-port') ? client.port : 0;
    const first = shBucket(client.addrFold, port, 0);
    const d = this.buckets[first];
    if (!d) return null;
    if (!unavailable(d)) return d;
    if (!svc.flags.has('sh-fallback')) return null;
    for (let offset = 0; offset < BUCKETS; offset++) {
      const alt = this.buckets[shBucket(client.addrFold, port, (offset + first) % BUCKETS)];
      if (!alt) break;
      if (!unavailable(alt)) return alt;
    }
    return null;
  }
  destsChanged(svc: SchedService, _change?: DestChange): void {
    const dests = identityOrder(svc.dests);
    let p = 0;
    let count = 0;
    for (let i = 0; i < BUCKETS; i++) {
      if (dests.length === 0) {
        this.buckets[i] = null;
        continue;
      }
      if (p >= dests.length) p = 0;
      const d = dests[p];
      this.buckets[i] = d;
      if (++count >= d.weight) {
        p++;
        count = 0;
      }
    }
  }
  loadChanged(): void {}
  /** the 256 buckets in order (the kernel TUN plane copies them into its slot map) */
  bucketTable(): readonly (SchedDest | null)[] {
    return this.buckets;
  }
  /** how many buckets each destination holds (tests, diagnostics) */
  bucketShare(): Map<SchedDest, number> {
    const m = new Map<SchedDest, number>();
    for (const d of this.buckets) if (d) m.set(d, (m.get(d) ?? 0) + 1);
    return m;
  }
}

export const createSourceHashing = (): SourceHashing => new SourceHashing();
