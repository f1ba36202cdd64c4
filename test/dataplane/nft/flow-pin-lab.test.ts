/**
 * Kernel DR flow pinning (`flow_pinning`) in the network lab: keepvs on lb1 with two DR mh services
 * on the same real servers, one pinned (port 86, and IPv6) and one not (port 87). Long-lived TCP
 * connections from the client ask "which server?" before and after weight changes that remap Maglev
 * slots (rs1 quiesced, rs2's weight tripled): the pinned ones keep their server, the unpinned ones on
 * moved slots break (the new server resets a connection it never saw), which shows the test can fail.
 * Then rs3's health check fails while rs3 still runs: its pinned flows must not stay on it.
 * Needs root, nftables and the lab; skipped otherwise. Only lab addresses are used.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, test } from 'node:test';
import { until as untilTrue } from '../../e2e/harness.js';
import { keepvsadm, LAB, type LabKeepvs, startLabKeepvs } from '../lab-daemon.js';

import { addDrLabAddresses } from './dr-lab-addresses.js';

const P = `kp${process.pid % 100000}`;
const canRun = process.getuid?.() === 0 && existsSync(LAB) && existsSync('/usr/sbin/nft');
const dir = mkdtempSync(join(tmpdir(), 'kv-pin-lab-'));
const env = { ...process.env, LAB_PREFIX: P, LAB_RS: '3', LAB_DR: '0' };
const SOCK = join(dir, 'keepvs.sock');
const V4 = '198.18.0.100';
const V6 = '2001:2::100';
const FLOWS = 24;
const procs: ChildProcess[] = [];
const checkProcs = new Map<number, ChildProcess>();

const sh = (cmd: string, ...args: string[]) => execFileSync(cmd, args, { env, encoding: 'utf8' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A real server: every line on ports 86/87 is answered with the server's name. */
const RS_SERVER = `import net from 'node:net';
const [name, ...ports] = process.argv.slice(2);
for (const p of ports)
  net.createServer((s) => { s.on('data', () => s.write(name + '\\n')); s.on('error', () => {}); }).listen(Number(p), '::');
`;
/** The health-check port alone, so a check can fail while the server keeps its connections. */
const CHECK_SERVER = `import net from 'node:net';
net.createServer((s) => s.end()).listen(Number(process.argv[2]), '::');
`;

/**
 * Long-lived connections: FLOWS to each target at start; each "ping MS" line on stdin writes one line
 * on every live connection and prints, per target, which server answered each within MS ('-': none,
 * 'x': the connection was reset or closed).
 */
const CLIENT = `import net from 'node:net';
import { createInterface } from 'node:readline';
const targets = JSON.parse(process.argv[2]);
const n = Number(process.argv[3]);
const conns = {};
for (const t of targets) {
  conns[t.name] = Array.from({ length: n }, () => {
    const c = { s: net.connect({ host: t.host, port: t.port }), dead: false, answer: null, buf: '' };
    c.s.on('data', (d) => { c.buf += d; const i = c.buf.indexOf('\\n'); if (i >= 0) { c.answer = c.buf.slice(0, i); c.buf = c.buf.slice(i + 1); } });
    c.s.on('error', () => (c.dead = true));
    c.s.on('close', () => (c.dead = true));
    return c;
  });
}
async function ping(ms) {
  const all = Object.values(conns).flat();
  for (const c of all) { c.answer = null; if (!c.dead) c.s.write('which\\n'); }
  const end = Date.now() + ms;
  while (Date.now() < end && all.some((c) => !c.dead && c.answer === null)) await new Promise((r) => setTimeout(r, 20));
  const out = {};
  for (const [k, list] of Object.entries(conns)) out[k] = list.map((c) => (c.dead ? 'x' : c.answer === null ? '-' : c.answer));
  process.stdout.write(JSON.stringify(out) + '\\n');
}
createInterface({ input: process.stdin }).on('line', (l) => (l.startsWith('ping') ? ping(Number(l.split(' ')[1] || 2500)) : process.exit(0)));
`;

type Answers = Record<string, string[]>;

const rs = (port: number, six = false) =>
  [1, 2, 3]
    .map(
      (i) =>
        `  real_server ${six ? `2001:2:0:1::1${i}` : `198.18.1.1${i}`} ${port} {\n    TCP_CHECK {\n      connect_port 9186\n      connect_timeout 1\n    }\n  }`,
    )
    .join('\n');
const vs = (vip: string, port: number, pin: boolean) =>
  `virtual_server ${vip} ${port} {\n  delay_loop 1\n  lvs_sched mh\n  mh-port\n  lvs_method DR\n  protocol TCP\n${pin ? '  flow_pinning 600\n' : ''}${rs(port, vip.includes(':'))}\n}\n`;
const CONFIG = `global_defs {\n  router_id lb1\n}\n${vs(V4, 86, true)}${vs(V4, 87, false)}${vs(V6, 86, true)}`;

function spawnIn(host: string, ...argv: string[]): ChildProcess {
  const p = spawn('ip', ['netns', 'exec', `${P}-${host}`, ...argv], { stdio: ['pipe', 'pipe', 'pipe'] });
  procs.push(p);
  return p;
}

const adm = (...args: string[]) => keepvsadm(SOCK, ...args);
const until = (what: string, f: () => boolean, ms = 15000) => untilTrue(what, f, ms, () => kv?.log() ?? '');

let client: ChildProcess | undefined;
let kv: LabKeepvs | undefined;
let lines: AsyncIterableIterator<string> | undefined;
async function ping(ms = 2500): Promise<Answers> {
  client?.stdin?.write(`ping ${ms}\n`);
  const r = await lines?.next();
  assert.ok(r && !r.done, 'client gone');
  return JSON.parse(r.value);
}

before(async () => {
  if (!canRun) return;
  writeFileSync(join(dir, 'rs.mjs'), RS_SERVER);
  writeFileSync(join(dir, 'check.mjs'), CHECK_SERVER);
  writeFileSync(join(dir, 'client.mjs'), CLIENT);
  writeFileSync(join(dir, 'keepalived.conf'), CONFIG);
  sh('bash', LAB, 'up');
  addDrLabAddresses(sh, P, V4, V6, 3);
  for (const i of [1, 2, 3]) {
    spawnIn(`rs${i}`, process.execPath, join(dir, 'rs.mjs'), `rs${i}`, '86', '87');
    checkProcs.set(i, spawnIn(`rs${i}`, process.execPath, join(dir, 'check.mjs'), '9186'));
  }
  kv = startLabKeepvs({ ns: `${P}-lb1`, dir, sock: SOCK });
  // every real server in all three services, their MACs resolved (the flow map exists)
  await until('three real servers in each service', () => (adm('-Ln').match(/ Route /g) ?? []).length === 9, 30000);
  await until('the flow maps installed', () =>
    /_flows/.test(sh('ip', 'netns', 'exec', `${P}-lb1`, 'nft', 'list', 'table', 'netdev', 'keepvs')),
  ).catch((e) => {
    throw new Error(`${e}; keepvs log:\n${kv?.log().slice(-3000)}`);
  });
  await sleep(1500);
});

after(() => {
  if (!canRun) return;
  client?.stdin?.end();
  kv?.proc.kill('SIGTERM');
  for (const p of procs) p.kill('SIGKILL');
  try {
    sh('bash', LAB, 'down');
  } catch {}
  rmSync(dir, { recursive: true, force: true });
});

const targets = [
  { name: 'pinned', host: V4, port: 86 },
  { name: 'unpinned', host: V4, port: 87 },
  { name: 'pinned6', host: V6, port: 86 },
];

test('flow_pinning: long-lived DR flows keep their real server through weight changes; unpinned ones break', {
  skip: !canRun,
  timeout: 90000,
}, async (t) => {
  client = spawnIn('client', process.execPath, join(dir, 'client.mjs'), JSON.stringify(targets), String(FLOWS));
  lines = createInterface({ input: client.stdout as NodeJS.ReadableStream })[Symbol.asyncIterator]();
  await sleep(1000);
  const before0 = await ping();
  // pinned IPv4 flows are listed by -Lnc (the flow map holds no TCP state: NONE)
  await until('pinned flows in -Lnc', () => {
    const pinned = adm('-Lnc').match(
      /TCP \d\d:\d\d {2}NONE\s+198\.18\.0\.10:\d+\s+198\.18\.0\.100:86\s+198\.18\.1\.1\d:86/g,
    );
    return (pinned?.length ?? 0) >= FLOWS;
  });
  // and the IPv6 ones, their client told by the service's client set (render.ts flowClients)
  await until('pinned IPv6 flows in -Lnc', () => {
    const pinned = adm('-Lnc').match(
      /TCP \d\d:\d\d {2}NONE\s+\[2001:2::10\]:\d+\s+\[2001:2::100\]:86\s+\[2001:2:0:1::1\d\]:86/g,
    );
    return (pinned?.length ?? 0) >= FLOWS;
  });
  for (const t of targets) {
    assert.ok(
      !before0[t.name].some((a) => a === '-' || a === 'x'),
      `${t.name}: every flow answered: ${before0[t.name]}`,
    );
    assert.ok(new Set(before0[t.name]).size >= 2, `${t.name}: flows spread: ${before0[t.name]}`);
  }
  // remap Maglev slots: rs1 quiesced (weight 0), rs2 weight 3, on every service
  for (const [vip, port, r1, r2] of [
    [V4, 86, '198.18.1.11', '198.18.1.12'],
    [V4, 87, '198.18.1.11', '198.18.1.12'],
    [`[${V6}]`, 86, '[2001:2:0:1::11]', '[2001:2:0:1::12]'],
  ] as const) {
    adm('-e', '-t', `${vip}:${port}`, '-r', `${r1}:${port}`, '-g', '-w', '0');
    adm('-e', '-t', `${vip}:${port}`, '-r', `${r2}:${port}`, '-g', '-w', '3');
  }
  await sleep(1500);
  await ping();
  const after1 = await ping();
  for (const t of ['pinned', 'pinned6'])
    assert.deepEqual(after1[t], before0[t], `${t}: every flow on the server it started on`);
  // without pinning, the flows on slots that moved (all of rs1's) are reset by their new server
  const broken = after1.unpinned.filter((a, i) => a !== before0.unpinned[i]).length;
  const onRs1 = before0.unpinned.filter((a) => a === 'rs1').length;
  t.diagnostic(`weight change: unpinned ${broken}/${FLOWS} changed server or broke (${onRs1} on rs1)`);
  assert.ok(broken >= onRs1 && broken > 0, `unpinned: ${broken} of ${FLOWS} changed (${onRs1} were on rs1)`);

  // rs3's health check fails (rs3 itself still answers): removed, its pinned flows no longer reach
  // it: dropped (expire_nodest_conn 0, as IPVS drops a connection's packets once its destination is
  // gone), neither reset nor moved to another server
  checkProcs.get(3)?.kill('SIGKILL');
  await until('rs3 out of the pinned services', () => !/198\.18\.1\.13:86|2001:2:0:1::13\]:86/.test(adm('-Ln')));
  await sleep(1000);
  await ping();
  const after2 = await ping();
  for (const t of ['pinned', 'pinned6']) {
    const wasRs3 = before0[t].map((a, i) => (a === 'rs3' ? i : -1)).filter((i) => i >= 0);
    assert.ok(wasRs3.length > 0, `${t}: a flow on rs3: ${before0[t]}`);
    assert.ok(
      wasRs3.every((i) => after2[t][i] === '-'),
      `${t}: flows of the removed rs3 no longer reach it, dropped: ${after2[t]}`,
    );
    // the others still on their server
    before0[t].forEach((a, i) => {
      if (a !== 'rs3') assert.equal(after2[t][i], a, `${t} flow ${i}`);
    });
  }
  // rs3 back: the same mark, so its pinned flows reach it again (TCP resends what was dropped)
  checkProcs.set(3, spawnIn('rs3', process.execPath, join(dir, 'check.mjs'), '9186'));
  await until(
    'rs3 back in the pinned services',
    () => /198\.18\.1\.13:86/.test(adm('-Ln')) && /2001:2:0:1::13\]:86/.test(adm('-Ln')),
  );
  await sleep(500);
  const after3 = await ping(10000);
  for (const t of ['pinned', 'pinned6'])
    assert.deepEqual(after3[t], before0[t], `${t}: every flow on the server it started on again`);
});
