/**
 * Interop with Debian's keepalived in the network lab (../shared/lab/lab.sh): keepvs and
 * keepalived as the two directors of one virtual router. Needs root, keepalived and the lab;
 * skipped otherwise. Only the lab's own addresses are used; the lab is torn down at the end.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

const LAB = join(process.cwd(), '..', 'shared', 'lab', 'lab.sh');
const P = `kvi${process.pid % 10000}`;
const canRun = process.getuid?.() === 0 && existsSync(LAB) && existsSync('/usr/sbin/keepalived');
const dir = mkdtempSync(join(tmpdir(), 'kv-interop-'));
const procs: ChildProcess[] = [];
const env = { ...process.env, LAB_PREFIX: P, LAB_RS: '1' };

function lab(...args: string[]): string {
  return execFileSync('bash', [LAB, ...args], { env, encoding: 'utf8' });
}

let VIP = '198.18.0.100';
function hasVip(host: string): boolean {
  const fam = VIP.includes(':') ? '-6' : '-4';
  return execFileSync('ip', ['-n', `${P}-${host}`, fam, 'addr', 'show', 'dev', 'eth0'], { encoding: 'utf8' }).includes(
    `${VIP}/`,
  );
}

function conf(name: string, priority: number, version: number, extra = ''): string {
  const file = join(dir, `${name}.conf`);
  writeFileSync(
    file,
    `global_defs {\n  router_id ${name}\n}\nvrrp_instance VI_1 {\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  priority ${priority}\n  advert_int 1\n  version ${version}\n${extra}\n  virtual_ipaddress {\n    ${VIP.includes(':') ? `${VIP}/64` : `${VIP}/24`} dev eth0\n  }\n}\n`,
  );
  return file;
}

function startKeepalived(host: string, file: string): ChildProcess {
  const p = spawn(
    'ip',
    [
      'netns',
      'exec',
      `${P}-${host}`,
      'keepalived',
      '-n',
      '-l',
      '-D',
      '-P',
      '-f',
      file,
      '-p',
      join(dir, `${host}-ka.pid`),
      '-r',
      join(dir, `${host}-ka-vrrp.pid`),
    ],
    {
      stdio: 'ignore',
    },
  );
  procs.push(p);
  return p;
}

let apiPort = 19300;
function startKeepvs(host: string, file: string): ChildProcess {
  apiPort++;
  const p = spawn(
    'ip',
    [
      'netns',
      'exec',
      `${P}-${host}`,
      process.execPath,
      'bin/keepvs.js',
      '-n',
      '-P',
      '-G',
      '-f',
      file,
      '--socket',
      join(dir, `${host}-${apiPort}.sock`),
      '--api',
      `127.0.0.1:${apiPort}`,
      '-p',
      join(dir, `${host}-kv.pid`),
      '-r',
      join(dir, `${host}-kvr.pid`),
      '-c',
      join(dir, `${host}-kvc.pid`),
    ],
    { stdio: 'ignore' },
  );
  procs.push(p);
  return p;
}

async function until(what: string, fn: () => boolean, ms: number): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    if (fn()) return Date.now() - t0;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

async function stop(p: ChildProcess, sig: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const done = new Promise((r) => p.once('exit', r));
  p.kill(sig);
  await Promise.race([done, new Promise((r) => setTimeout(r, 8000))]);
}

before(() => {
  if (canRun) lab('up');
});

after(async () => {
  for (const p of procs) await stop(p, 'SIGKILL');
  if (canRun) lab('down');
  rmSync(dir, { recursive: true, force: true });
});

const opts = { skip: !canRun && 'needs root, keepalived and ../shared/lab', timeout: 90000 };

for (const [version, extra, vip] of [
  [2, '  authentication {\n    auth_type PASS\n    auth_pass s3cr3t\n  }', '198.18.0.100'],
  [2, '  authentication {\n    auth_type AH\n    auth_pass s3cr3t\n  }', '198.18.0.100'],
  [3, '', '198.18.0.100'],
  [3, '', '2001:2::100'],
] as const) {
  test(
    `VRRPv${version} ${vip}${extra.includes('AH') ? ' AH' : extra ? ' PASS' : ''}: keepvs (priority 100) and keepalived (90): start, stop, preempt, crash`,
    opts,
    async () => {
      VIP = vip;
      const ka = startKeepalived('lb2', conf(`ka${version}`, 90, version, extra));
      let kv = startKeepvs('lb1', conf(`kv${version}`, 100, version, extra));
      try {
        await until('keepvs master with the VIP', () => hasVip('lb1') && !hasVip('lb2'), 15000);
        // graceful stop: a priority 0 advert, keepalived takes over after its skew time
        await stop(kv);
        const failover = await until('keepalived takes the VIP', () => hasVip('lb2') && !hasVip('lb1'), 5000);
        assert.ok(failover < 3000, `graceful failover took ${failover} ms`);
        // keepvs comes back with the higher priority and preempts
        kv = startKeepvs('lb1', conf(`kv${version}`, 100, version, extra));
        await until('keepvs preempts back', () => hasVip('lb1') && !hasVip('lb2'), 15000);
        // crash of the supervisor: the orphaned VRRP worker releases the VIP, keepalived takes over
        await stop(kv, 'SIGKILL');
        await until('keepalived takes over after a crash', () => hasVip('lb2') && !hasVip('lb1'), 6000);
        await stop(ka);
        assert.equal(hasVip('lb2'), false, 'keepalived released the VIP on stop');
      } finally {
        await stop(kv, 'SIGKILL');
        await stop(ka, 'SIGKILL');
        await new Promise((r) => setTimeout(r, 1500));
      }
    },
  );
}
