import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import type net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { formatConnections, formatList, formatSave, formatTimeouts, largeNum } from '../../src/cli/keepvsadm/format.js';
import { parseIpvsadmArgs } from '../../src/cli/keepvsadm/parse.js';
import { parseRequest } from '../../src/control/protocol.js';
import { startControlServer } from '../../src/control/server.js';
import { LbTable } from '../../src/lb/table.js';
import type { DestSnapshot, ServiceSnapshot, TableSnapshot } from '../../src/lb/types.js';
import { FakeClock } from '../../src/util/clock.js';

const zero = { conns: 0, inPkts: 0, outPkts: 0, inBytes: 0, outBytes: 0 };
const zr = { cps: 0, inPps: 0, outPps: 0, inBps: 0, outBps: 0 };
const dest = (address: string, port: number, over: Partial<DestSnapshot> = {}): DestSnapshot => ({
  id: `${address}:${port}`,
  address,
  port,
  family: 4,
  forward: 'masq',
  weight: 1,
  uThreshold: 0,
  lThreshold: 0,
  activeConns: 0,
  inactConns: 0,
  persistConns: 0,
  overloaded: false,
  stats: zero,
  rates: zr,
  ...over,
});
const table: TableSnapshot = {
  connTableSize: 4096,
  timeouts: { tcp: 900, tcpfin: 120, udp: 300 },
  syncDaemons: [],
  services: [
    {
      key: { kind: 'addr', protocol: 'tcp', family: 4, address: '192.168.0.100', port: 80 },
      id: 'tcp:192.168.0.100:80',
      scheduler: 'wlc',
      schedFlags: [],
      persistentTimeout: 360,
      persistentPrefixLen: 24,
      ops: false,
      stats: { conns: 123456789, inPkts: 5, outPkts: 6, inBytes: 123456789012, outBytes: 99 },
      rates: { cps: 12, inPps: 3, outPps: 4, inBps: 1500, outBps: 150000000 },
      dests: [
        dest('10.0.0.1', 80, { activeConns: 3, inactConns: 12 }),
        dest('10.0.0.2', 8080, { forward: 'route', weight: 5, uThreshold: 100, lThreshold: 50, persistConns: 7 }),
      ],
    } as ServiceSnapshot,
    {
      key: { kind: 'addr', protocol: 'udp', family: 6, address: '2001:db8::53', port: 53 },
      id: 'udp:[2001:db8::53]:53',
      scheduler: 'sh',
      schedFlags: ['sh-fallback', 'sh-port'],
      ops: true,
      stats: zero,
      rates: zr,
      dests: [{ ...dest('2001:db8::10', 53), family: 6, forward: 'tunnel' }],
    },
    {
      key: { kind: 'fwmark', family: 4, fwmark: 7 },
      id: 'fwm:7:4',
      scheduler: 'rr',
      schedFlags: [],
      ops: false,
      stats: zero,
      rates: zr,
      dests: [],
    },
  ],
};
const numeric = { numeric: true, exact: false, format: 'default' as const };

test('-Ln: ipvsadm header, service and destination lines, column widths', () => {
  assert.equal(
    formatList(table, numeric),
    [
      'IP Virtual Server version 1.2.1 (size=4096)',
      'Prot LocalAddress:Port Scheduler Flags',
      '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn',
      'TCP  192.168.0.100:80 wlc persistent 360 mask 255.255.255.0',
      '  -> 10.0.0.1:80                  Masq    1      3          12        ',
      '  -> 10.0.0.2:8080                Route   5      0          0         ',
      'UDP  [2001:db8::53]:53 sh (sh-fallback,sh-port) ops',
      '  -> [2001:db8::10]:53            Tunnel  1      0          0         ',
      'FWM  7 rr',
      '',
    ].join('\n'),
  );
});

test('--stats and --rate use the large-number suffix rule; --exact prints everything', () => {
  assert.equal(largeNum(99_999_999, false), ' 99999999');
  assert.equal(largeNum(123_456_789, false), '  123456K');
  assert.equal(largeNum(123_456_789_012, false), '     123G');
  assert.equal(largeNum(123_456_789_012, true), ' 123456789012');
  const stats = formatList(table, { ...numeric, format: 'stats' }).split('\n');
  assert.equal(stats[1], 'Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes');
  assert.equal(stats[2], '  -> RemoteAddress:Port');
  assert.equal(stats[3], 'TCP  192.168.0.100:80              123456K        5        6     123G       99');
  const rate = formatList(table, { ...numeric, format: 'rate' }).split('\n');
  assert.equal(rate[1], 'Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS');
  assert.equal(rate[3], 'TCP  192.168.0.100:80                   12        3        4     1500  150000K');
});

test('--thresholds and --persistent-conn columns', () => {
  const th = formatList(table, { ...numeric, format: 'thresholds' }).split('\n');
  assert.equal(th[2], '  -> RemoteAddress:Port           Uthreshold Lthreshold ActiveConn InActConn');
  assert.equal(th[5], '  -> 10.0.0.2:8080                100        50         0          0         ');
  const pc = formatList(table, { ...numeric, format: 'persistent-conn' }).split('\n');
  assert.equal(pc[5], '  -> 10.0.0.2:8080                5      7           0          0         ');
});

test('-S save lines and --timeout', () => {
  assert.equal(
    formatSave(table, numeric),
    [
      '-A -t 192.168.0.100:80 -s wlc -p 360 -M 255.255.255.0',
      '-a -t 192.168.0.100:80 -r 10.0.0.1:80 -m -w 1',
      '-a -t 192.168.0.100:80 -r 10.0.0.2:8080 -g -w 5',
      '-A -u [2001:db8::53]:53 -s sh -b sh-fallback,sh-port -o',
      '-a -u [2001:db8::53]:53 -r [2001:db8::10]:53 -i -w 1',
      '-A -f 7 -s rr',
      '',
    ].join('\n'),
  );
  assert.equal(formatTimeouts(table), 'Timeout (tcp tcpfin udp): 900 120 300\n');
});

test('-Lnc: connection entries with MM:SS expiry', () => {
  const out = formatConnections(
    [
      {
        protocol: 'tcp',
        client: { address: '192.0.2.7', port: 51000 },
        virtual: { address: '192.168.0.100', port: 80 },
        dest: { address: '10.0.0.1', port: 80 },
        family: 4,
        state: 'ESTABLISHED',
        expiresInMs: 899_500,
        template: false,
      },
    ],
    numeric,
  );
  assert.equal(
    out,
    'IPVS connection entries\npro expire state       source             virtual            destination\nTCP 15:00  ESTABLISHED 192.0.2.7:51000    192.168.0.100:80   10.0.0.1:80\n',
  );
});

test('argument parsing follows ipvsadm: combined flags, optional -p, command/option matrix', () => {
  const l = parseIpvsadmArgs(['-Ln', '--stats']);
  assert.ok(!('error' in l) && l.cmd === 'list' && l.numeric && l.format === 'stats');
  const a = parseIpvsadmArgs(['-A', '-t', '10.0.0.1:80', '-s', 'rr', '-p']);
  assert.ok(!('error' in a) && a.persistent === 360 && a.scheduler === 'rr');
  const p = parseIpvsadmArgs(['-A', '-t', '10.0.0.1:80', '-p', '60', '-M', '255.255.255.0']);
  assert.ok(!('error' in p) && p.persistent === 60 && p.netmask === '255.255.255.0');
  assert.deepEqual(parseIpvsadmArgs(['-A', '-L']), { error: 'multiple commands specified' });
  assert.deepEqual(parseIpvsadmArgs(['-A', '-t', '10.0.0.1:80', '-r', '10.0.0.2']), {
    error: "Illegal '-r' option with the '-A' command",
  });
  assert.deepEqual(parseIpvsadmArgs(['-a', '-t', '10.0.0.1:80']), {
    error: "You need to supply the 'real-server' address for this command",
  });
  assert.deepEqual(parseIpvsadmArgs(['-a', '-t', '1.1.1.1:80', '-r', '2.2.2.2', '-w', '70000']), {
    error: 'illegal weight specified',
  });
  assert.deepEqual(parseIpvsadmArgs(['-L', '-c', '-t', '1.1.1.1:80']), {
    error: 'options -c, --timeout, --daemon and a service are mutually exclusive',
  });
  assert.ok('error' in parseIpvsadmArgs(['--bogus']));
  const none = parseIpvsadmArgs([]);
  assert.ok(!('error' in none) && none.cmd === 'list');
});

test('control protocol rejects malformed requests with a reason', () => {
  assert.equal(parseRequest('nope'), 'request is not valid JSON');
  assert.match(String(parseRequest('{"v":2,"cmd":"snapshot"}')), /unsupported protocol version/);
  assert.match(String(parseRequest('{"v":1,"cmd":"apply","ops":[1]}')), /op/);
  assert.deepEqual(parseRequest('{"v":1,"cmd":"snapshot"}'), { v: 1, cmd: 'snapshot' });
});

describeBinary();

function describeBinary() {
  const dir = mkdtempSync(join(tmpdir(), 'kv-adm-'));
  const sock = join(dir, 'k.sock');
  const lb = new LbTable({ clock: new FakeClock() });
  let server: net.Server;
  const adm = (args: string[], stdin = ''): Promise<{ code: number | null; out: string; err: string }> =>
    new Promise((resolve) => {
      const p = spawn(process.execPath, ['bin/keepvsadm.js', '--socket', sock, ...args]);
      let out = '';
      let err = '';
      p.stdout.on('data', (d) => (out += d));
      p.stderr.on('data', (d) => (err += d));
      p.on('close', (code) => resolve({ code, out, err }));
      p.stdin.end(stdin);
    });
  before(async () => {
    server = await startControlServer(sock, {
      snapshot: () => lb.snapshot(),
      connections: () => lb.connections(),
      apply: async (ops) =>
        ops.map((op) => {
          const r = lb.apply(op);
          return r.ok ? { ok: true } : { ok: false, error: r.error.message };
        }),
    });
  });
  after(() => {
    server.close();
    lb.dispose();
  });

  test('the keepvsadm binary changes and lists the live table; errors as ipvsadm, exit 2', async () => {
    assert.equal((await adm(['-A', '-t', '198.18.0.100:80', '-s', 'rr'])).code, 0);
    assert.equal((await adm(['-a', '-t', '198.18.0.100:80', '-r', '198.18.1.11:8080', '-m', '-w', '3'])).code, 0);
    const dup = await adm(['-A', '-t', '198.18.0.100:80']);
    assert.deepEqual([dup.code, dup.err], [2, 'Service already exists\n']);
    const missing = await adm(['-D', '-t', '198.18.0.100:81']);
    assert.deepEqual([missing.code, missing.err], [2, 'No such service\n']);
    const list = await adm(['-Ln']);
    assert.match(list.out, /^TCP {2}198\.18\.0\.100:80 rr$/m);
    assert.match(list.out, /^ {2}-> 198\.18\.1\.11:8080 {13}Masq {4}3 {6}0 {10}0 {9}$/m);
  });

  test('-S | -C | -R | -S gives the same text', async () => {
    await adm(['-A', '-u', '198.18.0.100:53', '-s', 'sh', '-b', 'sh-port', '-o']);
    await adm(['-a', '-u', '198.18.0.100:53', '-r', '198.18.1.12', '-g', '-w', '2']);
    await adm(['-A', '-t', '198.18.0.101:443', '-p', '120', '-M', '255.255.0.0']);
    const saved = (await adm(['-S', '-n'])).out;
    assert.match(saved, /-A -t 198\.18\.0\.101:443 -s wlc -p 120 -M 255\.255\.0\.0/);
    assert.equal((await adm(['-C'])).code, 0);
    assert.equal((await adm(['-Ln'])).out.split('\n').length, 4);
    const restored = await adm(['-R'], saved);
    assert.equal(restored.code, 0, restored.err);
    assert.equal((await adm(['-S', '-n'])).out, saved);
  });

  test('a missing daemon gives a clear error and exit 2', async () => {
    const p = spawn(process.execPath, ['bin/keepvsadm.js', '--socket', join(dir, 'none.sock'), '-Ln']);
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    const code = await new Promise((r) => p.on('close', r));
    assert.equal(code, 2);
    assert.match(err, /cannot connect to keepvs at .*none\.sock: ENOENT/);
  });
}
