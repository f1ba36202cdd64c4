/**
 * Scheduler and connection-table benchmark.
 *   npx tsc -p . && node --expose-gc dist/bench/sched.js [--quick]
 * 1. picks/s per scheduler at 10/100/1000 real servers, measured through the table
 *    (open + setState + close: scheduler, accounting and heap updates), with a naive
 *    IPVS-style list scan for wlc printed beside the heap version as the baseline.
 * 2. bytes per connection entry for 1,000,000 live entries (process.memoryUsage
 *    before/after), next to a Map of the same count holding one small object per
 *    connection (the obvious JS layout), printed as a ratio.
 */
import { SCHEDULERS } from '../src/lb/sched/index.js';
import type { SchedDest, SchedService, Scheduler } from '../src/lb/sched/types.js';
import { LbTable } from '../src/lb/table.js';
import type { ServiceKey } from '../src/lb/types.js';
import { FakeClock } from '../src/util/clock.js';

const quick = process.argv.includes('--quick');
const BUDGET_MS = quick ? 60 : 250;
const gc = (globalThis as { gc?: () => void }).gc;

const key: ServiceKey = { kind: 'addr', protocol: 'tcp', family: 4, address: '198.18.0.100', port: 80 };

/** Baseline: IPVS's wlc as written in ip_vs_wlc.c, a list scan per pick. */
class ScanWlc implements Scheduler {
  readonly name = 'wlc-scan';
  pick(svc: SchedService): SchedDest | null {
    let least: SchedDest | null = null;
    let loh = 0;
    for (const d of svc.dests) {
      if (d.weight <= 0 || d.overloaded) continue;
      const doh = d.activeConns * 256 + d.inactConns;
      if (!least || loh * d.weight > doh * least.weight) {
        least = d;
        loh = doh;
      }
    }
    return least;
  }
  destsChanged(): void {}
  loadChanged(): void {}
}
const registry = { ...SCHEDULERS, 'wlc-scan': () => new ScanWlc() };

function makeTable(scheduler: string, n: number): LbTable {
  const table = new LbTable({ clock: new FakeClock(), schedulers: registry });
  const added = table.apply({ op: 'add-service', key, params: { scheduler, schedFlags: [], ops: false } });
  if (!added.ok) throw new Error(`bench setup: ${added.error.message}`);
  for (let i = 0; i < n; i++) {
    table.apply({
      op: 'add-dest',
      key,
      dest: { address: `198.18.${(i >> 8) & 255}.${i & 255}`, port: 80 },
      params: { forward: 'masq', weight: 1 + (i % 5), uThreshold: 0, lThreshold: 0 },
    });
  }
  return table;
}

const clients = Array.from({ length: 4096 }, (_, i) => ({
  address: `10.0.${(i >> 8) & 255}.${i & 255}`,
  port: 1024 + i,
}));

/** Operations per second of `fn`, run in batches until the budget is spent. */
function rate(fn: (i: number) => void): number {
  let i = 0;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < BUDGET_MS) {
    for (let k = 0; k < 1000; k++) fn(i++);
    elapsed = performance.now() - start;
  }
  return (i / elapsed) * 1000;
}

function benchScheduler(scheduler: string, n: number): number {
  const table = makeTable(scheduler, n);
  // keep a standing load so least-connection schedulers have work to do
  const live: ({ close(): void } | null)[] = [];
  for (let i = 0; i < n; i++) {
    const h = table.open(key, clients[i % clients.length]);
    h?.setState('ESTABLISHED');
    live.push(h);
  }
  let ring = 0;
  const r = rate((i) => {
    const h = table.open(key, clients[i & 4095]);
    if (!h) throw new Error(`${scheduler}: no destination`);
    h.setState('ESTABLISHED');
    live[ring]?.close();
    live[ring] = h;
    ring = (ring + 1) % live.length;
  });
  table.dispose();
  return r;
}

function heapUsed(): number {
  gc?.();
  gc?.();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

function benchMemory(count: number): void {
  if (!gc) console.log('  (run with --expose-gc for stable memory figures)');
  // baseline: a Map of `count` small objects, one per connection
  let before = heapUsed();
  const map = new Map<number, { client: number; port: number; dest: number; state: number; expires: number }>();
  for (let i = 0; i < count; i++) map.set(i, { client: i, port: i & 65535, dest: i % 10, state: 1, expires: i });
  const mapBytes = (heapUsed() - before) / count;
  map.clear();
  before = heapUsed();
  const bare = new Map<number, number>();
  for (let i = 0; i < count; i++) bare.set(i, i);
  const bareBytes = (heapUsed() - before) / count;
  bare.clear();

  before = heapUsed();
  const table = makeTable('wlc', 10);
  for (let i = 0; i < count; i++) {
    const h = table.open(key, {
      address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
      port: 1024 + (i % 60000),
    });
    h?.setState('ESTABLISHED');
  }
  const tableBytes = (heapUsed() - before) / count;
  console.log(
    `  ${table.connectionCount().toLocaleString('en-US')} entries: table ${tableBytes.toFixed(1)} B/entry ` +
      `(typed columns ${(table.connColumnBytes() / count).toFixed(1)} B/entry at capacity), ` +
      `Map-of-objects baseline ${mapBytes.toFixed(1)} B/entry (ratio ${(tableBytes / mapBytes).toFixed(2)}), ` +
      `bare Map<number,number> ${bareBytes.toFixed(1)} B/entry (ratio ${(tableBytes / bareBytes).toFixed(2)})`,
  );
  table.dispose();
}

const schedulers = ['rr', 'wrr', 'lc', 'wlc', 'sed', 'nq', 'fo', 'ovf', 'dh', 'sh', 'lblc', 'lblcr', 'mh', 'twos'];
const sizes = [10, 100, 1000];
console.log(`picks/s through LbTable.open+setState+close (budget ${BUDGET_MS} ms each)`);
console.log(`  ${'sched'.padEnd(6)}${sizes.map((n) => `${n} RS`.padStart(14)).join('')}`);
for (const s of schedulers) {
  const row = sizes.map((n) => Math.round(benchScheduler(s, n)).toLocaleString('en-US').padStart(14));
  console.log(`  ${s.padEnd(6)}${row.join('')}`);
}
// side by side: the heap wlc and the IPVS list-scan wlc through the same table path
const cmpSizes = [...sizes, 10_000];
const wlc: number[] = [];
const base: number[] = [];
for (const n of cmpSizes) {
  wlc.push(benchScheduler('wlc', n));
  base.push(benchScheduler('wlc-scan', n));
}
const fmt = (rs: number[]): string => rs.map((r) => Math.round(r).toLocaleString('en-US').padStart(14)).join('');
console.log(`  ${''.padEnd(6)}${cmpSizes.map((n) => `${n} RS`.padStart(14)).join('')}`);
console.log(`  ${'wlc'.padEnd(6)}${fmt(wlc)}   (again, interleaved with the baseline)`);
console.log(`  ${'scan'.padEnd(6)}${fmt(base)}   (baseline: IPVS wlc list scan, same table path)`);
console.log(`  wlc/scan ratio: ${cmpSizes.map((n, i) => `${n} RS ${(wlc[i] / base[i]).toFixed(2)}x`).join(', ')}`);
console.log('memory per connection entry');
benchMemory(quick ? 100_000 : 1_000_000);
