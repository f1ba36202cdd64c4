/**
 * Connection sync in the network lab (../shared/lab/lab.sh, docs/conn-sync.md): keepvs on lb1
 * and lb2 (kernel plane, NAT and full-NAT, rr over three real servers, VRRPv3 advert_int 0.2),
 * `lvs_sync_daemon eth1 VI_1` driving conntrackd on both. A client holds 20 long-lived TCP
 * connections to each service (the full-NAT local address is a VIP of the instance); lb1 dies (keepvs
 * SIGKILLed with its whole process group, then its links go down: the VIP and the kernel rules it
 * leaves behind must not keep forwarding); lb2 takes over and every connection goes on with its
 * own real server. Without the sync, lb2 schedules their next packets afresh (conntrack picks
 * mid-stream packets up as new flows) and rr sends them to other real servers, which reset them:
 * 0 of 20 kept when this test runs without lvs_sync_daemon. Also checks `keepvsadm -L --daemon` on both and `-Lnc` on the backup. Needs root,
 * nftables, conntrackd and the lab; skipped otherwise. Only lab addresses are used.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { KEEPVSADM, LAB, type LabKeepvs, startLabKeepvs } from '../lab-daemon.js';

const P = `kcs${process.pid % 100000}`;
const canRun =
  process.getuid?.() === 0 && existsSync(LAB) && existsSync('/usr/sbin/nft') && existsSync('/usr/sbin/conntrackd');
const dir = mkdtempSync(join(tmpdir(), 'kv-sync-lab-'));
const env = { ...process.env, LAB_PREFIX: P, LAB_RS: '3', LAB_DR: '0' };
const procs: ChildProcess[] = [];
const keepvs = new Map<string, LabKeepvs>();

const sh = (cmd: string, ...args: string[]) => execFileSync(cmd, args, { env, encoding: 'utf8' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sock = (host: string) => keepvs.get(host)?.sock ?? join(dir, host, 'keepvs.sock');

/** Each real server answers every line with its name: a connection moved to another one is reset. */
const RS_SERVER = `import net from 'node:net';
const name = process.argv[2];
for (const port of [80, 81])
  net.createServer((s) => { s.on('data', () => s.write(name + '\\n')); s.on('error', () => {}); }).listen(port, '0.0.0.0');
`;

/**
 * 20 connections, a line every 100 ms each; prints, when told to stop (SIGUSR2) or at the end,
 * one JSON line: per connection its first real server, answers, and whether it broke or moved.
 */
const CLIENT = `import net from 'node:net';
const [host, n, ms] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
const ports = process.argv[5].split(',').map(Number);
const conns = [];
// one short connection first: lb1's rr counter is then one ahead of lb2's, so a backup that
// scheduled the flows afresh would not land them on their servers by the same rr order
for (const port of ports)
  await new Promise((resolve) => { const w = net.connect({ host, port }, () => { w.destroy(); resolve(); }); w.on('error', resolve); });
for (const port of ports) for (let i = 0; i < n; i++) {
  const c = { port, rs: '', answers: 0, broken: '', moved: false, lastAt: 0, maxGapMs: 0 };
  const s = net.connect({ host, port });
  let buf = '';
  s.on('data', (d) => {
    buf += d;
    let nl;
    while ((nl = buf.indexOf('\\n')) >= 0) {
      const name = buf.slice(0, nl); buf = buf.slice(nl + 1);
      if (!c.rs) c.rs = name; else if (name !== c.rs) c.moved = true;
      const now = Date.now();
      if (c.lastAt) c.maxGapMs = Math.max(c.maxGapMs, now - c.lastAt);
      c.lastAt = now; c.answers++;
    }
  });
  s.on('error', (e) => { c.broken ||= e.code ?? String(e); });
  s.on('close', () => { c.broken ||= 'closed'; });
  const t = setInterval(() => { if (!s.destroyed) s.write('ping\\n'); }, 100);
  c.stop = () => { clearInterval(t); s.destroy(); };
  conns.push(c);
}
const report = () => {
  const out = conns.map(({ stop, ...c }) => c);
  process.stdout.write(JSON.stringify(out) + '\\n');
};
process.on('SIGUSR1', report);
setTimeout(() => { report(); for (const c of conns) { c.broken ||= ''; c.stop(); } process.exit(0); }, ms);
`;

const CONF = (priority: number) => `global_defs {
  router_id lb-${priority}
  lvs_sync_daemon eth1 VI_1 id 51
}
vrrp_instance VI_1 {
  state BACKUP
  interface eth0
  virtual_router_id 51
  version 3
  priority ${priority}
  advert_int 0.2
  virtual_ipaddress {
    198.18.0.100/24 dev eth0
    198.18.1.254/24 dev eth1
    198.18.1.250/24 dev eth1
  }
}
local_address_group L4 {
  198.18.1.250
}
virtual_server 198.18.0.100 81 {
  lb_algo rr
  lvs_method FNAT
  laddr_group_name L4
  protocol TCP
  real_server 198.18.1.11 81 {
  }
  real_server 198.18.1.12 81 {
  }
  real_server 198.18.1.13 81 {
  }
}
virtual_server 198.18.0.100 80 {
  lb_algo rr
  lb_kind NAT
  protocol TCP
  real_server 198.18.1.11 80 {
  }
  real_server 198.18.1.12 80 {
  }
  real_server 198.18.1.13 80 {
  }
}
`;

function startKeepvs(host: string, priority: number): void {
  mkdirSync(join(dir, host), { recursive: true, mode: 0o700 });
  const conf = join(dir, host, 'keepalived.conf');
  writeFileSync(conf, CONF(priority));
  const run = startLabKeepvs({
    ns: `${P}-${host}`,
    dir: join(dir, host),
    conf,
    args: ['-D', '--dataplane', 'nft', '--api', `127.0.0.1:${19300 + (process.pid % 300)}`, '--api-token', 'lab-token'],
    // its own process group: a group SIGKILL takes the supervisor, its workers and conntrackd at once
    detached: true,
  });
  procs.push(run.proc);
  keepvs.set(host, run);
}

function adm(host: string, ...args: string[]): string {
  const r = spawnSync(process.execPath, [KEEPVSADM, ...args], {
    env: { ...process.env, KEEPVS_SOCKET: sock(host) },
    encoding: 'utf8',
    timeout: 10000,
  });
  return (r.stdout ?? '') + (r.stderr ?? '');
}

const hasVip = (host: string) =>
  sh('ip', '-n', `${P}-${host}`, '-4', 'addr', 'show', 'dev', 'eth0').includes(' 198.18.0.100/');

async function until(what: string, f: () => boolean, ms = 20000): Promise<void> {
  const t0 = Date.now();
  for (;;) {
    try {
      if (f()) return;
    } catch {}
    if (Date.now() - t0 > ms) assert.fail(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

before(() => {
  if (!canRun) return;
  writeFileSync(join(dir, 'rs.mjs'), RS_SERVER);
  writeFileSync(join(dir, 'client.mjs'), CLIENT);
  sh('bash', LAB, 'up');
  const abort = () => {
    for (const p of procs) if (p.pid) spawnSync('kill', ['-KILL', `-${p.pid}`]);
    spawnSync('bash', [LAB, 'down'], { env });
    rmSync(dir, { recursive: true, force: true });
    process.exit(1);
  };
  process.once('SIGTERM', abort);
  process.once('SIGINT', abort);
  for (const i of [1, 2, 3]) {
    const p = spawn('ip', ['netns', 'exec', `${P}-rs${i}`, process.execPath, join(dir, 'rs.mjs'), `rs${i}`], {
      stdio: 'ignore',
    });
    procs.push(p);
  }
});

after(() => {
  if (!canRun) return;
  for (const p of procs) {
    if (!p.pid) continue;
    try {
      process.kill(-p.pid, 'SIGKILL');
    } catch {
      p.kill('SIGKILL');
    }
  }
  spawnSync('bash', [LAB, 'down'], { env });
  if (process.env.KEEP_LAB_LOGS) for (const [h, k] of keepvs) writeFileSync(join(dir, `${h}.log`), k.log());
  if (process.env.KEEP_LAB_LOGS) console.log(`logs in ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
});

test('conntrackd sync: 20 of 20 NAT and 20 of 20 FNAT rr connections survive a master crash; -L --daemon and -Lnc on the backup', {
  skip: !canRun && 'needs root, the lab, nftables and conntrackd',
  timeout: 90_000,
}, async () => {
  startKeepvs('lb1', 150);
  await until('lb1 holds the VIP', () => hasVip('lb1'));
  startKeepvs('lb2', 100);
  await until(
    'both sync daemons',
    () =>
      adm('lb1', '-L', '--daemon').includes('master sync daemon (mcast=eth1, syncid=51') &&
      adm('lb2', '-L', '--daemon').includes('backup sync daemon (mcast=eth1, syncid=51'),
  );
  const client = spawn(
    'ip',
    ['netns', 'exec', `${P}-client`, process.execPath, join(dir, 'client.mjs'), '198.18.0.100', '20', '60000', '80,81'],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  procs.push(client);
  let out = '';
  client.stdout?.on('data', (d) => (out += d));
  type Conn = { port: number; rs: string; answers: number; broken: string; moved: boolean; maxGapMs: number };
  const reportNow = async (): Promise<Conn[]> => {
    const before = out.length;
    client.kill('SIGUSR1');
    await until('client report', () => out.slice(before).includes('\n'), 5000);
    return JSON.parse(out.slice(before).trim().split('\n')[0]) as Conn[];
  };
  const METHOD = { 80: 'NAT', 81: 'FNAT' } as Record<number, string>;
  // every connection answered, spread over the three real servers by rr
  await sleep(1500);
  const first = await reportNow();
  for (const port of [80, 81]) {
    const mine = first.filter((c) => c.port === port);
    assert.equal(mine.filter((c) => c.answers > 0 && !c.broken).length, 20, JSON.stringify(mine));
    assert.equal(new Set(mine.map((c) => c.rs)).size, 3, `${METHOD[port]}: rr used every real server`);
  }
  // the backup holds the master's flows, ready for a takeover (destination unknown until committed)
  const synced = (lnc: string, port: number) =>
    (
      lnc.match(
        new RegExp(
          `TCP\\s+\\S+\\s+ESTABLISHED\\s+198\\.18\\.0\\.10:\\d+\\s+198\\.18\\.0\\.100:${port}\\s+0\\.0\\.0\\.0:0`,
          'g',
        ),
      ) ?? []
    ).length;
  await until('-Lnc on lb2 lists the 40 synced connections', () => {
    const lnc = adm('lb2', '-Lnc');
    return synced(lnc, 80) >= 20 && synced(lnc, 81) >= 20;
  });
  // lb1 dies: keepvs and its conntrackd killed at once, then the host drops off both networks
  const lb1 = keepvs.get('lb1')!;
  process.kill(-lb1.proc.pid!, 'SIGKILL');
  sh('ip', '-n', `${P}-lb1`, 'link', 'set', 'eth0', 'down');
  sh('ip', '-n', `${P}-lb1`, 'link', 'set', 'eth1', 'down');
  const killedAt = Date.now();
  await until('lb2 takes the VIP', () => hasVip('lb2'), 10000);
  const tookOverMs = Date.now() - killedAt;
  await until('lb2 runs the master daemon', () => adm('lb2', '-L', '--daemon').includes('master sync daemon'));
  await sleep(2500);
  const after = await reportNow();
  const lnc = adm('lb2', '-Lnc');
  for (const port of [80, 81]) {
    const mine = after.filter((c) => c.port === port);
    const kept = mine.filter((c) => !c.broken && !c.moved);
    const detail = mine
      .map((c) => `${c.rs}:${c.answers}:${c.broken || (c.moved ? 'moved' : 'ok')}:${c.maxGapMs}ms`)
      .join(' ');
    console.log(`${METHOD[port]}: takeover after ${tookOverMs} ms; kept ${kept.length}/20; ${detail}`);
    assert.equal(kept.length, 20, `${METHOD[port]} connections kept: ${detail}\nlb2 log:\n${readLog('lb2')}`);
    // on lb2, now master, the committed flows are kernel entries with their real server
    const committed = new RegExp(
      `ESTABLISHED\\s+198\\.18\\.0\\.10:\\d+\\s+198\\.18\\.0\\.100:${port}\\s+198\\.18\\.1\\.1[123]:${port}`,
      'g',
    );
    assert.ok((lnc.match(committed) ?? []).length >= 20, lnc);
  }
  client.kill('SIGKILL');
});

const readLog = (host: string): string => (keepvs.get(host)?.log() ?? '').slice(-4000);
