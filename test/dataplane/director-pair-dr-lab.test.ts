/**
 * Stateless failover of a director pair in the lab (issue #16), DR: as director-pair-lab.test.ts
 * (keepvs on lb1 and lb2, VRRPv3 advert_int 0.1, 20 long-lived connections, a new one every 20 ms),
 * with a DR service scheduled by Maglev, through the master's graceful stop (also with its VRRP
 * worker late) and crash; then a partition between the directors: both become masters, and once it
 * heals exactly one holds the VIP within 3 x advert_int (DR connections live through the split: a
 * reply does not need the director that forwarded its request). Needs root, nftables and the lab; skipped otherwise.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  canRunPair,
  crashHost,
  figures,
  GW_VIP,
  PairLab,
  PORTS,
  reviveHost,
  settlePair,
  sleep,
  throughFault,
  until,
  VIP,
} from './pair-lab.js';

const lab = new PairLab(`kvpd${process.pid % 10000}`);
const ADVERT = 0.1;
const skip = !canRunPair && 'needs root, nftables and ../shared/lab/lab.sh';

before(() => {
  if (canRunPair) lab.up();
});
after(async () => {
  if (canRunPair) await lab.down();
});

test('DR mh: 20/20 long-lived connections kept through the master graceful stop and crash', {
  skip,
  timeout: 150000,
}, async () => {
  const port = PORTS.drMh;
  await settlePair(lab, port, ADVERT);
  const stop = await throughFault(lab, port, () => lab.stop('lb1', 'SIGTERM'));
  assert.equal(stop.kept, 20, `graceful stop: ${JSON.stringify(stop)}`);
  await settlePair(lab, port, ADVERT);
  const crash = await throughFault(lab, port, () => crashHost(lab, 'lb1'));
  reviveHost(lab, 'lb1');
  assert.equal(crash.kept, 20, `crash: ${JSON.stringify(crash)}`);
  assert.ok(stop.outageMs < 3000 && crash.outageMs < 5000, `${stop.outageMs} / ${crash.outageMs} ms without service`);
  // graceful stop with the VRRP worker late (a loaded host): the LVS worker must not take the kernel
  // tables away while lb1 still holds the VIP, whose packets its own stack would then reset (every DR
  // connection lost: 0/20 once in CI, 0/20 each time with the VRRP worker 500 ms late before the fix)
  await settlePair(lab, port, ADVERT);
  const late = await throughFault(lab, port, () => lab.stopVrrpLate('lb1', 500));
  assert.equal(late.kept, 20, `graceful stop, VRRP worker late: ${JSON.stringify(late)}`);
});

test('a partition makes both directors masters; once healed exactly one holds the VIP within 3 x advert_int', {
  skip,
  timeout: 60000,
}, async () => {
  await settlePair(lab, PORTS.drMh, ADVERT);
  const c = lab.client(PORTS.drMh);
  await sleep(1000);
  lab.partition(true);
  await until('both directors hold the VIP', () => lab.holders().length === 2, 10000);
  await sleep(1000);
  const t0 = Date.now();
  lab.partition(false);
  await until('one VIP holder again', () => lab.holders().join() === 'lb1', 10000, 10);
  const healMs = Date.now() - t0;
  for (let i = 0; i < 10; i++) {
    assert.deepEqual(lab.holders(), ['lb1'], 'and it stays that way');
    await sleep(50);
  }
  const f = figures(await c.stop());
  assert.equal(f.kept, 20, `${JSON.stringify(f)}, healed in ${healMs} ms`);
  // 3 x advert_int is 300 ms; a loaded CI machine gets a second of slack
  assert.ok(healMs < 3 * ADVERT * 1000 + 1000, `${healMs} ms to one VIP holder`);
  // after each heal the client and the real servers send to lb1 again. The first advert across the
  // healed link decides who steps down; when lb1's came first, lb2 used to step down silently and
  // lb1, never hearing a lower-priority master, never re-announced (2 heals in 6 in the lab)
  const lb1Front = lab.macOf('lb1', 'eth0');
  const lb1Back = lab.macOf('lb1', 'eth1');
  for (let heal = 1; heal <= 4; heal++) {
    lab.partition(true);
    await until('both directors hold the VIP', () => lab.holders().length === 2, 10000);
    await sleep(500);
    lab.partition(false);
    await until('one VIP holder again', () => lab.holders().join() === 'lb1', 10000, 10);
    await sleep(500);
    // (the real servers that answered the client have a gateway entry)
    const gateways = ['rs1', 'rs2', 'rs3'].map((rs) => lab.neighbour(rs, GW_VIP)).filter((m) => m !== '');
    assert.ok(gateways.length > 0, 'a real server has a gateway entry');
    assert.deepEqual(
      [lab.neighbour('client', VIP), ...gateways],
      [lb1Front, ...gateways.map(() => lb1Back)],
      `heal ${heal}: the client's VIP and the real servers' gateway point to lb1 (${lb1Front}, ${lb1Back})`,
    );
  }
});
