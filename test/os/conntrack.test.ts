import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ProcConntrack, parseConntrack, parseConntrackLine } from '../../src/os/conntrack.js';

// lines as nf_conntrack_standalone.c ct_seq_show prints them (IPv6 in full, %pI6)
const TCP =
  'ipv4     2 tcp      6 431999 ESTABLISHED src=198.18.0.10 dst=198.18.0.100 sport=40000 dport=81 src=198.18.1.11 dst=198.18.1.250 sport=80 dport=40000 [ASSURED] mark=0 zone=0 use=2';
const UDP =
  'ipv4     2 udp      17 29 src=198.18.0.10 dst=198.18.0.100 sport=5353 dport=53 [UNREPLIED] src=198.18.1.12 dst=198.18.0.10 sport=53 dport=5353 mark=3 use=1';
const V6 =
  'ipv6     10 tcp      6 50 SYN_SENT src=2001:0002:0000:0000:0000:0000:0000:0010 dst=2001:0002:0000:0000:0000:0000:0000:0100 sport=1 dport=80 [UNREPLIED] src=2001:0002:0000:0001:0000:0000:0000:0011 dst=2001:0002:0000:0000:0000:0000:0000:0010 sport=80 dport=1 mark=0 zone=0 use=2';
// ICMP: no ports; extra keys (type, code, id) are skipped
const ICMP =
  'ipv4     2 icmp     1 29 src=198.18.0.10 dst=198.18.0.100 type=8 code=0 id=7 src=198.18.1.11 dst=198.18.0.10 type=0 code=0 id=7 mark=0 use=1';

const tuple = (src: string, dst: string, sport: number, dport: number) => ({ src, dst, sport, dport });
const LINES: [string, string, ReturnType<typeof parseConntrackLine>][] = [
  [
    'TCP with a state',
    TCP,
    {
      family: 4,
      protocol: 'tcp',
      state: 'ESTABLISHED',
      timeout: 431999,
      original: tuple('198.18.0.10', '198.18.0.100', 40000, 81),
      reply: tuple('198.18.1.11', '198.18.1.250', 80, 40000),
    },
  ],
  [
    'UDP: no state',
    UDP,
    {
      family: 4,
      protocol: 'udp',
      state: '',
      timeout: 29,
      original: tuple('198.18.0.10', '198.18.0.100', 5353, 53),
      reply: tuple('198.18.1.12', '198.18.0.10', 53, 5353),
    },
  ],
  [
    'IPv6 printed in full reads canonical',
    V6,
    {
      family: 6,
      protocol: 'tcp',
      state: 'SYN_SENT',
      timeout: 50,
      original: tuple('2001:2::10', '2001:2::100', 1, 80),
      reply: tuple('2001:2:0:1::11', '2001:2::10', 80, 1),
    },
  ],
  [
    'ICMP: no ports',
    ICMP,
    {
      family: 4,
      protocol: 'icmp',
      state: '',
      timeout: 29,
      original: tuple('198.18.0.10', '198.18.0.100', 0, 0),
      reply: tuple('198.18.1.11', '198.18.0.10', 0, 0),
    },
  ],
  ['empty', '', null],
  ['cut before the timeout', 'ipv4 2 tcp 6', null],
  ['one tuple only', 'ipv4 2 tcp 6 10 ESTABLISHED src=1.2.3.4 dst=5.6.7.8 sport=1 dport=2', null],
];

for (const [what, line, want] of LINES)
  test(`a conntrack line: ${what}`, () => assert.deepEqual(parseConntrackLine(line), want));

test('a table: every line, blank ones skipped; `wanted` keeps only entries to the VIPs asked for', async () => {
  const text = `${TCP}\n${UDP}\n\n${V6}\n${ICMP}\n`;
  assert.equal(parseConntrack(text).length, 4);
  const vip = (family: 4 | 6, dst: string) => (family === 4 ? dst === '198.18.0.100' : dst === '2001:2::100');
  assert.deepEqual(
    parseConntrack(text, vip).map((e) => e.protocol),
    ['tcp', 'udp', 'tcp', 'icmp'],
  );
  const only6 = parseConntrack(text, (f, d) => f === 6 && d === '2001:2::100');
  assert.deepEqual(
    only6.map((e) => e.original.src),
    ['2001:2::10'],
  );
  // the reader on a file, as /proc/net/nf_conntrack; a missing one reads as empty
  const dir = mkdtempSync(join(tmpdir(), 'kv-ct-'));
  writeFileSync(join(dir, 'ct'), text);
  const runner = { run: async () => ({ code: 0, stdout: '', stderr: '' }) };
  const ct = new ProcConntrack(runner as never, join(dir, 'ct'));
  assert.equal((await ct.list()).length, 4);
  assert.equal((await ct.list((f, d) => f === 4 && d === '198.18.0.99')).length, 0);
  assert.deepEqual(await new ProcConntrack(runner as never, join(dir, 'none')).list(), []);
});

test("flushDest: the real server's flows of one service only (the same server may serve others)", async () => {
  const calls: (readonly string[])[] = [];
  const runner = {
    run: async (argv: readonly string[]) => {
      calls.push(argv);
      return { code: 0, stdout: '', stderr: '' };
    },
  };
  const ct = new ProcConntrack(runner as never, '/nonexistent');
  await ct.flushDest('198.18.1.11', 80, 'tcp', 4, { address: '198.18.0.100', port: 81 });
  await ct.flushDest('2001:2:0:1::11', 0, 'udp', 6, { address: '2001:2::100', port: 0 });
  await ct.flushDest('198.18.1.12', 8080, 'tcp', 4);
  // one connection (a gone real server's, its own IPVS time up)
  await ct.flushDest('198.18.1.12', 80, 'tcp', 4, {
    address: '198.18.0.100',
    port: 80,
    client: { address: '198.18.0.10', port: 40001 },
  });
  assert.deepEqual(calls, [
    'conntrack -D -f ipv4 -p tcp --reply-src 198.18.1.11 --reply-port-src 80 --orig-dst 198.18.0.100 --orig-port-dst 81'.split(
      ' ',
    ),
    'conntrack -D -f ipv6 -p udp --reply-src 2001:2:0:1::11 --orig-dst 2001:2::100'.split(' '),
    'conntrack -D -f ipv4 -p tcp --reply-src 198.18.1.12 --reply-port-src 8080'.split(' '),
    'conntrack -D -f ipv4 -p tcp --reply-src 198.18.1.12 --reply-port-src 80 --orig-dst 198.18.0.100 --orig-port-dst 80 --orig-src 198.18.0.10 --orig-port-src 40001'.split(
      ' ',
    ),
  ]);
});

test('conntrack lines with nf_conntrack_acct: packets and bytes of each direction', () => {
  const acct =
    'ipv4     2 tcp      6 117 TIME_WAIT src=198.18.0.10 dst=198.18.0.100 sport=40000 dport=81 packets=6 bytes=412 src=198.18.1.11 dst=198.18.1.250 sport=80 dport=40000 packets=5 bytes=1234567890123 [ASSURED] mark=0 zone=0 use=2';
  const e = parseConntrackLine(acct);
  assert.deepEqual(e?.counters, { origPackets: 6, origBytes: 412, replyPackets: 5, replyBytes: 1234567890123 });
  assert.deepEqual(e?.reply, { src: '198.18.1.11', dst: '198.18.1.250', sport: 80, dport: 40000 });
  // an entry made before accounting was on has none: absent, not zeros
  assert.equal(parseConntrackLine(TCP)?.counters, undefined);
});
