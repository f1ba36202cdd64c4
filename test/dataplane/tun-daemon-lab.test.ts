/**
 * keepvs itself with `lvs_method TUN` services in the network lab (../shared/lab/lab.sh, LAB_DR=1):
 * the daemon on lb1 picks the kernel plane, whose tc-BPF TUN plane encapsulates (IPIP for IPv4, GRE
 * for IPv6), the real servers run `keepvs realserver start --tun`. Health checks take a stopped real
 * server out; SIGKILL of keepvs leaves the program forwarding; a new keepvs takes over. Needs root,
 * nftables, the clang-built BPF objects and curl; skipped otherwise. Only lab addresses are used.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { until as untilTrue } from '../e2e/harness.js';
import { KEEPVS, keepvsadm, LAB, type LabKeepvs, startLabKeepvs } from './lab-daemon.js';

const ROOT = process.cwd();
const has = (bin: string) => ['/usr/bin', '/usr/sbin', '/bin', '/sbin'].some((d) => existsSync(join(d, bin)));
const canRun =
  process.getuid?.() === 0 &&
  existsSync(LAB) &&
  existsSync(join(ROOT, 'dist', 'bpf', 'tun_encap.bpf.o')) &&
  has('nft') &&
  has('curl');
const P = `kvd${process.pid % 100000}`;
const env = { ...process.env, LAB_PREFIX: P, LAB_DR: '1', LAB_RS: '3' };
/** only when the test runs: a skipped run leaves nothing behind */
const dir = canRun ? mkdtempSync(join(tmpdir(), 'kv-tund-')) : '';
const SOCK = join(dir, 'keepvs.sock');
const rsProcs = new Map<number, ChildProcess>();
const procs: ChildProcess[] = [];
let runs = 0;

const sh = (cmd: string, ...args: string[]) => execFileSync(cmd, args, { env, encoding: 'utf8' });
const inNs = (host: string, ...argv: string[]) => sh('ip', 'netns', 'exec', `${P}-${host}`, ...argv);
const curl = (url: string, port: number, family: 4 | 6) =>
  new Promise<string>((resolve) =>
    execFile(
      'ip',
      ['netns', 'exec', `${P}-client`, 'curl', `-${family}`, '-s', '-m', '2', '--local-port', String(port), url],
      { encoding: 'utf8' },
      (_e, out) => resolve(out.trim()),
    ),
  );

const CONFIG = `global_defs {
  router_id lb1
}
virtual_server 198.18.0.100 80 {
  delay_loop 1
  lvs_sched rr
  lvs_method TUN
  protocol TCP
${[1, 2, 3].map((i) => `  real_server 198.18.1.1${i} 80 {\n    TCP_CHECK {\n      connect_timeout 1\n      retry 1\n    }\n  }`).join('\n')}
}
virtual_server 2001:2::100 80 {
  delay_loop 1
  lvs_sched mh
  mh-port
  lvs_method TUN type gre
  protocol TCP
${[1, 2, 3].map((i) => `  real_server 2001:2:0:1::1${i} 80 {\n    TCP_CHECK {\n      connect_timeout 1\n    }\n  }`).join('\n')}
}
`;

function startRs(i: number): void {
  const p = spawn('ip', ['netns', 'exec', `${P}-rs${i}`, process.execPath, join(dir, 'rs.mjs'), `rs${i}`], {
    stdio: 'ignore',
  });
  rsProcs.set(i, p);
  procs.push(p);
}

function startKeepvs(): LabKeepvs {
  runs++;
  const run = startLabKeepvs({
    ns: `${P}-lb1`,
    dir,
    name: `keepvs-${runs}`,
    sock: SOCK,
    args: ['--api', '127.0.0.1:19181', '--api-token', 'lab-token'],
  });
  procs.push(run.proc);
  return run;
}

const adm = (...args: string[]) => keepvsadm(SOCK, ...args);
const until = (what: string, f: () => boolean | Promise<boolean>, ms = 15000) =>
  untilTrue(what, f, ms, () => kv?.log() ?? '');

/** n requests from distinct source ports: which real servers answered, and the failures */
async function spread(url: string, family: 4 | 6, base: number, n: number) {
  const by = new Map<string, number>();
  let failed = 0;
  let client = '';
  for (let i = 0; i < n; i++) {
    const body = await curl(url, base + i, family);
    const [name, addr] = body.split(' ');
    if (!name?.startsWith('rs')) failed++;
    else {
      by.set(name, (by.get(name) ?? 0) + 1);
      client = addr;
    }
  }
  return { by, failed, client };
}

let kv: LabKeepvs | undefined;
before(async () => {
  if (!canRun) return;
  writeFileSync(
    join(dir, 'rs.mjs'),
    `import http from 'node:http';
http.createServer((q, s) => { s.setHeader('connection', 'close'); s.end(process.argv[2] + ' ' + q.socket.remoteAddress.replace('::ffff:', '') + '\\n'); }).listen(80, '::');
`,
  );
  writeFileSync(join(dir, 'keepalived.conf'), CONFIG);
  sh('bash', LAB, 'up');
  for (const i of [1, 2, 3]) {
    inNs(
      `rs${i}`,
      process.execPath,
      KEEPVS,
      'realserver',
      'start',
      '--vip',
      '198.18.0.100',
      '--vip',
      '2001:2::100',
      '--tun',
      '--dev',
      'eth0',
      '--state',
      join(dir, `rs${i}.json`),
    );
    startRs(i);
  }
  inNs('lb1', 'ip', 'addr', 'add', '198.18.0.100/32', 'dev', 'eth0');
  inNs('lb1', 'ip', 'addr', 'add', '2001:2::100/128', 'dev', 'eth0', 'nodad');
  kv = startKeepvs();
  await until('keepvs forwarding through the tunnel', async () =>
    (await curl('http://198.18.0.100/', 30999, 4)).startsWith('rs'),
  );
});

after(() => {
  if (!canRun) return;
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  try {
    sh('bash', LAB, 'down');
  } catch {}
  rmSync(dir, { recursive: true, force: true });
});

test('keepvs forwards lvs_method TUN services through the tc-BPF plane: every real server, client address kept', {
  skip: !canRun && 'needs root, the lab, nftables, BPF objects, curl',
}, async () => {
  const v4 = await spread('http://198.18.0.100/', 4, 31000, 24);
  assert.equal(v4.failed, 0);
  assert.deepEqual([...v4.by.keys()].sort(), ['rs1', 'rs2', 'rs3'], JSON.stringify([...v4.by]));
  assert.equal(v4.client, '198.18.0.10');
  const v6 = await spread('http://[2001:2::100]/', 6, 32000, 24);
  assert.equal(v6.failed, 0);
  assert.deepEqual([...v6.by.keys()].sort(), ['rs1', 'rs2', 'rs3'], JSON.stringify([...v6.by]));
  assert.equal(v6.client, '2001:2::10');
  const table = adm('-Ln');
  assert.match(table, /-> 198\.18\.1\.11:80\s+Tunnel\s+1/);
  assert.match(table, /-> \[2001:2:0:1::12\]:80\s+Tunnel\s+1/);
  // --stats from the program's per-real counters: connections (SYNs) and packets sent into the tunnel
  const stats = adm('-Ln', '--stats');
  const m = /-> 198\.18\.1\.11:80\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)/.exec(stats);
  assert.ok(m, stats);
  const [conns, inPkts, outPkts, inBytes] = m.slice(1).map(Number);
  const n = v4.by.get('rs1') ?? 0;
  assert.ok(conns === n || conns === n + 1, `${conns} connections for ${n} requests (+1 readiness probe): ${stats}`);
  assert.ok(inPkts >= conns * 3 && inBytes > inPkts * 40, stats);
  assert.equal(outPkts, 0, 'replies bypass the director');
});

test('a real server whose service stops leaves the tunnel table within a check interval; no request fails after', {
  skip: !canRun,
}, async () => {
  rsProcs.get(2)?.kill('SIGKILL');
  await until('rs2 out of the table', () => !/198\.18\.1\.12:80/.test(adm('-Ln')), 8000);
  const after = await spread('http://198.18.0.100/', 4, 33000, 18);
  assert.equal(after.failed, 0);
  assert.deepEqual([...after.by.keys()].sort(), ['rs1', 'rs3']);
  startRs(2);
  await until('rs2 back', () => /198\.18\.1\.12:80/.test(adm('-Ln')), 8000);
});

test('SIGKILL of keepvs leaves the tunnel forwarding; the next keepvs takes the program over', {
  skip: !canRun,
}, async () => {
  kv?.proc.kill('SIGKILL');
  await kv?.exited;
  // its workers may outlive it for a moment: the program stays attached either way
  const during = await spread('http://198.18.0.100/', 4, 34000, 9);
  assert.equal(during.failed, 0);
  kv = startKeepvs();
  await until('the new keepvs answers keepvsadm', () => /Tunnel/.test(adm('-Ln')), 20000);
  const afterRestart = await spread('http://198.18.0.100/', 4, 35000, 12);
  assert.equal(afterRestart.failed, 0);
  assert.equal(afterRestart.by.size, 3);
  kv.proc.kill('SIGTERM');
  await kv.exited;
  // a graceful stop takes the program off the interface (keepalived clears its virtual servers)
  assert.doesNotMatch(inNs('lb1', 'tc', 'filter', 'show', 'dev', 'eth0', 'ingress'), /kv_tun_encap/);
});
