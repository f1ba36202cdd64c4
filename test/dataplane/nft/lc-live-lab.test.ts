/**
 * bench/lc-live.ts kept from rotting: its imbalance figure on hand-made samples, and (as root, with
 * nftables and the lab) the bench itself for one short round of the slow-server lc case, its table
 * read back: every mode sampled without a failed connection, rr spreading evenly and the two lc
 * modes well below rr's imbalance (a slow server collects rr's connections; lc steers them away).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { canRunLcLive, imbalance, refScheduler } from './lc-live-lab.js';

test('imbalance: 0 in proportion to weight, the largest gap over the total otherwise', () => {
  assert.equal(imbalance([10, 20, 30], [1, 2, 3]), 0);
  // equal weights, 20/10/10: server 1 holds 20 of 40, its share would be 40 / 3 -> |20*3 - 40| / 40
  assert.equal(imbalance([20, 10, 10], [1, 1, 1]), 0.5);
  // all on one server of three: |40*3 - 40| / 40
  assert.equal(imbalance([0, 0, 40], [1, 1, 1]), 2);
  assert.equal(imbalance([0, 0, 0], [1, 2, 3]), null);
  assert.equal(refScheduler([1, 1, 1]), 'rr');
  assert.equal(refScheduler([1, 2, 3]), 'wrr');
});

test('bench/lc-live.js, one short round: every mode sampled, lc modes well below rr', {
  skip: !canRunLcLive,
  timeout: 180000,
}, () => {
  const out = execFileSync(process.execPath, [join(process.cwd(), 'dist', 'bench', 'lc-live.js')], {
    env: { ...process.env, ROUNDS: '1', WARM: '3', DURATION: '3', RATE: '150', SCHED: 'lc', HOLD: '0.2,0.2,1.0' },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const row = (mode: string) => {
    const m = new RegExp(
      `^${mode}\\s+(\\w+)\\s+(\\d+)/(\\d+)/(\\d+)\\s+\\S+\\s+([\\d.]+)\\s+\\S+\\s+\\S+; (-?\\d+)$`,
      'm',
    ).exec(out);
    assert.ok(m, `no ${mode} row in:\n${out}`);
    return { sched: m[1], conns: [m[2], m[3], m[4]].map(Number), imbalance: Number(m[5]), errors: Number(m[6]) };
  };
  const lc = row('nft-lc');
  const proxy = row('proxy-lc');
  const rr = row('nft-rr');
  assert.match(out, /^ratios: nft-lc\/proxy-lc [\d.]+, nft-rr\/proxy-lc [\d.]+$/m);
  for (const r of [lc, proxy, rr]) {
    assert.equal(r.errors, 0, out);
    assert.ok(
      r.conns.every((c) => c > 0),
      out,
    );
  }
  assert.deepEqual([lc.sched, proxy.sched, rr.sched], ['lc', 'lc', 'rr']);
  // rr: the counter hands out connections in turn (within the window's edges)
  assert.ok(Math.max(...rr.conns) - Math.min(...rr.conns) <= 3, out);
  // the slow server (hold 1.0 s) holds about 5/7 of rr's open connections: imbalance about 1.1
  assert.ok(rr.imbalance > 0.7, out);
  assert.ok(proxy.imbalance < rr.imbalance / 3, out);
  assert.ok(lc.imbalance < rr.imbalance / 2, out);
});
