/**
 * keepvs announcing a VIP by BGP to a real FRR router (docs/scale-out.md), in the network lab
 * (../shared/lab/lab.sh): the client namespace is the router (FRR zebra + bgpd + bfdd, AS 65000),
 * lb1 runs keepvs with `bgp_announce` (its own private FRR bgpd, AS 65001, BFD), rs1 the real
 * server. Shown: the route appears at the router and carries requests; a failed real server
 * withdraws it; its return re-announces it only after the hold-down; a cut link is noticed by BFD
 * at the router; a stopped keepvs withdraws first and leaves no bgpd behind. Needs root, FRR and
 * the lab; skipped otherwise. Only lab addresses are used.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { LAB, type LabKeepvs, startLabKeepvs } from '../dataplane/lab-daemon.js';

const FRR = '/usr/lib/frr';
const P = `kb${process.pid % 100000}`;
const canRun =
  process.getuid?.() === 0 &&
  existsSync(LAB) &&
  ['zebra', 'bgpd', 'bfdd'].every((d) => existsSync(join(FRR, d))) &&
  spawnOk('id', ['frr']);
const dir = mkdtempSync(join(tmpdir(), 'kv-bgp-lab-'));
const env = { ...process.env, LAB_PREFIX: P, LAB_RS: '1', LAB_DR: '0' };
const API_PORT = 19700 + (process.pid % 200);
const VIP = '198.18.0.100';
let kv: LabKeepvs | undefined;
let rs: ChildProcess | undefined;
const log = () => kv?.log() ?? '';

function spawnOk(cmd: string, args: string[]): boolean {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const sh = (cmd: string, ...args: string[]) => execFileSync(cmd, args, { env, encoding: 'utf8' });
const inNs = (host: string, ...argv: string[]) => sh('ip', 'netns', 'exec', `${P}-${host}`, ...argv);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const routerRoute = () => inNs('client', 'ip', '-4', 'route', 'show', `${VIP}/32`).trim();
const routerDir = join(dir, 'router');
const vtyRouter = (cmd: string) => inNs('client', 'vtysh', '--vty_socket', routerDir, '-c', cmd);

async function until(what: string, f: () => boolean, ms = 20000): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    try {
      if (f()) return Date.now() - t0;
    } catch {}
    if (Date.now() - t0 > ms) assert.fail(`timed out waiting for ${what}\n${log().slice(-3000)}`);
    await sleep(50);
  }
}

function status(): {
  bgp?: { vips: { announced: boolean; reason: string }[]; neighbors: { state: string }[]; error?: string };
} {
  return JSON.parse(
    inNs(
      'lb1',
      'curl',
      '-s',
      '-m',
      '2',
      '-H',
      'authorization: Bearer lab-token',
      `http://127.0.0.1:${API_PORT}/api/v1/status`,
    ),
  );
}

/** One HTTP request from the router namespace to the VIP: the real server's name, or '' */
function request(): string {
  try {
    return inNs('client', 'curl', '-s', '-m', '2', `http://${VIP}/`).trim();
  } catch {
    return '';
  }
}

function startRs(): ChildProcess {
  return spawn(
    'ip',
    [
      'netns',
      'exec',
      `${P}-rs1`,
      process.execPath,
      '-e',
      "require('node:http').createServer((q, s) => s.end('rs1\\n')).listen(80)",
    ],
    { stdio: 'ignore' },
  );
}

function startRouter(): void {
  mkdirSync(routerDir);
  const uid = Number(sh('id', '-u', 'frr').trim());
  const gid = Number(sh('id', '-g', 'frr').trim());
  writeFileSync(join(routerDir, 'zebra.conf'), 'hostname router\n');
  writeFileSync(join(routerDir, 'bfdd.conf'), 'bfd\n profile fast\n  receive-interval 100\n  transmit-interval 100\n');
  writeFileSync(
    join(routerDir, 'bgpd.conf'),
    [
      'router bgp 65000',
      ' bgp router-id 198.18.0.10',
      ' no bgp ebgp-requires-policy',
      ' bgp bestpath as-path multipath-relax',
      ' neighbor 198.18.0.1 remote-as 65001',
      ' neighbor 198.18.0.1 timers 1 3',
      ' neighbor 198.18.0.1 timers connect 1',
      ' neighbor 198.18.0.1 bfd profile fast',
      ' address-family ipv4 unicast',
      '  maximum-paths 8',
      ' exit-address-family',
      '',
    ].join('\n'),
  );
  for (const f of ['zebra.conf', 'bfdd.conf', 'bgpd.conf']) chownSync(join(routerDir, f), uid, gid);
  chownSync(routerDir, uid, gid);
  for (const d of ['zebra', 'bfdd', 'bgpd']) {
    inNs(
      'client',
      join(FRR, d),
      '-d',
      '-P',
      '0',
      '--vty_socket',
      routerDir,
      '-z',
      join(routerDir, 'zserv.api'),
      '-f',
      join(routerDir, `${d}.conf`),
      '-i',
      join(routerDir, `${d}.pid`),
      '--log',
      `file:${join(routerDir, `${d}.log`)}`,
    );
    if (d === 'zebra') execFileSync('sleep', ['0.5']);
  }
}

function stopRouter(): void {
  for (const d of ['bgpd', 'bfdd', 'zebra'])
    try {
      process.kill(Number(readFileSync(join(routerDir, `${d}.pid`), 'utf8')), 'SIGTERM');
    } catch {}
}

const CONFIG = `bgp_announce {
  local_as 65001
  router_id 198.18.0.1
  neighbor 198.18.0.10 remote_as 65000 bfd
  timers 1 3
  bfd_timers 100 3
  hold_down 1
  hold_down_max 60
  frr_dir ${join(dir, 'frr-lb1')}
}
virtual_server ${VIP} 80 {
  delay_loop 1
  lvs_sched mh
  lvs_method NAT
  protocol TCP
  bgp_announce
  real_server 198.18.1.11 80 {
    TCP_CHECK {
      connect_timeout 1
      retry 0
    }
  }
}
`;

function cleanup(): void {
  if (kv && kv.proc.exitCode === null) kv.proc.kill('SIGKILL');
  rs?.kill('SIGKILL');
  stopRouter();
  try {
    sh('bash', LAB, 'down');
  } catch {}
  rmSync(dir, { recursive: true, force: true });
}

before(async () => {
  if (!canRun) return;
  // a runner that ends this file with a signal must not leave the lab behind
  for (const sig of ['SIGTERM', 'SIGINT'] as const)
    process.once(sig, () => {
      cleanup();
      process.exit(1);
    });
  chmodSync(dir, 0o755);
  writeFileSync(join(dir, 'keepalived.conf'), CONFIG);
  sh('bash', LAB, 'up');
  // the userspace proxy answers on the VIP: lb1 has it on lo, the router learns where it is by BGP
  sh('ip', '-n', `${P}-lb1`, 'addr', 'add', `${VIP}/32`, 'dev', 'lo');
  startRouter();
  rs = startRs();
  kv = startLabKeepvs({
    ns: `${P}-lb1`,
    dir,
    args: [
      '--dataplane=proxy',
      '--dataplane-workers',
      '1',
      '--api',
      `127.0.0.1:${API_PORT}`,
      '--api-token',
      'lab-token',
    ],
  });
});

after(() => {
  if (canRun) cleanup();
});

test('keepvs announces the VIP to a real FRR router, which then routes requests to it', { skip: !canRun }, async () => {
  await until('the route at the router', () => routerRoute().includes('via 198.18.0.1'), 40000);
  assert.match(vtyRouter('show bgp ipv4 unicast 198.18.0.100/32'), /65001/);
  await until('a request through the BGP route', () => request() === 'rs1');
  const s = status();
  assert.equal(s.bgp?.vips[0].announced, true);
  assert.equal(s.bgp?.neighbors[0].state, 'Established');
  // BFD comes up after the BGP session (its first packets wait for the session to ask for it)
  await until('BFD up at the router', () => /198\.18\.0\.1 +up/.test(vtyRouter('show bfd peers brief')));
});

test('the real server fails: withdrawn; it returns: announced again after the hold-down', {
  skip: !canRun,
}, async () => {
  rs?.kill('SIGKILL');
  const down = await until('the withdrawal', () => routerRoute() === '');
  assert.match(status().bgp?.vips[0].reason ?? '', /tcp:198\.18\.0\.100:80: (quorum lost|0 real servers healthy)/);
  rs = startRs();
  let heldDown = false;
  const t0 = Date.now();
  await until('the route back', () => {
    if (/held down/.test(status().bgp?.vips[0].reason ?? '')) heldDown = true;
    return routerRoute().includes('via 198.18.0.1');
  });
  const back = Date.now() - t0;
  assert.ok(heldDown, 'the API showed the hold-down');
  // the first announcement lasted less than hold_down_max: the hold-down doubled to 2 s
  assert.ok(back >= 2000, `re-announced after ${back} ms`);
  console.log(`# withdrawn ${down} ms after the real server was killed; re-announced ${back} ms after it came back`);
});

test('the director`s link is cut: the router drops the route by BFD, well before the BGP hold time', {
  skip: !canRun,
}, async () => {
  await until('the route', () => routerRoute().includes('via 198.18.0.1'));
  // the switch port: neither side sees its own link go down, like a failed box or cable upstream
  sh('ip', '-n', `${P}-sw`, 'link', 'set', 'lb1-f', 'down');
  const gone = await until('BFD down at the router', () => routerRoute() === '', 10000);
  sh('ip', '-n', `${P}-sw`, 'link', 'set', 'lb1-f', 'up');
  console.log(`# link cut: route withdrawn at the router after ${gone} ms (BFD 100 ms x 3, BGP hold 3 s)`);
  assert.ok(gone < 2500, `${gone} ms`);
  await until('the session and route back', () => routerRoute().includes('via 198.18.0.1'), 30000);
});

test('keepvs stops: the VIP is withdrawn before it exits, and its bgpd is gone', { skip: !canRun }, async () => {
  const pidFile = join(dir, 'frr-lb1', 'run', 'bgpd.pid');
  const bgpd = Number(readFileSync(pidFile, 'utf8'));
  assert.ok(existsSync(`/proc/${bgpd}`));
  kv?.proc.kill('SIGTERM');
  await until('the withdrawal', () => routerRoute() === '', 10000);
  await until('keepvs exit', () => kv?.proc.exitCode !== null || kv?.proc.signalCode !== null, 15000);
  await until(
    'bgpd exit',
    () => !existsSync(`/proc/${bgpd}`) || /\) Z /.test(readFileSync(`/proc/${bgpd}/stat`, 'utf8')),
  );
  assert.match(log(), /BGP: withdrawing 198\.18\.0\.100\/32 \(stopping\)/);
});
