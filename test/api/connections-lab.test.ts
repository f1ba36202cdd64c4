/**
 * GET /api/v1/connections on the kernel (nft) data plane in the network lab: keepvs on lb1 with a
 * NAT service, a persistent NAT service and a flow-pinned DR service (and an IPv6 one), long-lived
 * connections from the client. The API must list what `keepvsadm -Lnc` lists: the NAT flows from
 * conntrack, the persistence template, the pinned DR flows, each with its service and real server.
 * Needs root, nftables and the lab; skipped otherwise. Only lab addresses are used.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, test } from 'node:test';
import { keepvsadm, LAB, type LabKeepvs, startLabKeepvs } from '../dataplane/lab-daemon.js';
import { addDrLabAddresses } from '../dataplane/nft/dr-lab-addresses.js';
import { until as untilTruthy } from '../e2e/harness.js';
import { asLnc, type ConnectionRow, lncLines } from './connection-rows.js';

const P = `kc${process.pid % 100000}`;
const canRun = process.getuid?.() === 0 && existsSync(LAB) && existsSync('/usr/sbin/nft');
const dir = mkdtempSync(join(tmpdir(), 'kv-conns-lab-'));
const env = { ...process.env, LAB_PREFIX: P, LAB_RS: '2', LAB_DR: '0' };
const SOCK = join(dir, 'keepvs.sock');
const API = 'http://127.0.0.1:19181';
const V4 = '198.18.0.100';
const V6 = '2001:2::100';
const FLOWS = 4;
const procs: ChildProcess[] = [];

const sh = (cmd: string, ...args: string[]) => execFileSync(cmd, args, { env, encoding: 'utf8' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A real server: every line is answered with the server's name. */
const RS_SERVER = `import net from 'node:net';
const [name, ...ports] = process.argv.slice(2);
for (const p of ports)
  net.createServer((s) => { s.on('data', () => s.write(name + '\\n')); s.on('error', () => {}); }).listen(Number(p), '::');
`;
/** FLOWS long-lived connections to each target; prints the answers once all came, then holds them open. */
const CLIENT = `import net from 'node:net';
const targets = JSON.parse(process.argv[2]);
const n = Number(process.argv[3]);
const answers = {};
let left = targets.length * n;
for (const t of targets) {
  answers[t.name] = [];
  for (let i = 0; i < n; i++) {
    const s = net.connect({ host: t.host, port: t.port }, () => s.write('which\\n'));
    s.once('data', (d) => { answers[t.name].push(String(d).trim()); if (--left === 0) process.stdout.write(JSON.stringify(answers) + '\\n'); });
    s.on('error', (e) => process.stdout.write(JSON.stringify({ error: t.name + ' ' + e.code }) + '\\n'));
  }
}
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
`;

const rs = (port: number, six = false) =>
  [1, 2].map((i) => `  real_server ${six ? `2001:2:0:1::1${i}` : `198.18.1.1${i}`} ${port} { }`).join('\n');
const vs = (vip: string, port: number, body: string) =>
  `virtual_server ${vip} ${port} {\n  delay_loop 1\n  protocol TCP\n${body}${rs(port === 85 ? 80 : port, vip.includes(':'))}\n}\n`;
const CONFIG = `global_defs {\n  router_id lb1\n}
${vs(V4, 80, '  lvs_sched rr\n  lvs_method NAT\n')}
${vs(V4, 85, '  lvs_sched rr\n  lvs_method NAT\n  persistence_timeout 30\n')}
${vs(V4, 86, '  lvs_sched mh\n  mh-port\n  lvs_method DR\n  flow_pinning 600\n')}
${vs(V6, 86, '  lvs_sched mh\n  mh-port\n  lvs_method DR\n  flow_pinning 600\n')}`;

function spawnIn(host: string, ...argv: string[]): ChildProcess {
  const p = spawn('ip', ['netns', 'exec', `${P}-${host}`, ...argv], { stdio: ['pipe', 'pipe', 'pipe'] });
  procs.push(p);
  return p;
}

const adm = (...args: string[]) => keepvsadm(SOCK, ...args);

/** Runs `then` (a function of the fetch Response, printing what it returns) on `path` from lb1 (the API listens on lb1's loopback). */
const fetchInLb1 = (path: string, then: string) =>
  sh('ip', 'netns', 'exec', `${P}-lb1`, process.execPath, '-e', `fetch(${JSON.stringify(API + path)}).then(${then})`);

/** The API as seen from lb1. */
function api(path: string): { status: number; body: Record<string, unknown> } {
  return JSON.parse(
    fetchInLb1(path, 'async (r) => process.stdout.write(JSON.stringify({ status: r.status, body: await r.json() }))'),
  );
}

type Row = ConnectionRow;
const rows = (query = '') => {
  const r = api(`/api/v1/connections${query}`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body as { total: number; matched: number; connections: Row[]; unlisted?: unknown[] };
};
const until = <T>(what: string, f: () => T | undefined | false, ms = 20000) =>
  untilTruthy(what, f, ms, () => `keepvs log:\n${kv?.log() ?? ''}`);

let client: ChildProcess | undefined;
let kv: LabKeepvs | undefined;

before(async () => {
  if (!canRun) return;
  writeFileSync(join(dir, 'rs.mjs'), RS_SERVER);
  writeFileSync(join(dir, 'client.mjs'), CLIENT);
  writeFileSync(join(dir, 'keepalived.conf'), CONFIG);
  sh('bash', LAB, 'up');
  addDrLabAddresses(sh, P, V4, V6, 2);
  for (const i of [1, 2]) {
    spawnIn(`rs${i}`, process.execPath, join(dir, 'rs.mjs'), `rs${i}`, '80', '86');
  }
  kv = startLabKeepvs({
    ns: `${P}-lb1`,
    dir,
    sock: SOCK,
    args: ['--dataplane=nft', '--api', API.slice('http://'.length), '--api-token', 'lab-token'],
  });
  // every real server in: NAT ones at once, DR ones once their MAC is known
  await until('two Masq servers in each NAT service and two Route in each DR one', () => {
    const l = adm('-Ln');
    return (l.match(/ Masq /g) ?? []).length === 4 && (l.match(/ Route /g) ?? []).length === 4;
  });
  await sleep(1000);
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

test('kernel plane: the API lists NAT flows, the template and pinned DR flows as keepvsadm -Lnc does', {
  skip: !canRun,
  timeout: 90000,
}, async () => {
  const targets = [
    { name: 'nat', host: V4, port: 80 },
    { name: 'sticky', host: V4, port: 85 },
    { name: 'pinned', host: V4, port: 86 },
    { name: 'pinned6', host: V6, port: 86 },
  ];
  client = spawnIn('client', process.execPath, join(dir, 'client.mjs'), JSON.stringify(targets), String(FLOWS));
  const first = await createInterface({ input: client.stdout as NodeJS.ReadableStream })
    [Symbol.asyncIterator]()
    .next();
  const answers = JSON.parse(String(first.value));
  for (const t of targets) assert.equal(answers[t.name]?.length, FLOWS, JSON.stringify(answers));

  const NAT = `tcp:${V4}:80`;
  const STICKY = `tcp:${V4}:85`;
  const PINNED = `tcp:${V4}:86`;
  const PINNED6 = `tcp:[${V6}]:86`;
  // conntrack is read once a second: wait until every flow is there, and the two reads agree
  const l = await until('the API and -Lnc agree on every live entry', () => {
    const a = rows();
    const k = a.connections.filter((r) => r.plane === 'kernel');
    const n = (service: string, kind: string) => k.filter((r) => r.service === service && r.kind === kind).length;
    if (n(NAT, 'connection') !== FLOWS || n(STICKY, 'connection') !== FLOWS || n(STICKY, 'template') !== 1) return;
    if (n(PINNED, 'pinned') !== FLOWS || n(PINNED6, 'pinned') !== FLOWS) return;
    const lnc = adm('-Lnc');
    const b = rows();
    return JSON.stringify(b.connections.map(asLnc).sort()) === JSON.stringify(lncLines(lnc)) ? b : undefined;
  });
  assert.equal(l.total, l.connections.length);
  for (const r of l.connections) {
    assert.equal(r.plane, 'kernel');
    const d = r.destination;
    assert.ok(
      r.realServer === (r.family === 6 ? `[${d.address}]:${d.port}` : `${d.address}:${d.port}`),
      JSON.stringify(r),
    );
  }
  const nat = l.connections.filter((r) => r.service === NAT);
  assert.ok(
    nat.every((r) => r.state === 'ESTABLISHED' && r.source.address === '198.18.0.10' && r.kind === 'connection'),
  );
  const template = l.connections.find((r) => r.kind === 'template');
  assert.deepEqual(
    [template?.service, template?.source, template?.state],
    [STICKY, { address: '198.18.0.10', port: 0 }, 'NONE'],
  );
  assert.ok((template?.expire ?? 0) > 0 && (template?.expire ?? 99) <= 30);
  // ipvsadm's PersistConn counts the templates of each real server: keepvsadm and the status API
  const persist = adm('-Ln', '--persistent-conn', '-t', `${V4}:85`);
  const rsLine = (a: string) => new RegExp(`-> ${a.replace(/\./g, '\\.')}:80\\s+1\\s+(\\d+)\\s+`).exec(persist)?.[1];
  const other = template?.destination.address === '198.18.1.11' ? '198.18.1.12' : '198.18.1.11';
  assert.deepEqual([rsLine(template?.destination.address ?? ''), rsLine(other)], ['1', '0'], persist);
  const status = api('/api/v1/status').body as {
    lvs: { table: { services: { id: string; dests: { id: string; persistConns: number }[] }[] } };
  };
  const stickyDests = status.lvs.table.services.find((x) => x.id === STICKY)?.dests ?? [];
  assert.deepEqual(
    stickyDests.map((x) => [x.id, x.persistConns]).sort(),
    [
      [`${template?.destination.address}:80`, 1],
      [`${other}:80`, 0],
    ].sort(),
  );
  const pinned = l.connections.filter((r) => r.kind === 'pinned' && r.service === PINNED);
  assert.ok(pinned.every((r) => r.state === 'NONE' && r.virtual.port === 86));
  assert.deepEqual(
    pinned.map((r) => r.destination.address).sort(),
    answers.pinned.map((a: string) => `198.18.1.1${a.slice(2)}`).sort(),
    'each pinned flow names the real server that answered it',
  );
  // IPv6 pinned flows: the key has 96 bits of the client address, the client set the rest (render.ts)
  const pinned6 = l.connections.filter((r) => r.service === PINNED6);
  assert.ok(pinned6.every((r) => r.kind === 'pinned' && r.source.address === '2001:2::10' && r.virtual.port === 86));
  assert.deepEqual(
    pinned6.map((r) => r.destination.address).sort(),
    answers.pinned6.map((a: string) => `2001:2:0:1::1${a.slice(2)}`).sort(),
    'each pinned IPv6 flow names the real server that answered it',
  );
  assert.deepEqual(l.unlisted, [], JSON.stringify(l.unlisted));
  assert.match(adm('-Lnc'), /\[2001:2::100\]:86/);
  const metrics = fetchInLb1('/metrics', 'async (r) => process.stdout.write(await r.text())');
  assert.match(
    metrics,
    new RegExp(
      `^keepvs_real_server_persistent_connections\\{service="${STICKY}",real_server="${template?.destination.address}:80"\\} 1$`,
      'm',
    ),
  );
  // filters reach the kernel entries too
  assert.equal(rows('?kind=pinned').matched, 2 * FLOWS, 'IPv4 and IPv6');
  assert.equal(rows(`?service=${encodeURIComponent(STICKY)}`).matched, FLOWS + 1);
  assert.equal(rows('?plane=proxy').matched, 0);
  assert.equal(
    rows(`?real_server=198.18.1.11:86&kind=pinned`).matched,
    answers.pinned.filter((a: string) => a === 'rs1').length,
  );
});
