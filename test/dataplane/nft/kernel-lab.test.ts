/**
 * The kernel (nftables) data plane in the network lab (../shared/lab/lab.sh): keepvs on lb1 with
 * NAT, full-NAT and DR services, IPv4 and IPv6, real servers rs1..rs3 answering "<name> <client>".
 * DR replies come back through lb1 here (the real servers' only leg is the back network), which
 * needs accept_local on lb1. Needs root, nftables and the lab; skipped otherwise. Only lab
 * addresses are used; the lab is torn down at the end.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { until as untilTrue } from '../../e2e/harness.js';
import { keepvsadm, LAB, type LabKeepvs, startLabKeepvs } from '../lab-daemon.js';

const P = `kn${process.pid % 100000}`;
const canRun = process.getuid?.() === 0 && existsSync(LAB) && existsSync('/usr/sbin/nft');
const dir = mkdtempSync(join(tmpdir(), 'kv-nft-lab-'));
const env = { ...process.env, LAB_PREFIX: P, LAB_RS: '3', LAB_DR: '0' };
const API_PORT = 19180;
const rsProcs = new Map<number, ChildProcess>();
let kv: LabKeepvs | undefined;
let runs = 0;

const sh = (cmd: string, ...args: string[]) => execFileSync(cmd, args, { env, encoding: 'utf8' });
const inNs = (host: string, ...argv: string[]) => sh('ip', 'netns', 'exec', `${P}-${host}`, ...argv);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const RS_SERVER = `import http from 'node:http';
const [name, ...ports] = process.argv.slice(2);
for (const p of ports)
  http.createServer((req, res) => { res.setHeader('connection', 'close'); res.end(name + ' ' + req.socket.remoteAddress.replace(/^::ffff:/, '') + '\\n'); }).listen(Number(p), '::');
`;

/** Requests from the client namespace: count sequential-per-worker connections, or run for durationMs. */
const CLIENT = `import net from 'node:net';
const [host, port, count, conc, durationMs] = process.argv.slice(2).map((v, i) => (i === 0 ? v : Number(v)));
const by = {}; const clients = new Set(); let errors = 0; const samples = [];
function one() {
  return new Promise((resolve) => {
    let buf = '';
    const s = net.connect({ host, port });
    s.setTimeout(3000);
    s.on('connect', () => s.write('GET / HTTP/1.0\\r\\n\\r\\n'));
    s.on('data', (d) => (buf += d));
    s.on('end', () => {
      const last = buf.trim().split('\\n').pop() ?? '';
      const [name, client] = last.split(' ');
      if (!name || !name.startsWith('rs')) { errors++; samples.push('bad ' + last); }
      else { by[name] = (by[name] ?? 0) + 1; clients.add(client); }
      resolve();
    });
    s.on('error', (e) => { errors++; if (samples.length < 5) samples.push(e.code); resolve(); });
    s.on('timeout', () => { errors++; samples.push('timeout'); s.destroy(); resolve(); });
  });
}
const end = durationMs > 0 ? Date.now() + durationMs : Infinity;
let left = count;
async function worker() {
  while (durationMs > 0 ? Date.now() < end : left-- > 0) await one();
}
await Promise.all(Array.from({ length: conc }, worker));
process.stdout.write(JSON.stringify({ by, clients: [...clients], errors, samples }));
`;

interface Result {
  by: Record<string, number>;
  clients: string[];
  errors: number;
  samples: string[];
}

const host = (vip: string) => (vip.includes(':') ? vip : vip);
function request(vip: string, port: number, count: number, conc = 4): Result {
  return JSON.parse(
    inNs(
      'client',
      process.execPath,
      join(dir, 'client.mjs'),
      host(vip),
      String(port),
      String(count),
      String(conc),
      '0',
    ),
  );
}
/** Background load for durationMs; resolves with its result. */
function load(vip: string, port: number, durationMs: number, conc = 4): Promise<Result> {
  return new Promise((resolve, reject) => {
    const p = spawn(
      'ip',
      [
        'netns',
        'exec',
        `${P}-client`,
        process.execPath,
        join(dir, 'client.mjs'),
        vip,
        String(port),
        '0',
        String(conc),
        String(durationMs),
      ],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let out = '';
    p.stdout?.on('data', (d) => (out += d));
    p.on('exit', () => {
      try {
        resolve(JSON.parse(out));
      } catch (e) {
        reject(e);
      }
    });
  });
}

const rsBody = (port: number, check = true) =>
  [1, 2, 3]
    .map((i) => `  real_server 198.18.1.1${i} ${port} {${check ? ` TCP_CHECK { connect_timeout 1 }` : ''} }`)
    .join('\n');
const rsBody6 = (port: number) =>
  [1, 2, 3].map((i) => `  real_server 2001:2:0:1::1${i} ${port} { TCP_CHECK { connect_timeout 1 } }`).join('\n');
const vs = (vip: string, port: number, method: string, body: string, extra = '') =>
  `virtual_server ${vip} ${port} {\n  delay_loop 1\n  lvs_sched rr\n  lvs_method ${method}\n  protocol TCP\n${extra}${body}\n}\n`;

const CONFIG = `global_defs {\n  router_id lb1\n}
local_address_group L4 {\n  198.18.1.250\n}
local_address_group L6 {\n  2001:2:0:1::fa\n}
${vs('198.18.0.100', 80, 'NAT', rsBody(80))}
${vs('198.18.0.100', 81, 'FNAT', rsBody(80), '  laddr_group_name L4\n')}
${vs('198.18.0.100', 82, 'DR', rsBody(82))}
${vs('2001:2::100', 80, 'NAT', rsBody6(80))}
${vs('2001:2::100', 81, 'FNAT', rsBody6(80), '  laddr_group_name L6\n')}
${vs('2001:2::100', 82, 'DR', rsBody6(82))}
virtual_server 198.18.0.100 85 {
  delay_loop 1
  lvs_sched rr
  lvs_method NAT
  persistence_timeout 30
  protocol TCP
${rsBody(80)}
}
virtual_server 198.18.0.100 83 {
  lvs_sched wrr
  lvs_method NAT
  protocol TCP
  real_server 198.18.1.11 83 { weight 1 }
  real_server 198.18.1.12 83 { weight 3 }
  real_server 198.18.1.13 83 { weight 2 }
}
`;

function startRs(i: number): void {
  const p = spawn(
    'ip',
    ['netns', 'exec', `${P}-rs${i}`, process.execPath, join(dir, 'rs.mjs'), `rs${i}`, '80', '82', '83'],
    {
      stdio: 'ignore',
    },
  );
  rsProcs.set(i, p);
}

const SOCK = join(dir, 'keepvs.sock');
/** every run shares the socket (keepvsadm finds the current one), each keeps its own pid files and log */
function startKeepvs(): LabKeepvs {
  runs++;
  return startLabKeepvs({
    ns: `${P}-lb1`,
    dir,
    name: `keepvs-${runs}`,
    sock: SOCK,
    args: ['--api', `127.0.0.1:${API_PORT}`, '--api-token', 'lab-token'],
  });
}

const adm = (...args: string[]) => keepvsadm(SOCK, ...args);
const until = (what: string, f: () => boolean, ms = 10000) => {
  const t0 = Date.now();
  return untilTrue(what, f, ms, () => kv?.log() ?? '').then(() => Date.now() - t0);
};

before(async () => {
  if (!canRun) return;
  writeFileSync(join(dir, 'rs.mjs'), RS_SERVER);
  writeFileSync(join(dir, 'client.mjs'), CLIENT);
  writeFileSync(join(dir, 'keepalived.conf'), CONFIG);
  sh('bash', LAB, 'up');
  // lb1 holds the VIPs, the back gateway (NAT replies) and the full-NAT local addresses; DR real servers the VIP on lo
  for (const [a, dev] of [
    ['198.18.0.100/32', 'eth0'],
    ['2001:2::100/128', 'eth0'],
    ['198.18.1.254/24', 'eth1'],
    ['2001:2:0:1::fe/64', 'eth1'],
    ['198.18.1.250/24', 'eth1'],
    ['2001:2:0:1::fa/64', 'eth1'],
  ])
    sh('ip', '-n', `${P}-lb1`, 'addr', 'add', a, 'dev', dev, ...(a.includes(':') ? ['nodad'] : []));
  inNs('lb1', 'sysctl', '-qw', 'net.ipv4.conf.all.accept_local=1', 'net.ipv4.conf.eth1.accept_local=1');
  for (const i of [1, 2, 3]) {
    sh('ip', '-n', `${P}-rs${i}`, 'addr', 'add', '198.18.0.100/32', 'dev', 'lo');
    sh('ip', '-n', `${P}-rs${i}`, 'addr', 'add', '2001:2::100/128', 'dev', 'lo');
    startRs(i);
  }
  kv = startKeepvs();
  await until('keepvs forwarding', () => request('198.18.0.100', 80, 3).errors === 0, 20000);
});

after(() => {
  if (!canRun) return;
  kv?.proc.kill('SIGTERM');
  for (const p of rsProcs.values()) p.kill('SIGKILL');
  try {
    sh('bash', LAB, 'down');
  } catch {}
  rmSync(dir, { recursive: true, force: true });
});

const CASES = [
  { name: 'NAT IPv4', vip: '198.18.0.100', port: 80, sees: '198.18.0.10' },
  { name: 'NAT IPv6', vip: '2001:2::100', port: 80, sees: '2001:2::10' },
  { name: 'FNAT IPv4', vip: '198.18.0.100', port: 81, sees: '198.18.1.250' },
  { name: 'FNAT IPv6', vip: '2001:2::100', port: 81, sees: '2001:2:0:1::fa' },
  { name: 'DR IPv4', vip: '198.18.0.100', port: 82, sees: '198.18.0.10' },
  { name: 'DR IPv6', vip: '2001:2::100', port: 82, sees: '2001:2::10' },
];

for (const c of CASES)
  test(`${c.name}: every real server through the VIP; it sees ${c.sees}`, { skip: !canRun }, () => {
    const r = request(c.vip, c.port, 60);
    assert.equal(r.errors, 0, JSON.stringify(r));
    assert.deepEqual(Object.keys(r.by).sort(), ['rs1', 'rs2', 'rs3'], JSON.stringify(r));
    assert.deepEqual(r.clients, [c.sees]);
  });

test('keepvsadm shows the kernel plane as ipvsadm would', { skip: !canRun }, () => {
  const out = adm('-Ln');
  assert.match(out, /TCP {2}198\.18\.0\.100:80 rr\n(\s+-> 198\.18\.1\.1\d:80\s+Masq\s+1 .*\n){3}/);
  assert.match(out, /-> 198\.18\.1\.11:80\s+FullNat/);
  assert.match(out, /-> 198\.18\.1\.11:82\s+Route/);
  assert.match(out, /TCP {2}\[2001:2::100\]:82 rr/);
  request('198.18.0.100', 80, 3);
  const conns = adm('-Lnc');
  assert.match(conns, /TCP \d\d:\d\d {2}TIME_WAIT\s+198\.18\.0\.10:\d+\s+198\.18\.0\.100:80\s+198\.18\.1\.1\d:80/);
});

test('--stats and --rate come from the kernel counters; -Z zeroes them', { skip: !canRun }, async () => {
  adm('-Z', '-t', '198.18.0.100:81');
  await sleep(1200);
  const r = request('198.18.0.100', 81, 30);
  assert.equal(r.errors, 0);
  let conns = 0;
  await until(
    'counters read',
    () => {
      const out = adm('-Ln', '--stats', '-t', '198.18.0.100:81');
      // TCP  198.18.0.100:81   Conns InPkts OutPkts InBytes OutBytes (service line first)
      const m = /TCP {2}198\.18\.0\.100:81\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)/.exec(out);
      conns = Number(m?.[1] ?? 0);
      return conns >= 30 && Number(m?.[3]) > 0 && Number(m?.[5]) > 0;
    },
    5000,
  );
  assert.ok(conns < 40, `${conns} connections counted for 30 (health checks go to the real servers directly)`);
  assert.match(adm('-Ln', '--rate', '-t', '198.18.0.100:81'), /TCP {2}198\.18\.0\.100:81\s+\d+/);
});

test('--stats packets and bytes are exact, also for connections conntrack has destroyed', {
  skip: !canRun,
}, async () => {
  // an independent count of the same packets: forwarded, DNATed, to or from the real servers' port 80
  // (the element the 80, 81 and 85 services share: ipvsadm's counters here are per real server)
  const rs = '{ 198.18.1.11, 198.18.1.12, 198.18.1.13 }';
  const file = join(dir, 'count.nft');
  writeFileSync(
    file,
    [
      'table ip kvtest {',
      '  chain f {',
      '    type filter hook forward priority 10; policy accept;',
      `    ct status dnat ct direction original ip daddr ${rs} tcp dport 80 counter`,
      `    ct status dnat ct direction reply ip saddr ${rs} tcp sport 80 counter`,
      '  }',
      '}',
      '',
    ].join('\n'),
  );
  const stats = () => {
    const out = adm('-Ln', '--stats', '-t', '198.18.0.100:81');
    const m = /TCP {2}198\.18\.0\.100:81\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)/.exec(out);
    assert.ok(m, out);
    return m.slice(2, 6).map(Number); // InPkts OutPkts InBytes OutBytes
  };
  // counted by conntrack per connection: no rule runs for every forwarded packet
  assert.doesNotMatch(inNs('lb1', 'nft', 'list', 'table', 'ip', 'keepvs'), /chain stats/);
  assert.equal(inNs('lb1', 'cat', '/proc/sys/net/netfilter/nf_conntrack_acct').trim(), '1');
  inNs('lb1', 'nft', '-f', file);
  try {
    // no flow of these real servers moves now: earlier tests' connections have closed (TIME_WAIT)
    await sleep(2500);
    const before = stats();
    const r = request('198.18.0.100', 81, 40);
    assert.equal(r.errors, 0);
    await sleep(500);
    // the flows' entries go (their TIME_WAIT would keep them 120 s): what they counted must stay
    inNs('lb1', 'conntrack', '-D', '-p', 'tcp', '--orig-dst', '198.18.0.100', '--orig-port-dst', '81');
    const rules = inNs('lb1', 'nft', 'list', 'chain', 'ip', 'kvtest', 'f');
    const c = [...rules.matchAll(/counter packets (\d+) bytes (\d+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
    assert.equal(c.length, 2, rules);
    const [inP, inB] = c[0] as [number, number];
    const [outP, outB] = c[1] as [number, number];
    assert.ok(inP >= 40 * 3 && outP >= 40 * 2, rules);
    let got: number[] = [];
    // two polls later at most
    await until(
      'the counters match',
      () => {
        const now = stats();
        got = now.map((v, i) => v - (before[i] ?? 0));
        return got.join() === [inP, outP, inB, outB].join();
      },
      5000,
    ).catch(() => undefined);
    assert.deepEqual(
      got,
      [inP, outP, inB, outB],
      'keepvsadm --stats InPkts OutPkts InBytes OutBytes against nft counters',
    );
  } finally {
    inNs('lb1', 'nft', 'delete', 'table', 'ip', 'kvtest');
  }
});

test('persistence_timeout: one client stays on one real server (dynamic map with timeout)', {
  skip: !canRun,
}, async () => {
  const r = request('198.18.0.100', 85, 30);
  assert.equal(r.errors, 0, JSON.stringify(r));
  assert.equal(Object.keys(r.by).length, 1, JSON.stringify(r));
  assert.match(
    inNs('lb1', 'nft', 'list', 'map', 'ip', 'keepvs', 's_tcp_198_18_0_100_85_persist'),
    /198\.18\.0\.10 expires/,
  );
  // -Lnc shows the template as ipvsadm does: client port 0, state NONE, the timeout left
  await until('the template in -Lnc', () =>
    /TCP 00:[0-3]\d {2}NONE\s+198\.18\.0\.10:0\s+198\.18\.0\.100:85\s+198\.18\.1\.1\d:80/.test(adm('-Lnc')),
  );
});

test('wrr 1:3:2 splits 6,000 connections exactly, in IPVS order', { skip: !canRun }, () => {
  const r = request('198.18.0.100', 83, 6000, 8);
  assert.equal(r.errors, 0, JSON.stringify(r));
  assert.deepEqual(r.by, { rs1: 1000, rs2: 3000, rs3: 2000 });
});

test('a stopped real server leaves within one check interval; no request fails after', { skip: !canRun }, async () => {
  rsProcs.get(2)?.kill('SIGKILL');
  try {
    const took = await until(
      'rs2 out of the table',
      () => !/198\.18\.1\.12:80 /.test(adm('-Ln', '-t', '198.18.0.100:80')),
      5000,
    );
    // delay_loop 1 (the refused connect fails at once): one interval, plus slack for a loaded CI machine
    assert.ok(took < 5000, `${took} ms`);
    await until('rs2 out of every service', () => !/(198\.18\.1\.12|2001:2:0:1::12)\]?:8[02] /.test(adm('-Ln')), 5000);
    for (const c of CASES) {
      const r = request(c.vip, c.port, 30);
      assert.equal(r.errors, 0, `${c.name}: ${JSON.stringify(r)}`);
      assert.equal(r.by.rs2, undefined, c.name);
    }
  } finally {
    startRs(2);
  }
  // back in all six services (each health change resyncs the table, which would undo a keepvsadm edit)
  await until(
    'rs2 back',
    () => (adm('-Ln').match(/(198\.18\.1\.12|2001:2:0:1::12)\]?:8[02] /g) ?? []).length === 7,
    8000,
  );
});

test('weight and scheduler changes (keepvsadm) take effect on live traffic', { skip: !canRun }, () => {
  adm('-e', '-t', '198.18.0.100:80', '-r', '198.18.1.11:80', '-m', '-w', '0');
  let r = request('198.18.0.100', 80, 30);
  assert.equal(r.errors, 0, JSON.stringify(r));
  assert.deepEqual(Object.keys(r.by).sort(), ['rs2', 'rs3'], JSON.stringify(r));
  adm('-e', '-t', '198.18.0.100:80', '-r', '198.18.1.11:80', '-m', '-w', '1');
  // sh: one client address, one real server
  adm('-E', '-t', '198.18.0.100:80', '-s', 'sh');
  r = request('198.18.0.100', 80, 30);
  assert.equal(Object.keys(r.by).length, 1, JSON.stringify(r));
  adm('-E', '-t', '198.18.0.100:80', '-s', 'rr');
  r = request('198.18.0.100', 80, 30);
  assert.equal(Object.keys(r.by).length, 3, JSON.stringify(r));
});

test('100 updates under load fail no request', { skip: !canRun }, async () => {
  const running = load('198.18.0.100', 83, 5000);
  // 100 weight changes through the API, one at a time, each its own transaction
  const script = `let ok = 0;
for (let i = 0; i < 100; i++) {
  const r = await fetch('http://127.0.0.1:${API_PORT}/api/v1/actions/weight', { method: 'POST',
    headers: { authorization: 'Bearer lab-token', 'content-type': 'application/json' },
    body: JSON.stringify({ service: 'tcp:198.18.0.100:83', dest: '198.18.1.12:83', weight: 3 + (i % 2) }) });
  if (r.ok) ok++;
  await new Promise((r) => setTimeout(r, 20));
}
process.stdout.write(String(ok));`;
  const ok = inNs('lb1', process.execPath, '--input-type=module', '-e', script);
  const r = await running;
  assert.equal(ok, '100');
  assert.equal(r.errors, 0, JSON.stringify(r));
  assert.ok(Object.values(r.by).reduce((a, b) => a + b, 0) > 100, JSON.stringify(r));
  inNs(
    'lb1',
    process.execPath,
    '--input-type=module',
    '-e',
    `await fetch('http://127.0.0.1:${API_PORT}/api/v1/actions/restore', { method: 'POST', headers: { authorization: 'Bearer lab-token', 'content-type': 'application/json' }, body: JSON.stringify({ service: 'tcp:198.18.0.100:83', dest: '198.18.1.12:83' }) });`,
  );
});

test('keepvs killed with SIGKILL and started again: forwarding never stops', { skip: !canRun }, async () => {
  const running = load('198.18.0.100', 80, 6000);
  await sleep(1000);
  kv?.proc.kill('SIGKILL');
  await sleep(1500);
  // the kernel tables outlived keepvs
  assert.match(inNs('lb1', 'nft', 'list', 'tables'), /table ip keepvs/);
  kv = startKeepvs();
  const r = await running;
  assert.equal(r.errors, 0, JSON.stringify(r));
  assert.deepEqual(Object.keys(r.by).sort(), ['rs1', 'rs2', 'rs3']);
  await until('the new keepvs answers', () => /198\.18\.0\.100:80/.test(adm('-Ln')), 10000);
  assert.equal(request('2001:2::100', 82, 20).errors, 0);
});

test('a graceful stop removes keepvs tables and only those', { skip: !canRun }, async () => {
  inNs('lb1', 'nft', 'add', 'table', 'inet', 'other');
  kv?.proc.kill('SIGTERM');
  await kv?.exited;
  kv = undefined;
  const tables = inNs('lb1', 'nft', 'list', 'tables');
  assert.doesNotMatch(tables, /keepvs/);
  assert.match(tables, /table inet other/);
  assert.ok(readFileSync(join(dir, `keepvs-${runs}.log`), 'utf8').includes('data plane: kernel plane'));
});
