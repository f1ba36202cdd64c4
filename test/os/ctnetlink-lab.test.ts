/**
 * The ctnetlink reader against the kernel's own /proc/net/nf_conntrack, in a network namespace of
 * the test's (loopback only): the same entries, field by field, on a table that spans many dump
 * datagrams. Needs root and nftables (a rule makes conntrack track loopback); skipped otherwise.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { CtEntry } from '../../src/codec/conntrack.js';

const NS = `kvct${process.pid % 100000}`;
const canRun = process.getuid?.() === 0 && existsSync('/usr/sbin/nft');
const sh = (...argv: string[]) =>
  execFileSync(argv[0] as string, argv.slice(1), { encoding: 'utf8', maxBuffer: 64 << 20 });

after(() => {
  if (canRun) execFileSync('ip', ['netns', 'del', NS], { stdio: 'ignore' });
});

/** entries in a stable order; the timeout only to the second a read apart */
const sorted = (es: CtEntry[]) =>
  es.map((e) => ({ e, k: JSON.stringify({ ...e, timeout: 0 }) })).sort((a, b) => (a.k < b.k ? -1 : 1));

test('ctnetlink, dumped or kept from events, reads the entries /proc/net/nf_conntrack prints: IPv4 and IPv6, TCP states, NAT, UDP', {
  skip: !canRun,
}, () => {
  sh('ip', 'netns', 'add', NS);
  sh('ip', '-n', NS, 'link', 'set', 'lo', 'up');
  sh(
    'ip',
    'netns',
    'exec',
    NS,
    'nft',
    'add table ip t { chain out { type nat hook output priority -100; tcp dport 9090 dnat to 127.0.0.1:8080; }; }',
  );
  // conntrack tracks a family once a rule of its family uses it: IPv6 too
  sh(
    'ip',
    'netns',
    'exec',
    NS,
    'nft',
    'add table inet u { chain out { type filter hook output priority 0; ct state new; }; }',
  );
  const child = join(process.cwd(), 'dist', 'test', 'os', 'ctnetlink-child.js');
  const out = JSON.parse(sh('ip', 'netns', 'exec', NS, process.execPath, child, '1500')) as Record<string, CtEntry[]>;
  assert.ok(out.events, 'no events table');
  // the update filter: the kernel queues no SYN_RECV or LAST_ACK update (the unfiltered socket
  // shows the traffic made them), and every other kind still comes
  const { filtered, filteredStates: f, allStates: u } = out as unknown as Record<string, Record<string, number>>;
  assert.equal(filtered, true, 'filter attached');
  // read by recvmmsg: the same table as /proc below, with every event through it
  assert.equal((out as unknown as Record<string, boolean>).batched, true, 'events read by recvmmsg');
  for (const s of ['SYN_RECV', 'LAST_ACK']) {
    assert.ok((u[s] ?? 0) > 100, `unfiltered ${s}: ${JSON.stringify(u)}`);
    assert.equal(f[s] ?? 0, 0, `filtered ${s}: ${JSON.stringify(f)}`);
  }
  for (const s of ['SYN_SENT', 'ESTABLISHED', 'FIN_WAIT', 'CLOSE_WAIT', 'TIME_WAIT'])
    assert.equal(f[s], u[s], `${s}: ${JSON.stringify(f)} against ${JSON.stringify(u)}`);
  const { proc, netlink, proc6, netlink6, events } = out as Record<
    'proc' | 'netlink' | 'proc6' | 'netlink6' | 'events',
    CtEntry[]
  >;
  assert.ok(proc.length > 1500, `${proc.length} entries`);
  const a = sorted(proc);
  for (const [name, read] of [
    ['the ctnetlink dump', netlink],
    ['the table kept from events', events],
  ] as const) {
    const b = sorted(read);
    assert.deepEqual(
      b.map((x) => x.k),
      a.map((x) => x.k),
      name,
    );
    for (let i = 0; i < a.length; i++)
      assert.ok(
        Math.abs(a[i]!.e.timeout - b[i]!.e.timeout) <= 1,
        `${name}: ${a[i]!.k}: ${a[i]!.e.timeout} ${b[i]!.e.timeout}`,
      );
  }
  // the events kept the table: one dump, before the traffic
  assert.equal((out as unknown as { dumps: number }).dumps, 1);
  // what the test made is there: states, the DNATed reply, both families, UDP
  const states = new Set(netlink.map((e) => `${e.family}/${e.protocol}/${e.state}`));
  for (const s of ['4/tcp/ESTABLISHED', '4/tcp/TIME_WAIT', '6/tcp/ESTABLISHED', '6/tcp/TIME_WAIT', '4/udp/', '6/udp/'])
    assert.ok(states.has(s), `${s} in ${[...states]}`);
  assert.ok(netlink.some((e) => e.original.dport === 9090 && e.reply.sport === 8080));
  // `wanted` keeps the same entries either way
  assert.ok(netlink6.length > 0 && netlink6.every((e) => e.family === 6));
  assert.deepEqual(
    sorted(netlink6).map((x) => x.k),
    sorted(proc6).map((x) => x.k),
  );
});
