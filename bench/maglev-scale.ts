/**
 * The 100-director Maglev simulation in full (docs/scale-out.md): 100 directors, each building its
 * own slot map for 10,000 real servers (1048573 slots) from its own list order, as the kernel plane
 * does (slots.ts), compared slot by slot with the first; then what moves when a real server is
 * removed, quiesced or re-weighted. Prints the build times (median, max) and the figures. The CI
 * test (test/dataplane/nft/maglev-scale.test.ts) builds 8 of them.
 * Usage: node dist/bench/maglev-scale.js [DIRECTORS=100]
 */
import { readFileSync } from 'node:fs';
import { addressMap, moved, pool, SERVERS, server, shuffled } from '../test/dataplane/nft/maglev-sim.js';

const directors = Number(process.argv[2] ?? 100);
const servers = pool((i) => 1 + (i % 3));
const times: number[] = [];
const timed = <T>(f: () => T): T => {
  const t0 = performance.now();
  const r = f();
  times.push(performance.now() - t0);
  return r;
};
const reference = timed(() => addressMap(servers));
let differing = 0;
for (let d = 1; d < directors; d++) {
  const own = timed(() => addressMap(shuffled(servers, d)));
  if (moved(reference, own) !== 0) differing++;
}
times.sort((a, b) => a - b);
const equal = pool();
const base = addressMap(equal);
const out = {
  date: new Date().toISOString(),
  load: readFileSync('/proc/loadavg', 'utf8').trim(),
  directors,
  servers: SERVERS,
  slots: reference.length,
  directorsDifferingFromTheFirst: differing,
  buildMs: { median: Math.round(times[times.length >> 1]), max: Math.round(times[times.length - 1]) },
  movedFraction: {
    oneRemoved: moved(base, addressMap(equal.filter((_, i) => i !== 500))),
    oneQuiesced: moved(base, addressMap(equal.map((s, i) => (i === 500 ? { ...s, weight: 0 } : s)))),
    tenRemoved: moved(base, addressMap(equal.filter((_, i) => i % 1000 !== 7))),
    oneWeight1to2: moved(base, addressMap(equal.map((s, i) => (i === 500 ? server(501, 2) : s)))),
  },
};
process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
if (differing) process.exitCode = 1;
