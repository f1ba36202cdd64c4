/**
 * Active-active directors behind ECMP, the lean CI part of bench/ecmp-lab.ts (docs/scale-out.md):
 * an FRR router with multipath and BFD, keepvs directors (kernel plane, DR, mh + mh-port,
 * bgp_announce), three real servers, 40 long-lived flows from the router. Shown: every director
 * carries flows; a director added, then one cut off, break no flow and move none to another real
 * server. Needs root, nftables, FRR and the lab; skipped otherwise. Only lab addresses are used.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { compare, EcmpLab, type Flow, FRR, LAB } from './ecmp-lab.js';

const canRun =
  process.getuid?.() === 0 &&
  existsSync(LAB) &&
  existsSync('/usr/sbin/nft') &&
  ['zebra', 'bgpd', 'bfdd'].every((d) => existsSync(join(FRR, d))) &&
  (() => {
    try {
      execFileSync('id', ['frr'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();
const FLOWS = 40;
let lab: EcmpLab | undefined;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

before(() => {
  if (!canRun) return;
  lab = new EcmpLab(`kx${process.pid % 100000}`);
  lab.up();
});

after(() => lab?.down());

const directors = (l: EcmpLab, fl: Flow[]) =>
  new Map(fl.filter((f) => f.sport).map((f) => [f.sport, l.directorOf(f.sport)]));

test('three directors behind ECMP: each carries flows; one added and one cut off break none', {
  skip: !canRun,
}, async () => {
  const l = lab!;
  l.startDirector(1);
  l.startDirector(2);
  await l.until('two paths at the router', () => l.nexthops().length === 2, 90000);
  l.startFlows(FLOWS);
  await l.until('every flow answered', async () => (await l.flows()).every((f) => f.answers > 2), 30000);
  let before = await l.flows();
  let dBefore = directors(l, before);
  l.startDirector(3);
  await l.until('three paths', () => l.nexthops().length === 3, 90000);
  await sleep(2000);
  let now = await l.flows();
  let dNow = directors(l, now);
  const added = compare(before, now, dBefore, dNow);
  const carried = new Set(dNow.values());
  assert.deepEqual([...carried].sort(), ['198.18.0.1', '198.18.0.2', '198.18.0.3'], 'every director carries flows');
  assert.equal(added.broken, 0, JSON.stringify(added));
  assert.equal(added.changedServer, 0, JSON.stringify(added));
  assert.ok(new Set(now.map((f) => f.rs)).size > 1, 'mh-port spreads the flows over the real servers');
  // lb2 dies (its front link, seen from neither end): BFD withdraws it at the router
  before = now;
  dBefore = dNow;
  const onLb2 = [...dBefore.values()].filter((d) => d === '198.18.0.2').length;
  l.sh('ip', '-n', `${l.prefix}-sw`, 'link', 'set', 'lb2-f', 'down');
  const withdrawnMs = await l.until('lb2 withdrawn', () => !l.nexthops().includes('198.18.0.2'), 10000);
  await sleep(3000);
  now = await l.flows();
  dNow = directors(l, now);
  const cut = compare(before, now, dBefore, dNow);
  console.log(
    `# ${FLOWS} flows; lb3 added: ${JSON.stringify(added)}; lb2 cut (withdrawn after ${withdrawnMs} ms): ${JSON.stringify(cut)}`,
  );
  assert.ok(cut.movedDirector >= onLb2, JSON.stringify(cut));
  assert.equal(cut.broken, 0, JSON.stringify(cut));
  assert.equal(cut.changedServer, 0, JSON.stringify(cut));
});
