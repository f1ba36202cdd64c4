/**
 * One weight change in a 1,000-service x 10-real-server kernel ruleset (issue #15: under 5 ms),
 * side by side with its baselines in one interleaved run: the plane's raw nfnetlink batch (what
 * keepvs does), the same change as libnftables incremental commands, as a full atomic rebuild of
 * keepvs's tables through libnftables, and as a spawned `nft -c -f` of the incremental commands.
 * Every change here alters the wrr period (10 -> 9 + w), so each rewrites a rule's modulus too.
 * Root; run it inside a scratch network namespace:
 *   ip netns add kvw && ip netns exec kvw node dist/bench/kernel-weight.js; ip netns del kvw
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ContentBatch } from '../src/codec/nftables.js';
import { NftDataPlane } from '../src/dataplane/nft/plane.js';
import type { DestParams, ServiceKey, TableOp } from '../src/lb/types.js';
import { LibNftables, type NftRunner } from '../src/os/libnftables.js';
import { NftNetlink } from '../src/os/nft-netlink.js';

const SERVICES = Number(process.env.SERVICES ?? 1000);
const RS = Number(process.env.RS ?? 10);
const ROUNDS = Number(process.env.ROUNDS ?? 30);

const lib = new LibNftables();
// The baselines run in contexts of their own: libnftables keeps a cache per context, and a rebuild
// through the plane's context would make the plane's next change refetch 800 KiB of objects, which
// keepvs never does in service (its context only ever sees its own small transactions).
const baselineLib = new LibNftables();
let last = '';
const recording: NftRunner = {
  run(cmds, json) {
    last = cmds;
    return lib.run(cmds, json);
  },
};
const quiet = { log: () => {}, child: () => quiet };
const none = { list: async () => [], flushDest: async () => {} };
const net = {
  deviceOf: async () => null,
  routeDevice: async () => null,
  linkMac: async () => null,
  neighbourMac: async () => null,
};
const netlink = NftNetlink.open();
if (!netlink) throw new Error('no NETLINK_NETFILTER socket');
// the plane's writer, switched off for the libnftables rounds (null: the plane uses libnftables)
let raw = true;
const elements = { apply: (b: ContentBatch) => (raw ? netlink.apply(b) : null) };
const plane = new NftDataPlane({ nft: recording, elements, net, conntrack: none, logger: quiet, pollMs: 0 });
const key = (i: number): ServiceKey => ({
  kind: 'addr',
  protocol: 'tcp',
  family: 4,
  address: `10.${(i >> 8) & 255}.${i & 255}.1`,
  port: 80,
});
const dp = (weight: number): DestParams => ({ forward: 'masq', weight, uThreshold: 0, lThreshold: 0 });
const ops: TableOp[] = [];
for (let i = 0; i < SERVICES; i++) {
  ops.push({ op: 'add-service', key: key(i), params: { scheduler: 'wrr', schedFlags: [], ops: false } });
  for (let r = 0; r < RS; r++)
    ops.push({
      op: 'add-dest',
      key: key(i),
      dest: { address: `172.16.${r}.${(i % 250) + 1}`, port: 8080 },
      params: dp(1),
    });
}
let t = performance.now();
await plane.apply(ops);
const loadMs = performance.now() - t;
const fullText = last;
console.log(
  `# ${new Date().toISOString()} ruleset ${SERVICES} services x ${RS} real servers (${(fullText.length / 1024).toFixed(0)} KiB), loaded in ${loadMs.toFixed(1)} ms`,
);

const dir = mkdtempSync(join(tmpdir(), 'kv-weight-'));
const med = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
// A weight change costs more right after another program changed the ruleset (here the baseline's
// rebuild): the plane's libnftables context then drops and refetches its cache. Both are reported.
const rawMs: number[] = [];
const rawAfterForeign: number[] = [];
const inc: number[] = [];
const incAfterForeign: number[] = [];
const full: number[] = [];
const spawned: number[] = [];
let foreign = false;
const weights = new Map<number, number>();
const change = async (round: number, viaNetlink: boolean) => {
  const i = (round * 37) % SERVICES;
  raw = viaNetlink;
  // never the service's weight before: every change is a real change of its wrr period
  const weight = ((weights.get(i) ?? 1) % 9) + 2;
  weights.set(i, weight);
  const batches = plane.netlinkBatches;
  const runs = plane.transactions;
  const op: TableOp = {
    op: 'edit-dest',
    key: key(i),
    dest: { address: `172.16.0.${(i % 250) + 1}`, port: 8080 },
    params: dp(weight),
  };
  ops.push(op);
  const t0 = performance.now();
  await plane.apply([op]);
  const ms = performance.now() - t0;
  if (viaNetlink ? plane.netlinkBatches !== batches + 1 : plane.transactions !== runs + 1)
    throw new Error(`round ${round}: the change did not take the ${viaNetlink ? 'netlink' : 'libnftables'} path`);
  return ms;
};
for (let round = 0; round < ROUNDS; round++) {
  const order = [0, 1, 2, 3].map((k) => (k + round) % 4);
  for (const which of order) {
    if (which === 0) {
      const first = await change(round, true);
      (foreign ? rawAfterForeign : rawMs).push(first);
      foreign = false;
      rawMs.push(await change(round + 1, true));
    } else if (which === 1) {
      const first = await change(round + 2, false);
      (foreign ? incAfterForeign : inc).push(first);
      foreign = false;
      inc.push(await change(round + 3, false));
      writeFileSync(join(dir, 'inc.nft'), last);
    } else if (which === 2) {
      // the rebuild of the state the plane holds now (a shadow plane's first transaction), so the
      // plane's next change finds the kernel as it left it
      let text = '';
      const shadow = new NftDataPlane({
        nft: {
          run(cmds) {
            text ||= cmds;
            return { ok: true, output: '', error: '' };
          },
        },
        net,
        conntrack: none,
        logger: quiet,
        pollMs: 0,
      });
      await shadow.apply(ops);
      t = performance.now();
      const r = baselineLib.run(text);
      full.push(performance.now() - t);
      if (!r.ok) throw new Error(r.error);
      foreign = true;
    } else {
      // the incremental commands of a libnftables change, checked (not committed) by a spawned nft
      t = performance.now();
      try {
        execFileSync('nft', ['-c', '-f', join(dir, 'inc.nft')]);
      } catch {}
      spawned.push(performance.now() - t);
    }
  }
}
rmSync(dir, { recursive: true, force: true });
const r0 = med(rawMs);
const a = med(inc);
const b = med(full);
const c = med(spawned);
const f = med(incAfterForeign);
const range = (x: number[]) =>
  `min ${Math.min(...x).toFixed(2)}, max ${Math.max(...x).toFixed(2)}, ${x.length} changes`;
console.log(`weight change, raw nfnetlink batch (keepvs):          median ${r0.toFixed(2)} ms (${range(rawMs)})`);
console.log(
  `  netlink right after a foreign ruleset change:      median ${med(rawAfterForeign).toFixed(2)} ms (${range(rawAfterForeign)})`,
);
console.log(
  `the same through libnftables incremental commands:   median ${a.toFixed(2)} ms (${range(inc)})  ratio netlink/libnftables ${(r0 / a).toFixed(3)}`,
);
console.log(
  `  libnftables right after a foreign ruleset change:  median ${f.toFixed(2)} ms (${range(incAfterForeign)})`,
);
console.log(
  `full atomic rebuild (libnftables):                   median ${b.toFixed(2)} ms  ratio netlink/rebuild ${(r0 / b).toFixed(3)}`,
);
console.log(
  `libnftables commands through a spawned nft -c -f:    median ${c.toFixed(2)} ms  ratio netlink/spawned ${(r0 / c).toFixed(3)}`,
);
await plane.stop(0);
netlink.close();
