import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  formatConnections,
  formatDaemons,
  formatList,
  formatSave,
  formatTimeouts,
  largeNum,
  sortedTable,
} from '../../src/cli/keepvsadm/format.js';
import { hostsFileNames } from '../../src/cli/keepvsadm/hosts.js';
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
    error: "Illegal 'real-server' option with the 'add-service' command",
  });
  assert.deepEqual(parseIpvsadmArgs(['-a', '-t', '10.0.0.1:80']), {
    error: "You need to supply the 'real-server' option for the 'add-server' command",
  });
  assert.deepEqual(parseIpvsadmArgs(['-a', '-t', '1.1.1.1:80', '-r', '2.2.2.2', '-w', '70000']), {
    error: 'illegal weight specified',
  });
  assert.deepEqual(parseIpvsadmArgs(['-L', '-c', '-t', '1.1.1.1:80']), {
    error: "The option 'service-address' conflicts with the 'connection' option in the 'list' command",
  });
  assert.ok('error' in parseIpvsadmArgs(['--bogus']));
  const none = parseIpvsadmArgs([]);
  assert.ok(!('error' in none) && none.cmd === 'list');
});

test("ipvsadm's refusals, in its words (ipvsadm.c generic_opt_check, process_options, popt)", () => {
  const err = (...a: string[]) => {
    const r = parseIpvsadmArgs(a);
    assert.ok('error' in r, `${a.join(' ')} accepted`);
    return r.error;
  };
  const cases: [string[], string][] = [
    [['-L', '-c', '--stats'], 'options conflicts in the list command'],
    [['-L', '--timeout', '--rate'], 'options conflicts in the list command'],
    [['-L', '--daemon', '--persistent-conn'], 'options conflicts in the list command'],
    [['-L', '--timeout', '--daemon'], "The option 'daemon' conflicts with the 'timeout' option in the 'list' command"],
    [['-L', '-s', 'rr'], "Illegal 'scheduler' option with the 'list' command"],
    [['-A', '-t', '10.0.0.1:80', '-n'], "Illegal 'numeric' option with the 'add-service' command"],
    [['-D'], "You need to supply the 'service-address' option for the 'delete-service' command"],
    [['-C', '-t', '10.0.0.1:80'], "Illegal 'service-address' option with the 'flush' command"],
    [
      ['-d', '-t', '10.0.0.1:80', '-r', '10.0.0.2', '-w', '3'],
      "Illegal 'weight' option with the 'delete-server' command",
    ],
    [['-A', '-t', '10.0.0.1:0'], 'Zero port specified for non-persistent service'],
    [['-A', '-t', '10.0.0.1'], 'Zero port specified for non-persistent service'],
    [['-A', '-t', '10.0.0.1:53', '-o'], 'One-Packet Scheduling is only for UDP virtual services'],
    [['-a', '-t', '10.0.0.1:80', '-r', '10.0.0.2', '-w', '1', '-w', '2'], "multiple 'weight' options specified"],
    [['-A', '-L'], 'multiple commands specified'],
    [['--bogus'], '--bogus: unknown option'],
    [['-Q'], '-Q: unknown option'],
    [['-A', '-t'], '-t: missing argument'],
  ];
  for (const [argv, text] of cases) assert.equal(err(...argv), text, argv.join(' '));
  // accepted as ipvsadm accepts them
  for (const argv of [
    ['-A', '-t', '10.0.0.1:0', '-p'],
    ['-A', '-u', '10.0.0.1:53', '-o'],
    ['-L', '-n', '--stats', '--exact', '--nosort'],
    ['-Ln', '-X', '--rate'],
    ['-L', '-c', '-n'],
  ])
    assert.ok(!('error' in parseIpvsadmArgs(argv)), argv.join(' '));
  const x = parseIpvsadmArgs(['-LnX', '--nosort']);
  assert.ok(!('error' in x) && x.exact && !x.sort);
  const d = parseIpvsadmArgs(['-Ln']);
  assert.ok(!('error' in d) && d.sort, 'sorted by default');
});

test("listings are sorted as libipvs sorts them (ipvs_cmp_services / ipvs_cmp_dests, int wrap-around included); --nosort keeps the table's order", () => {
  const svc = (protocol: 'tcp' | 'udp', address: string, port: number, dests: DestSnapshot[]): ServiceSnapshot =>
    ({
      ...table.services[0],
      key: { kind: 'addr', protocol, family: 4, address, port },
      id: `${protocol}:${address}:${port}`,
      persistentTimeout: undefined,
      persistentPrefixLen: undefined,
      dests,
    }) as ServiceSnapshot;
  const t: TableSnapshot = {
    ...table,
    services: [
      svc('udp', '10.0.0.1', 53, []),
      svc('tcp', '10.0.0.2', 80, [dest('10.1.0.2', 80), dest('10.1.0.1', 8080), dest('10.1.0.1', 80)]),
      svc('tcp', '10.0.0.1', 443, []),
      svc('tcp', '10.0.0.1', 80, []),
      // more than 2^31 above 10.0.0.1: libipvs's int subtraction puts it first
      svc('tcp', '192.168.0.1', 80, []),
    ],
  };
  const o = { numeric: true, exact: false, format: 'default' as const };
  const order = (s: TableSnapshot) => s.services.map((x) => x.id);
  const sorted = sortedTable(t);
  assert.deepEqual(order(sorted), [
    'tcp:192.168.0.1:80',
    'tcp:10.0.0.1:80',
    'tcp:10.0.0.1:443',
    'tcp:10.0.0.2:80',
    'udp:10.0.0.1:53',
  ]);
  assert.deepEqual(
    sorted.services[3].dests.map((d) => `${d.address}:${d.port}`),
    ['10.1.0.1:80', '10.1.0.1:8080', '10.1.0.2:80'],
  );
  assert.match(formatList(sorted, o), /TCP {2}192\.168\.0\.1:80 wlc\nTCP {2}10\.0\.0\.1:80 wlc/);
  assert.equal(order(t)[0], 'udp:10.0.0.1:53', 'the unsorted table is left as it is');
});

test('names without -n come from the hosts file, first name per address; no DNS query', () => {
  const h = hostsFileNames(
    '# comment\n127.0.0.1 localhost\n10.0.0.1  web1.example web1 # primary\n10.0.0.1 other\n2001:DB8::1 v6host\n',
  );
  assert.deepEqual(
    [...h],
    [
      ['127.0.0.1', 'localhost'],
      ['10.0.0.1', 'web1.example'],
      ['2001:db8::1', 'v6host'],
    ],
  );
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
    rmSync(dir, { recursive: true, force: true });
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

  test('ipvsadm(8) EXAMPLE 1 through -R: the golden listing; a bad line stops -R after the lines before it', async () => {
    await adm(['-C']);
    // the manual's "single ipvsadm command" form, real servers given out of order
    const example = [
      '-A -t 207.175.44.110:80 -s rr',
      '-a -t 207.175.44.110:80 -r 192.168.10.3:80 -m',
      '-a -t 207.175.44.110:80 -r 192.168.10.1:80 -m',
      '-a -t 207.175.44.110:80 -r 192.168.10.5:80 -m',
      '-a -t 207.175.44.110:80 -r 192.168.10.2:80 -m',
      '-a -t 207.175.44.110:80 -r 192.168.10.4:80 -m',
    ].join('\n');
    assert.equal((await adm(['-R'], `\n${example}\n`)).code, 0);
    const rs = (n: number) => `  -> 192.168.10.${n}:80              Masq    1      0          0         `;
    assert.equal(
      (await adm(['-Ln'])).out,
      [
        'IP Virtual Server version 1.2.1 (size=4096)',
        'Prot LocalAddress:Port Scheduler Flags',
        '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn',
        'TCP  207.175.44.110:80 rr',
        ...[1, 2, 3, 4, 5].map(rs),
        '',
      ].join('\n'),
    );
    // --nosort: the table's own order, newest real server first as IPVS's list_add keeps it
    assert.match(
      (await adm(['-Ln', '--nosort'])).out,
      /10\.4:80[\s\S]*10\.2:80[\s\S]*10\.5:80[\s\S]*10\.1:80[\s\S]*10\.3:80/,
    );
    // sorted -S output round-trips byte for byte whatever order -R adds the lines in
    const saved = (await adm(['-S', '-n'])).out;
    await adm(['-C']);
    assert.equal((await adm(['-R'], saved)).code, 0);
    assert.equal((await adm(['-S', '-n'])).out, saved);
    // a bad third line: the two before it are applied, the one after is not
    await adm(['-C']);
    const r = await adm(
      ['-R'],
      '-A -t 198.18.0.1:80 -s rr\n-a -t 198.18.0.1:80 -r 198.18.1.1:80 -m\n-a -t 198.18.0.1:80 -r 198.18.1.2:80 -w 70000\n-A -t 198.18.0.2:80\n',
    );
    assert.deepEqual([r.code, r.err], [2, 'line 3: illegal weight specified\n']);
    const after = (await adm(['-Ln'])).out;
    assert.match(after, /198\.18\.1\.1:80/);
    assert.doesNotMatch(after, /198\.18\.0\.2:80/);
    await adm(['-C']);
  });

  test('port 0 with -p is a persistent service for every port (ipvsadm): listed and saved with :0; without -p refused', async () => {
    await adm(['-C']);
    const refused = await adm(['-A', '-t', '198.18.0.9:0']);
    assert.deepEqual([refused.code, refused.err], [2, 'Zero port specified for non-persistent service\n']);
    // no port at all is port 0, as ipvsadm's parse_service leaves it
    assert.equal((await adm(['-A', '-t', '198.18.0.9', '-p'])).code, 0);
    assert.equal((await adm(['-a', '-t', '198.18.0.9:0', '-r', '198.18.1.9', '-g'])).code, 0);
    const list = (await adm(['-Ln'])).out.split('\n').slice(3).join('\n');
    assert.equal(
      list,
      'TCP  198.18.0.9:0 wlc persistent 360\n  -> 198.18.1.9:0                 Route   1      0          0         \n',
    );
    const saved = (await adm(['-S', '-n'])).out;
    assert.equal(saved, '-A -t 198.18.0.9:0 -s wlc -p 360\n-a -t 198.18.0.9:0 -r 198.18.1.9:0 -g -w 1\n');
    await adm(['-C']);
    assert.equal((await adm(['-R'], saved)).code, 0);
    assert.equal((await adm(['-S', '-n'])).out, saved);
    await adm(['-C']);
  });

  test('without -n, names come from the hosts file ($KEEPVS_HOSTS_FILE here), never from DNS', async () => {
    const hosts = join(dir, 'hosts');
    writeFileSync(hosts, '198.18.0.1 vip.example\n198.18.1.1 web1\n');
    await adm(['-A', '-t', '198.18.0.1:80', '-s', 'rr']);
    await adm(['-a', '-t', '198.18.0.1:80', '-r', '198.18.1.1:80', '-m']);
    const p = spawn(process.execPath, ['bin/keepvsadm.js', '--socket', sock, '-L'], {
      env: { ...process.env, KEEPVS_HOSTS_FILE: hosts },
    });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    await new Promise((r) => p.on('close', r));
    assert.match(out, /^TCP {2}vip\.example:http rr$/m);
    assert.match(out, /^ {2}-> web1:http /m);
    await adm(['-C']);
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

test('--start-daemon / --stop-daemon and their options (ipvsadm.c parse_options, commands_v_options)', () => {
  const ok = (...a: string[]) => {
    const r = parseIpvsadmArgs(a);
    assert.ok(!('error' in r), `${a.join(' ')}: ${'error' in r ? r.error : ''}`);
    return r;
  };
  const err = (...a: string[]) => {
    const r = parseIpvsadmArgs(a);
    assert.ok('error' in r, `${a.join(' ')} accepted`);
    return r.error;
  };
  const s = ok(
    '--start-daemon',
    'master',
    '--mcast-interface',
    'eth1',
    '--syncid',
    '7',
    '--sync-maxlen',
    '1400',
    '--mcast-group',
    '224.0.0.82',
    '--mcast-port',
    '8849',
    '--mcast-ttl',
    '2',
  );
  assert.equal(s.cmd, 'start-daemon');
  assert.equal(s.daemonState, 'master');
  assert.deepEqual(
    [s.mcastInterface, s.syncId, s.syncMaxlen, s.mcastGroup, s.mcastPort, s.mcastTtl],
    ['eth1', 7, 1400, '224.0.0.82', 8849, 2],
  );
  const stop = ok('--stop-daemon', 'backup');
  assert.equal(stop.cmd, 'stop-daemon');
  assert.equal(stop.daemonState, 'backup');
  assert.equal(err('--start-daemon', 'primary'), 'illegal start-daemon parameter specified');
  assert.equal(err('--stop-daemon', 'x'), 'illegal stop_daemon parameter specified');
  assert.equal(err('--start-daemon', 'master', '--syncid', '256'), 'illegal syncid specified');
  assert.equal(err('--start-daemon', 'master', '--mcast-group', '10.0.0.1'), 'illegal mcast-group specified');
  assert.equal(err('--start-daemon', 'master', '--mcast-port', '0'), 'illegal mcast-port specified');
  assert.equal(err('--start-daemon', 'master', '--mcast-ttl', '300'), 'illegal mcast-ttl specified');
  assert.equal(err('--start-daemon', 'master', '--sync-maxlen', '0'), 'illegal sync-maxlen specified');
  assert.equal(
    err('--stop-daemon', 'master', '--mcast-interface', 'eth0'),
    "Illegal 'mcast-interface' option with the 'stop-daemon' command",
  );
  assert.equal(err('-L', '--mcast-interface', 'eth0'), "Illegal 'mcast-interface' option with the 'list' command");
});

test('-L --daemon prints each running daemon as ipvsadm 1.31 does', () => {
  const t = {
    ...table,
    syncDaemons: [
      {
        role: 'master' as const,
        mcastInterface: 'eth0',
        syncId: 1,
        maxlen: 1472,
        group: '224.0.0.81',
        port: 8848,
        ttl: 1,
      },
    ],
  };
  assert.equal(
    formatDaemons(t),
    'master sync daemon (mcast=eth0, syncid=1, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n',
  );
  assert.equal(formatDaemons({ ...table, syncDaemons: [] }), '');
});
