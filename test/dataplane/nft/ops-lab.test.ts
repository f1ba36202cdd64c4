/**
 * UDP one-packet scheduling (`ops`) through the kernel plane in the network lab: keepvs on lb1 with
 * UDP rr services, NAT and DR, IPv4 and IPv6, each once with `ops` and once without. A client sends
 * datagrams from ONE socket: with ops they are scheduled one by one (replies from more than one real
 * server, every reply from VIP:port), without ops conntrack (NAT) or the flow hash (DR) keeps them all
 * on one real server. keepvsadm lists the ops services with `ops`, as ipvsadm does.
 * Needs root, nftables and the lab; skipped otherwise. Only lab addresses are used.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { addDrLabAddresses } from './dr-lab-addresses.js';

const LAB = join(process.cwd(), '..', 'shared', 'lab', 'lab.sh');
const P = `ko${process.pid % 100000}`;
const canRun = process.getuid?.() === 0 && existsSync(LAB) && existsSync('/usr/sbin/nft');
const dir = mkdtempSync(join(tmpdir(), 'kv-ops-lab-'));
const env = { ...process.env, LAB_PREFIX: P, LAB_RS: '3', LAB_DR: '0' };
const KEEPVS = join(process.cwd(), 'bin', 'keepvs.js');
const KEEPVSADM = join(process.cwd(), 'bin', 'keepvsadm.js');
const SOCK = join(dir, 'keepvs.sock');
const V4 = '198.18.0.100';
const V6 = '2001:2::100';
const DATAGRAMS = 12;
const procs: ChildProcess[] = [];

const sh = (cmd: string, ...args: string[]) => execFileSync(cmd, args, { env, encoding: 'utf8' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A real server: every datagram on its ports is answered with the server's name, IPv4 and IPv6.
 * DR ports (\`port@\`) bind the VIPs on lo: a wildcard UDP socket answers from the route's source
 * address, not from the VIP the datagram came to (a DR real server's own concern, as for DNS servers).
 */
const RS_SERVER = `import dgram from 'node:dgram';
const [name, ...ports] = process.argv.slice(2);
for (const p of ports)
  for (const type of ['udp4', 'udp6']) {
    const s = dgram.createSocket({ type, ipv6Only: type === 'udp6' });
    s.on('message', (m, r) => s.send(name, r.port, r.address));
    const dr = p.endsWith('@');
    s.bind(Number(p.replace('@', '')), dr ? (type === 'udp4' ? '${V4}' : '${V6}') : undefined);
  }
`;

/** One socket, datagrams one after the other (each waits for its reply): who answered, from where. */
const CLIENT = `import dgram from 'node:dgram';
const [host, port, n] = process.argv.slice(2);
const s = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
const names = []; const from = new Set(); let lost = 0;
function one(i) {
  return new Promise((resolve) => {
    const t = setTimeout(() => { lost++; s.off('message', on); resolve(); }, 1000);
    function on(m, r) { clearTimeout(t); s.off('message', on); names.push(String(m)); from.add(r.address + ' ' + r.port); resolve(); }
    s.on('message', on);
    s.send('q' + i, Number(port), host);
  });
}
s.bind(0, async () => {
  for (let i = 0; i < Number(n); i++) await one(i);
  process.stdout.write(JSON.stringify({ names, from: [...from], lost }));
  s.close();
});
`;

interface Result {
  names: string[];
  from: string[];
  lost: number;
}

const rs = (port: number, six: boolean) =>
  [1, 2, 3].map((i) => `  real_server ${six ? `2001:2:0:1::1${i}` : `198.18.1.1${i}`} ${port} {\n  }`).join('\n');
const vs = (vip: string, port: number, method: string, ops: boolean) =>
  `virtual_server ${vip} ${port} {\n  lvs_sched rr\n  lvs_method ${method}\n  protocol UDP\n${ops ? '  ops\n' : ''}${rs(port, vip.includes(':'))}\n}\n`;
const CONFIG = `global_defs {\n  router_id lb1\n}\n${[V4, V6]
  .flatMap((v) => [vs(v, 53, 'NAT', true), vs(v, 54, 'NAT', false), vs(v, 82, 'DR', true), vs(v, 83, 'DR', false)])
  .join('')}`;

function spawnIn(host: string, ...argv: string[]): ChildProcess {
  const p = spawn('ip', ['netns', 'exec', `${P}-${host}`, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
  procs.push(p);
  return p;
}

function adm(...args: string[]): string {
  return execFileSync(process.execPath, [KEEPVSADM, ...args], {
    env: { ...process.env, KEEPVS_SOCKET: SOCK },
    encoding: 'utf8',
  });
}

function send(vip: string, port: number, n = DATAGRAMS): Result {
  return JSON.parse(
    sh('ip', 'netns', 'exec', `${P}-client`, process.execPath, join(dir, 'client.mjs'), vip, String(port), String(n)),
  );
}

async function until(what: string, f: () => boolean, ms = 20000): Promise<void> {
  const t0 = Date.now();
  for (;;) {
    try {
      if (f()) return;
    } catch {}
    if (Date.now() - t0 > ms) assert.fail(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

let kv: ChildProcess | undefined;
let log = '';

before(async () => {
  if (!canRun) return;
  writeFileSync(join(dir, 'rs.mjs'), RS_SERVER);
  writeFileSync(join(dir, 'client.mjs'), CLIENT);
  writeFileSync(join(dir, 'keepalived.conf'), CONFIG);
  sh('bash', LAB, 'up');
  addDrLabAddresses(sh, P, V4, V6, 3);
  for (const i of [1, 2, 3])
    spawnIn(`rs${i}`, process.execPath, join(dir, 'rs.mjs'), `rs${i}`, '53', '54', '82@', '83@');
  kv = spawnIn(
    'lb1',
    process.execPath,
    KEEPVS,
    '-n',
    '-l',
    '-f',
    join(dir, 'keepalived.conf'),
    '--socket',
    SOCK,
    '-p',
    join(dir, 'keepvs.pid'),
    '-c',
    join(dir, 'checkers.pid'),
    '-r',
    join(dir, 'vrrp.pid'),
  );
  kv.stdout?.on('data', (d) => (log += d));
  kv.stderr?.on('data', (d) => (log += d));
  // every real server in the DR services with its MAC (the slot maps filled), then datagrams answered
  await until(
    'three real servers in each of the 8 services',
    () => (adm('-Ln').match(/ -> (198\.|\[2001)/g) ?? []).length === 24,
  )
    .then(() =>
      until('the DR services forwarding', () =>
        [V4, V6].every((v) => send(v, 82, 3).lost === 0 && send(v, 83, 3).lost === 0),
      ),
    )
    .catch((e) => {
      throw new Error(`${e}; keepvs log:\n${log.slice(-3000)}`);
    });
});

after(() => {
  if (!canRun) return;
  kv?.kill('SIGTERM');
  for (const p of procs) if (p !== kv) p.kill('SIGKILL');
  try {
    sh('bash', LAB, 'down');
  } catch {}
  rmSync(dir, { recursive: true, force: true });
});

for (const [mode, port] of [
  ['NAT', 53],
  ['DR', 82],
] as const)
  for (const vip of [V4, V6])
    test(`${mode} ${vip.includes(':') ? 'IPv6' : 'IPv4'} ops: datagrams of one socket reach several real servers, replies from VIP:port; without ops one`, {
      skip: !canRun,
      timeout: 30000,
    }, () => {
      const ops = send(vip, port);
      assert.equal(ops.lost, 0, JSON.stringify(ops));
      // rr per datagram: every server in turn (IPVS's rr order), each reply from the VIP's own address and port
      assert.deepEqual(new Set(ops.names), new Set(['rs1', 'rs2', 'rs3']), JSON.stringify(ops));
      for (let i = 3; i < ops.names.length; i++) assert.equal(ops.names[i], ops.names[i - 3], JSON.stringify(ops));
      assert.deepEqual(ops.from, [`${vip} ${port}`]);
      const flow = send(vip, port + 1);
      assert.equal(flow.lost, 0, JSON.stringify(flow));
      assert.equal(new Set(flow.names).size, 1, `without ops one real server: ${JSON.stringify(flow)}`);
      assert.deepEqual(flow.from, [`${vip} ${port + 1}`]);
    });

test('NAT ops: --stats counts each datagram as a connection and its packets in and out', {
  skip: !canRun,
}, async () => {
  adm('-Z', '-u', `${V4}:53`);
  await sleep(1200);
  send(V4, 53);
  await until(
    'counters read',
    () => {
      // UDP  198.18.0.100:53   Conns InPkts OutPkts InBytes OutBytes (service line first)
      const m = /UDP {2}198\.18\.0\.100:53\s+(\d+)\s+(\d+)\s+(\d+)/.exec(adm('-Ln', '--stats', '-u', `${V4}:53`));
      return Number(m?.[1]) === DATAGRAMS && Number(m?.[2]) === DATAGRAMS && Number(m?.[3]) === DATAGRAMS;
    },
    5000,
  );
});

test('NAT ops keeps no conntrack entry; keepvsadm lists ops as ipvsadm does', { skip: !canRun }, () => {
  send(V4, 53, 3);
  send(V4, 54, 3);
  const ct = sh('ip', 'netns', 'exec', `${P}-lb1`, 'conntrack', '-L', '-p', 'udp');
  assert.doesNotMatch(ct, /dport=53 /, ct);
  assert.match(ct, /dport=54 /, ct);
  const out = adm('-Ln');
  assert.match(out, /UDP {2}198\.18\.0\.100:53 rr ops\n/);
  assert.match(out, /UDP {2}\[2001:2::100\]:82 rr ops\n/);
  assert.match(out, /UDP {2}198\.18\.0\.100:54 rr\n/);
  assert.match(adm('-Sn'), /-A -u 198\.18\.0\.100:53 -s rr -o/);
});

test('live edits: a quiesced real server gets no datagram; ops switched off (-E without -o) pins the socket again', {
  skip: !canRun,
  timeout: 30000,
}, async () => {
  adm('-e', '-u', `${V4}:53`, '-r', '198.18.1.11:53', '-m', '-w', '0');
  await until('rs1 out of the ops rotation', () => !send(V4, 53, 6).names.includes('rs1'));
  const two = send(V4, 53);
  assert.deepEqual(new Set(two.names), new Set(['rs2', 'rs3']), JSON.stringify(two));
  // a weight change is an element update (nfnetlink), never a refused batch or a rebuild
  assert.doesNotMatch(log, /refused|rebuilding/, log.slice(-2000));
  adm('-e', '-u', `${V4}:53`, '-r', '198.18.1.11:53', '-m', '-w', '1');
  adm('-E', '-u', `${V4}:53`, '-s', 'rr');
  await until('-Ln without ops', () => /UDP {2}198\.18\.0\.100:53 rr\n/.test(adm('-Ln')));
  await sleep(300);
  const flow = send(V4, 53);
  assert.equal(flow.lost, 0, JSON.stringify(flow));
  assert.equal(new Set(flow.names).size, 1, JSON.stringify(flow));
  adm('-E', '-u', `${V4}:53`, '-s', 'rr', '-o');
  await until('ops again', () => new Set(send(V4, 53, 6).names).size === 3);
});
