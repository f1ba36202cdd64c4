/**
 * The kernel plane's content updates over raw nfnetlink (os/nft-netlink.ts) leave the kernel exactly
 * as libnftables leaves it. Two lab directors run the same ticks (netlink-elements-child.ts): lb1
 * with the nfnetlink element writer, lb2 through libnftables only. After every tick both print
 * their keepvs tables (`nft -j list ruleset`, canonical): they must be equal. The ticks cover a wrr
 * period change (rule modulus and slot map), quiescing, a real server down and up, IPv6, DR mh,
 * persistence, DR flow pinning, fwmark and full-NAT in one tick, and a slot map emptied behind
 * keepvs's back: the netlink batch is refused and libnftables applies the tick, with a log line.
 * Needs root, nftables and the lab; skipped otherwise. No traffic is sent.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';

const LAB = join(process.cwd(), '..', 'shared', 'lab', 'lab.sh');
const P = `kn${process.pid % 100000}`;
const canRun = process.getuid?.() === 0 && existsSync(LAB) && existsSync('/usr/sbin/nft');
const env = { ...process.env, LAB_PREFIX: P, LAB_RS: '1', LAB_DR: '0' };
const CHILD = join(process.cwd(), 'dist', 'test', 'dataplane', 'nft', 'netlink-elements-child.js');

interface Step {
  step: string;
  tables: unknown;
  netlink: number;
  transactions: number;
  logs: string[];
}

let counters: { netlink: unknown[]; nft: unknown[] }[] = [];

function run(host: string, mode: string): Step[] {
  const out = execFileSync('ip', ['netns', 'exec', `${P}-${host}`, process.execPath, CHILD, mode], {
    env,
    encoding: 'utf8',
    timeout: 60_000,
    maxBuffer: 256 << 20,
  });
  const lines = out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Step & { counters?: typeof counters });
  for (const l of lines) if (l.counters) counters = l.counters;
  return lines.filter((l) => !l.counters);
}

after(() => {
  if (canRun) execFileSync(LAB, ['down'], { env, stdio: 'ignore' });
});

test('content ticks over nfnetlink leave the same keepvs tables as libnftables, and fall back on a refusal', {
  skip: !canRun,
  timeout: 120_000,
}, () => {
  execFileSync(LAB, ['up'], { env, stdio: 'ignore' });
  const raw = run('lb1', 'netlink');
  const lib = run('lb2', 'libnftables');
  assert.equal(raw.length, 10, 'every step ran');
  assert.equal(lib.length, raw.length);
  for (let i = 0; i < raw.length; i++) assert.deepEqual(raw[i].tables, lib[i].tables, `tables after "${raw[i].step}"`);
  const by = new Map(raw.map((s, i) => [s.step, { s, prev: raw[i - 1] }]));
  // the load is structural: libnftables
  assert.equal(raw[0].transactions, 1);
  assert.equal(raw[0].netlink, 0);
  // content ticks: one netlink batch each, no libnftables transaction
  for (const step of [
    'weight, new period',
    'quiesce',
    'real server up',
    'real server down, expire_nodest_conn 1',
    'one tick, every kind',
  ]) {
    const x = by.get(step);
    assert.ok(x, step);
    assert.equal(x.s.netlink, x.prev.netlink + 1, `${step}: one netlink batch`);
    assert.equal(x.s.transactions, x.prev.transactions, `${step}: no libnftables transaction`);
  }
  // expire_nodest_conn 0: the removed server's flows listed for their drop (nodest.ts), a rule change
  const down = by.get('real server down');
  assert.ok(down);
  assert.equal(down.s.transactions, down.prev.transactions + 1);
  assert.match(JSON.stringify(down.s.tables), /nodest_pre/);
  // the netlink batch is refused (an element it deletes is gone): libnftables applies the tick, logged
  const refused = by.get('slot map emptied behind keepvs, then a weight change');
  assert.ok(refused);
  assert.equal(refused.s.netlink, refused.prev.netlink);
  assert.equal(refused.s.transactions, refused.prev.transactions + 1);
  assert.ok(
    refused.s.logs.some((l) =>
      /element update over netlink refused \(ENOENT\); applying it through libnftables/.test(l),
    ),
    refused.s.logs.join('\n'),
  );
  // the counter sets read over nfnetlink (what the plane reads each second) are what nft lists
  assert.equal(counters.length, 3);
  for (const c of counters) {
    assert.ok(c.nft.length > 0);
    assert.deepEqual(c.netlink, c.nft);
  }
  assert.ok(JSON.stringify(counters).includes('"key":"172.16.9.9 . tcp . 8080","packets":5,"bytes":300'));
  assert.ok(JSON.stringify(counters).includes('"key":"2001:db8:9::9 . udp . 53","packets":7,"bytes":700'));
  // the libnftables-only director never used netlink
  assert.equal(lib[lib.length - 1].netlink, 0);
});
