/**
 * expire_nodest_conn in the kernel plane, in the network lab: keepvs on lb1 with a NAT and a
 * full-NAT service (rr, three real servers, health checks on a port of their own, so a check can
 * fail while the real server keeps its connections). Long-lived TCP connections from the client
 * ask "which server?". IPVS (ip_vs_core.c ip_vs_in_hook): with expire_nodest_conn 0 a packet of a
 * connection whose real server was removed is dropped until the entry expires, while a quiesced
 * (weight 0) real server's connections go on; with expire_nodest_conn 1 the entry goes at once.
 * Before nodest.ts, conntrack's DNAT kept forwarding the removed server's flows: the first test
 * fails there. Needs root, nftables, conntrack and the lab; skipped otherwise. Lab addresses only.
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

const P = `kn${process.pid % 100000}`;
const canRun =
  process.getuid?.() === 0 && existsSync(LAB) && existsSync('/usr/sbin/nft') && existsSync('/usr/sbin/conntrack');
const dir = mkdtempSync(join(tmpdir(), 'kv-nodest-lab-'));
const env = { ...process.env, LAB_PREFIX: P, LAB_RS: '3', LAB_DR: '0' };
const SOCK = join(dir, 'keepvs.sock');
const CONF = join(dir, 'keepalived.conf');
const VIP = '198.18.0.100';
const LADDR = '198.18.1.250';
const VIP6 = '2001:2::100';
const LADDR6 = '2001:2:0:1::fa';
const NAT = 88;
/** marked 5 on lb1 (the operator's own rule), for the fwmark service */
const FWM_PORT = 91;
const FNAT = 89;
/** per service: two per real server (rr) */
const FLOWS = 6;
const procs: ChildProcess[] = [];
const checkProcs = new Map<number, ChildProcess>();

const sh = (cmd: string, ...args: string[]) => execFileSync(cmd, args, { env, encoding: 'utf8' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A real server: every line is answered with the server's name. */
const RS_SERVER = `import net from 'node:net';
const [name, ...ports] = process.argv.slice(2);
for (const p of ports)
  net.createServer((s) => { s.on('data', () => s.write(name + '\\n')); s.on('error', () => {}); }).listen(Number(p), '::');
`;
const CHECK_SERVER = `import net from 'node:net';
net.createServer((s) => s.end()).listen(Number(process.argv[2]), '::');
`;

/**
 * FLOWS long-lived connections per target; "ping MS" on stdin writes one line on each and prints,
 * per target, who answered within MS ('-': no answer, 'x': the connection was reset or closed).
 */
const CLIENT = `import net from 'node:net';
import { createInterface } from 'node:readline';
const targets = JSON.parse(process.argv[2]);
const n = Number(process.argv[3]);
const conns = {};
for (const t of targets)
  conns[t.name] = Array.from({ length: n }, () => {
    const c = { s: net.connect({ host: t.host, port: t.port }), dead: false, answer: null, buf: '' };
    c.s.setNoDelay(true);
    c.s.on('data', (d) => { c.buf += d; const i = c.buf.lastIndexOf('\\n'); if (i >= 0) { c.answer = c.buf.slice(0, i).split('\\n').at(-1); c.buf = c.buf.slice(i + 1); } });
    c.s.on('error', () => (c.dead = true));
    c.s.on('close', () => (c.dead = true));
    return c;
  });
async function ping(ms) {
  const all = Object.values(conns).flat();
  for (const c of all) { c.answer = null; if (!c.dead) c.s.write('which\\n'); }
  const end = Date.now() + ms;
  while (Date.now() < end && all.some((c) => !c.dead && c.answer === null)) await new Promise((r) => setTimeout(r, 20));
  const out = {};
  for (const [k, list] of Object.entries(conns)) out[k] = list.map((c) => (c.dead ? 'x' : c.answer ?? '-'));
  process.stdout.write(JSON.stringify(out) + '\\n');
}
// "touch NAME I": one line on that flow only (its last packet is now)
const touch = (name, i) => conns[name][i].s.write('which\\n');
createInterface({ input: process.stdin }).on('line', (l) => (l.startsWith('ping') ? ping(Number(l.split(' ')[1] || 2500)) : l.startsWith('touch') ? touch(l.split(' ')[1], Number(l.split(' ')[2])) : process.exit(0)));
`;

type Answers = Record<string, string[]>;

const rs = (port: number, v6 = false) =>
  [1, 2, 3]
    .map(
      (i) =>
        `  real_server ${v6 ? '2001:2:0:1::1' : '198.18.1.1'}${i} ${port} {\n    TCP_CHECK {\n      connect_port 9188\n      connect_timeout 1\n    }\n  }`,
    )
    .join('\n');
const vs = (port: number, method: string, v6 = false) =>
  `virtual_server ${v6 ? VIP6 : VIP} ${port} {\n  delay_loop 1\n  lvs_sched rr\n  lvs_method ${method}\n${method === 'FNAT' ? `  laddr_group_name ${v6 ? 'L6' : 'LADDR'}\n` : ''}  protocol TCP\n${rs(port, v6)}\n}\n`;
/** the IPv4 NAT and full-NAT services, and (`v6`) their IPv6 twins */
const config = (expire: boolean, v6 = true) =>
  `global_defs {\n  router_id lb1\n${expire ? '  expire_nodest_conn\n' : ''}}\nlocal_address_group LADDR {\n  ${LADDR}\n}\nlocal_address_group L6 {\n  ${LADDR6}\n}\n${vs(NAT, 'NAT')}${vs(FNAT, 'FNAT')}${v6 ? vs(NAT, 'NAT', true) + vs(FNAT, 'FNAT', true) : ''}`;

function spawnIn(host: string, ...argv: string[]): ChildProcess {
  const p = spawn('ip', ['netns', 'exec', `${P}-${host}`, ...argv], { stdio: ['pipe', 'pipe', 'pipe'] });
  procs.push(p);
  return p;
}

const adm = (...args: string[]) => keepvsadm(SOCK, ...args);

const until = (what: string, f: () => boolean, ms = 15000) => untilTrue(what, f, ms, () => `keepvs log:\n${log()}`);

const startCheck = (i: number) =>
  checkProcs.set(i, spawnIn(`rs${i}`, process.execPath, join(dir, 'check.mjs'), '9188'));
const inService = (i: number, port: number) => adm('-Ln').includes(`198.18.1.1${i}:${port}`);
/** real servers listed in the services (IPv4 and IPv6) */
const listed = () => (adm('-Ln').match(/(198\.18\.1\.1\d|\[2001:2:0:1::1\d\]):8[89]/g) ?? []).length;
const nft = (...args: string[]) => sh('ip', 'netns', 'exec', `${P}-lb1`, 'nft', ...args);

let kv: LabKeepvs | undefined;
const log = () => kv?.log() ?? '';

class Client {
  private readonly lines: AsyncIterableIterator<string>;
  constructor(readonly proc: ChildProcess) {
    this.lines = createInterface({ input: proc.stdout as NodeJS.ReadableStream })[Symbol.asyncIterator]();
  }
  touch(name: string, i: number): void {
    this.proc.stdin?.write(`touch ${name} ${i}\n`);
  }
  async ping(ms = 2500): Promise<Answers> {
    this.proc.stdin?.write(`ping ${ms}\n`);
    const r = await this.lines.next();
    assert.ok(r && !r.done, 'client gone');
    return JSON.parse(r.value);
  }
}
const targets = [
  { name: 'nat', host: VIP, port: NAT },
  { name: 'fnat', host: VIP, port: FNAT },
];
const targets6 = [...targets, { name: 'nat6', host: VIP6, port: NAT }, { name: 'fnat6', host: VIP6, port: FNAT }];
const client = (t = targets) =>
  new Client(spawnIn('client', process.execPath, join(dir, 'client.mjs'), JSON.stringify(t), String(FLOWS)));

before(async () => {
  if (!canRun) return;
  writeFileSync(join(dir, 'rs.mjs'), RS_SERVER);
  writeFileSync(join(dir, 'check.mjs'), CHECK_SERVER);
  writeFileSync(join(dir, 'client.mjs'), CLIENT);
  writeFileSync(CONF, config(false));
  sh('bash', LAB, 'up');
  // lb1: the VIP on the front, the real servers' gateway and the full-NAT source on the back
  for (const [a, dev] of [
    [`${VIP}/32`, 'eth0'],
    ['198.18.1.254/24', 'eth1'],
    [`${LADDR}/24`, 'eth1'],
    [`${VIP6}/128`, 'eth0'],
    ['2001:2:0:1::fe/64', 'eth1'],
    [`${LADDR6}/64`, 'eth1'],
  ])
    sh('ip', '-n', `${P}-lb1`, 'addr', 'add', a, 'dev', dev, ...(a.includes(':') ? ['nodad'] : []));
  for (const i of [1, 2, 3]) {
    spawnIn(`rs${i}`, process.execPath, join(dir, 'rs.mjs'), `rs${i}`, String(NAT), String(FNAT), String(FWM_PORT));
    startCheck(i);
  }
  kv = startLabKeepvs({ ns: `${P}-lb1`, dir, conf: CONF, sock: SOCK, args: ['--dataplane', 'nft'] });
  await until('three real servers in each service', () => listed() === 12, 30000);
  await sleep(1000);
});

after(() => {
  if (!canRun) return;
  kv?.proc.kill('SIGTERM');
  for (const p of procs) p.kill('SIGKILL');
  try {
    sh('bash', LAB, 'down');
  } catch {}
  rmSync(dir, { recursive: true, force: true });
});

/** indexes of the flows of `name` that `a` says answered from `server` */
const on = (a: Answers, name: string, server: string) =>
  a[name].map((x, i) => (x === server ? i : -1)).filter((i) => i >= 0);

test('expire_nodest_conn 0: a removed real server gets no more data on its connections (dropped, not reset); a quiesced one keeps them', {
  skip: !canRun,
  timeout: 90000,
}, async () => {
  const c = client();
  await sleep(1000);
  const a0 = await c.ping();
  for (const t of targets) {
    assert.ok(!a0[t.name].includes('-') && !a0[t.name].includes('x'), `${t.name}: every flow answered: ${a0[t.name]}`);
    for (const s of ['rs1', 'rs2', 'rs3'])
      assert.ok(on(a0, t.name, s).length > 0, `${t.name}: a flow on ${s}: ${a0[t.name]}`);
  }
  // rs1 quiesced (NAT service): available still; rs2's health check fails (rs2 itself still runs)
  adm('-e', '-t', `${VIP}:${NAT}`, '-r', `198.18.1.11:${NAT}`, '-m', '-w', '0');
  checkProcs.get(2)?.kill('SIGKILL');
  await until('rs2 out of both services', () => !inService(2, NAT) && !inService(2, FNAT));
  await sleep(500);
  const a1 = await c.ping();
  for (const t of targets) {
    for (const i of on(a0, t.name, 'rs2'))
      assert.equal(
        a1[t.name][i],
        '-',
        `${t.name} flow ${i} (rs2, removed): its data no longer reaches rs2, nor is it reset: ${a1[t.name]}`,
      );
    for (const s of ['rs1', 'rs3'])
      for (const i of on(a0, t.name, s))
        assert.equal(a1[t.name][i], s, `${t.name} flow ${i} (${s}) goes on: ${a1[t.name]}`);
  }
  // the drop rule counted them
  const listed = nft('list', 'chain', 'ip', 'keepvs', 'nodest_pre');
  assert.match(listed, /@nodest counter packets [1-9]/, listed);
  // rs2 back (its check passes): IPVS restores it from the trash, its connections go on
  startCheck(2);
  await until('rs2 back in both services', () => inService(2, NAT) && inService(2, FNAT));
  // TCP's retransmission backoff: the client resends what was dropped within a few seconds
  const a2 = await c.ping(10000);
  for (const t of targets)
    for (const i of on(a0, t.name, 'rs2'))
      assert.equal(a2[t.name][i], 'rs2', `${t.name} flow ${i} back on rs2: ${a2[t.name]}`);
  await until('the drop chains gone', () => !/nodest_pre/.test(nft('list', 'table', 'ip', 'keepvs')));
  c.proc.stdin?.end('exit\n');
});

test('expire_nodest_conn 1 (by a reload): a removed real server connections are reset at once', {
  skip: !canRun,
  timeout: 60000,
}, async () => {
  writeFileSync(CONF, config(true));
  kv?.proc.kill('SIGHUP');
  await until('the reload applied', () => /expire_nodest_conn on/.test(log()));
  const c = client();
  await sleep(1000);
  const a0 = await c.ping();
  checkProcs.get(3)?.kill('SIGKILL');
  await until('rs3 out of both services', () => !inService(3, NAT) && !inService(3, FNAT));
  await sleep(1000);
  // conntrack forgot them: the next segment is a new flow to another real server, which resets it
  const a1 = await c.ping(5000);
  for (const t of targets) {
    const was = on(a0, t.name, 'rs3');
    assert.ok(was.length > 0, `${t.name}: a flow on rs3: ${a0[t.name]}`);
    for (const i of was) assert.equal(a1[t.name][i], 'x', `${t.name} flow ${i} (rs3, removed) reset: ${a1[t.name]}`);
  }
  assert.doesNotMatch(nft('list', 'table', 'ip', 'keepvs'), /nodest_pre/);
  c.proc.stdin?.end('exit\n');
});

test("expire_nodest_conn 0: a deleted virtual service's connections are dropped (not reset, not forwarded), NAT and full-NAT, IPv4 and IPv6; back, they go on", {
  skip: !canRun,
  timeout: 90000,
}, async () => {
  writeFileSync(CONF, config(false));
  kv?.proc.kill('SIGHUP');
  await until('the reload applied', () => /expire_nodest_conn off/.test(log()));
  startCheck(3);
  await until('every real server in every service', () => listed() === 12, 20000);
  const c = client(targets6);
  await sleep(1000);
  const a0 = await c.ping();
  for (const t of targets6)
    assert.ok(!a0[t.name].includes('-') && !a0[t.name].includes('x'), `${t.name}: every flow answered: ${a0[t.name]}`);
  // the four services leave the configuration (ip_vs_ctl.c __ip_vs_del_service unlinks their real servers)
  writeFileSync(CONF, config(false).replace(/virtual_server[\s\S]*$/, ''));
  kv?.proc.kill('SIGHUP');
  await until('the services gone', () => !/8[89]/.test(adm('-Ln')));
  await sleep(500);
  const a1 = await c.ping();
  for (const t of targets6)
    assert.deepEqual(a1[t.name], Array(FLOWS).fill('-'), `${t.name}: no answer and no reset: ${a1[t.name]}`);
  for (const f of ['ip', 'ip6']) {
    const l = nft('list', 'chain', f, 'keepvs', 'nodest_pre');
    assert.match(l, /@nodest counter packets [1-9]/, l);
  }
  // the services again: IPVS finds their real servers in its trash, the connections go on
  writeFileSync(CONF, config(false));
  kv?.proc.kill('SIGHUP');
  await until('the services back', () => listed() === 12, 20000);
  const a2 = await c.ping(10000);
  for (const t of targets6) assert.deepEqual(a2[t.name], a0[t.name], `${t.name}: the same real servers answer again`);
  try {
    await until('the drop chains gone', () => !/nodest_pre/.test(nft('list', 'table', 'ip', 'keepvs')));
  } catch (e) {
    throw new Error(
      `${e}\n${nft('list', 'set', 'ip', 'keepvs', 'nodest')}\n${nft('list', 'set', 'ip', 'keepvs', 'nodest_p0')}\n${nft('list', 'chain', 'ip', 'keepvs', 'nodest_pre')}`,
    );
  }
  c.proc.stdin?.end('exit\n');
});

test("expire_nodest_conn 0: each connection of a removed real server is dropped until its last packet + the state's timeout, then it is a new flow (reset elsewhere)", {
  skip: !canRun,
  timeout: 60000,
}, async () => {
  adm('--set', '6', '0', '0');
  const c = client([targets[0]]);
  await sleep(1000);
  const a0 = await c.ping();
  const [idle, active] = on(a0, 'nat', 'rs2');
  assert.ok(active !== undefined, `two flows on rs2: ${a0.nat}`);
  await sleep(3000);
  // one flow has a packet just before the removal, the other none for 3 s
  c.touch('nat', active);
  await sleep(300);
  const removed = Date.now();
  adm('-d', '-t', `${VIP}:${NAT}`, '-r', `198.18.1.12:${NAT}`);
  // IPVS: the idle one expires about 2.7 s after the removal, the active one about 6 s after
  await sleep(4000 - (Date.now() - removed));
  const a1 = await c.ping(1500);
  assert.equal(
    a1.nat[idle],
    'x',
    `the idle flow expired, its next segment a new flow that another real server resets: ${a1.nat}`,
  );
  assert.equal(a1.nat[active], '-', `the active flow still dropped: ${a1.nat}`);
  await sleep(Math.max(0, 7000 - (Date.now() - removed)));
  const a2 = await c.ping(4000);
  assert.equal(a2.nat[active], 'x', `then the active one: ${a2.nat}`);
  adm('--set', '900', '0', '0');
  adm('-a', '-t', `${VIP}:${NAT}`, '-r', `198.18.1.12:${NAT}`, '-m');
  c.proc.stdin?.end('exit\n');
});

test('keepvs killed with SIGKILL and started again: what the previous one dropped stays dropped (adopted from its nodest sets); back, it goes on', {
  skip: !canRun,
  timeout: 90000,
}, async () => {
  writeFileSync(CONF, config(false));
  kv?.proc.kill('SIGHUP');
  await until('every real server in every service', () => listed() === 12, 20000);
  const c = client(targets6);
  await sleep(1000);
  const a0 = await c.ping();
  for (const t of targets6)
    assert.ok(!a0[t.name].includes('-') && !a0[t.name].includes('x'), `${t.name}: every flow answered: ${a0[t.name]}`);
  // the four services gone, another one stays (so the new keepvs has a table to build at once)
  const other = `virtual_server ${VIP} 90 {\n  delay_loop 1\n  lvs_sched rr\n  lvs_method NAT\n  protocol TCP\n  real_server 198.18.1.11 90 {\n    TCP_CHECK {\n      connect_port 9188\n    }\n  }\n}\n`;
  writeFileSync(CONF, config(false).replace(/virtual_server[\s\S]*$/, other));
  kv?.proc.kill('SIGHUP');
  await until('the services gone', () => !/8[89]/.test(adm('-Ln')));
  kv?.proc.kill('SIGKILL');
  await kv?.exited;
  kv = startLabKeepvs({ ns: `${P}-lb1`, dir, conf: CONF, sock: SOCK, args: ['--dataplane', 'nft'] });
  await until('the new keepvs has its service', () => {
    try {
      return /198\.18\.1\.11:90/.test(adm('-Ln'));
    } catch {
      return false;
    }
  });
  await sleep(1500);
  const a1 = await c.ping();
  for (const t of targets6)
    assert.deepEqual(a1[t.name], Array(FLOWS).fill('-'), `${t.name}: still no answer and no reset: ${a1[t.name]}`);
  assert.match(log(), /\d+ removed real servers' connections still dropped \(listed by the previous keepvs\)/);
  // (the other one stays: deleted, its real server would be listed in turn)
  writeFileSync(CONF, config(false) + other);
  kv?.proc.kill('SIGHUP');
  await until('the services back', () => listed() === 12, 20000);
  const a2 = await c.ping(10000);
  for (const t of targets6) assert.deepEqual(a2[t.name], a0[t.name], `${t.name}: the same real servers answer again`);
  await until('the drop chains gone', () => !/nodest_pre/.test(nft('list', 'table', 'ip', 'keepvs')));
  c.proc.stdin?.end('exit\n');
});

test('expire_nodest_conn 0, a fwmark service whose real servers have no port (their addresses in no other service): a removed one gets nothing more on its connections; back, they go on', {
  skip: !canRun,
  timeout: 90000,
}, async () => {
  // the operator's mark, before keepvs's nat prerouting
  sh(
    'ip',
    'netns',
    'exec',
    `${P}-lb1`,
    'nft',
    `add table ip kvmark; add chain ip kvmark pre { type filter hook prerouting priority -160; }; add rule ip kvmark pre ip daddr ${VIP} tcp dport ${FWM_PORT} meta mark set 5`,
  );
  const real = (i: number) =>
    `  real_server 198.18.1.1${i} {\n    TCP_CHECK {\n      connect_port 9188\n      connect_timeout 1\n    }\n  }\n`;
  writeFileSync(
    CONF,
    `global_defs {\n  router_id lb1\n}\nvirtual_server fwmark 5 {\n  delay_loop 1\n  lvs_sched rr\n  lvs_method NAT\n  protocol TCP\n${[1, 2, 3].map(real).join('')}}\n`,
  );
  kv?.proc.kill('SIGHUP');
  const inFwm = (i: number) => adm('-Ln').includes(`198.18.1.1${i}:`);
  await until(
    'the fwmark service alone, three real servers',
    () => !/:8[89]/.test(adm('-Ln')) && [1, 2, 3].every(inFwm),
    20000,
  );
  const c = client([{ name: 'fwm', host: VIP, port: FWM_PORT }]);
  await sleep(1000);
  const a0 = await c.ping();
  for (const s of ['rs1', 'rs2', 'rs3']) assert.ok(on(a0, 'fwm', s).length > 0, `a flow on ${s}: ${a0.fwm}`);
  checkProcs.get(2)?.kill('SIGKILL');
  await until('rs2 out of the fwmark service', () => !inFwm(2));
  await sleep(500);
  const a1 = await c.ping();
  for (const i of on(a0, 'fwm', 'rs2')) assert.equal(a1.fwm[i], '-', `flow ${i} (rs2, removed): dropped: ${a1.fwm}`);
  for (const s of ['rs1', 'rs3'])
    for (const i of on(a0, 'fwm', s)) assert.equal(a1.fwm[i], s, `flow ${i} (${s}) goes on: ${a1.fwm}`);
  assert.match(nft('list', 'chain', 'ip', 'keepvs', 'nodest_pre'), /@nodest_rsa counter packets [1-9]/);
  startCheck(2);
  await until('rs2 back', () => inFwm(2));
  const a2 = await c.ping(10000);
  for (const i of on(a0, 'fwm', 'rs2')) assert.equal(a2.fwm[i], 'rs2', `flow ${i} back on rs2: ${a2.fwm}`);
  c.proc.stdin?.end('exit\n');
});
