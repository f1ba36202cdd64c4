/**
 * conntrackd-synced rr (issue #16) through two failovers in a row, in the layout of the chaos suite:
 * both directors' control sockets in one directory, lb1 restarted between the faults. The second
 * failover is the one that broke: the restarted lb1 took lb2's conntrackd for its own stale one
 * (one pid file for both) and killed it, so lb2 had nothing to commit and every rr connection got a
 * reset. The single-failover test with all its figures is nft/conn-sync-lab.test.ts.
 * Needs root, nftables, conntrackd and the lab; skipped otherwise.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { canRunPair, type Director, PairLab, PORTS, throughFault, until } from './pair-lab.js';

const lab = new PairLab(`kvcp${process.pid % 10000}`);
const ADVERT = 0.1;
const canRun = canRunPair && existsSync('/usr/sbin/conntrackd');
const options = (h: Director) => ({ priority: h === 'lb1' ? 150 : 100, advertInt: ADVERT, sync: true });

before(() => {
  if (canRun) lab.up();
});
after(async () => {
  if (canRun) await lab.down();
});

async function settle(port: number): Promise<void> {
  for (const h of ['lb1', 'lb2'] as const)
    if (!lab.running(h)) {
      lab.clearVips(h);
      lab.start(h, options(h));
    }
  await until('lb1 alone holds the VIP', () => lab.holders().join() === 'lb1', 30000);
  await until('both tables complete', () => lab.serving('lb1') && lab.serving('lb2'), 30000);
  lab.forgetNeighbours();
  await until('the service answers', () => lab.probe(port).startsWith('rs'), 30000);
}

test('NAT rr with conntrackd: 20/20 kept through a graceful stop, then again through a SIGKILL after lb1 came back', {
  skip: !canRun && 'needs root, nftables, conntrackd and ../shared/lab/lab.sh',
  timeout: 120000,
}, async () => {
  const port = PORTS.natRr;
  await settle(port);
  const stop = await throughFault(lab, port, () => lab.stop('lb1', 'SIGTERM'));
  assert.equal(stop.kept, 20, `graceful stop: ${JSON.stringify(stop)}`);
  await settle(port);
  const kill = await throughFault(lab, port, () => lab.stop('lb1', 'SIGKILL'));
  await lab.stop('lb1', 'SIGKILL');
  assert.equal(kill.kept, 20, `SIGKILL after lb1 came back: ${JSON.stringify(kill)}`);
  assert.match(lab.log('lb2'), /connection sync started/);
  assert.doesNotMatch(lab.log('lb2'), /conntrackd exited/, 'lb2 kept its conntrackd');
});
