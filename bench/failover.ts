/**
 * Failover times in the lab (../shared/lab/lab.sh, root only), keepvs beside keepalived on the same
 * run: a master (priority 100) on lb1 and a keepalived backup (priority 90) on lb2; time from
 * stopping the master to the VIP appearing on lb2 (and, for graceful stops, gone from lb1). Graceful
 * stop (SIGTERM to the main process: priority-0 advert), SIGTERM to the whole process group (what
 * systemd and Ctrl-C send: every process must still stop gracefully) and crash (SIGKILL of the
 * whole process group: no goodbye). Prints a table and the RFC bounds.
 * Run: npx tsc -p . && node dist/bench/failover.js [ROUNDS] [ADVERT_INT]
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROUNDS = Number(process.argv[2] ?? 3);
const ADVERT = Number(process.argv[3] ?? 1);
const P = `kvf${process.pid % 10000}`;
const LAB = join(process.cwd(), '..', 'shared', 'lab', 'lab.sh');
const dir = mkdtempSync(join(tmpdir(), 'kv-failover-'));
const env = { ...process.env, LAB_PREFIX: P, LAB_RS: '1' };
const lab = (...a: string[]) => execFileSync('bash', [LAB, ...a], { env, encoding: 'utf8' });
const hasVip = (h: string) =>
  execFileSync('ip', ['-n', `${P}-${h}`, '-4', 'addr', 'show', 'dev', 'eth0'], { encoding: 'utf8' }).includes(
    '198.18.0.100/',
  );
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function conf(name: string, prio: number): string {
  const f = join(dir, `${name}.conf`);
  writeFileSync(
    f,
    `vrrp_instance VI_1 {\n state BACKUP\n interface eth0\n virtual_router_id 51\n priority ${prio}\n advert_int ${ADVERT}\n version 3\n virtual_ipaddress {\n  198.18.0.100/24 dev eth0\n }\n}\n`,
  );
  return f;
}

let n = 0;
function start(kind: 'keepalived' | 'keepvs', host: string, prio: number): ChildProcess {
  n++;
  const f = conf(`${kind}-${host}-${n}`, prio);
  const argv =
    kind === 'keepalived'
      ? ['keepalived', '-n', '-P', '-f', f, '-p', join(dir, `${n}.pid`), '-r', join(dir, `${n}.vpid`)]
      : [
          process.execPath,
          'bin/keepvs.js',
          '-n',
          '-P',
          '-G',
          '-f',
          f,
          '--socket',
          join(dir, `${n}.sock`),
          '--api',
          `127.0.0.1:${19500 + n}`,
          '-p',
          join(dir, `${n}.p`),
          '-r',
          join(dir, `${n}.r`),
          '-c',
          join(dir, `${n}.c`),
        ];
  return spawn('ip', ['netns', 'exec', `${P}-${host}`, ...argv], { stdio: 'ignore', detached: true });
}

async function waitFor(fn: () => boolean, ms: number): Promise<number> {
  const t0 = performance.now();
  while (performance.now() - t0 < ms) {
    if (fn()) return performance.now() - t0;
    await sleep(5);
  }
  return Number.NaN;
}

function kill(p: ChildProcess, sig: NodeJS.Signals, group = false): void {
  try {
    process.kill(group ? -p.pid! : p.pid!, sig);
  } catch {
    // gone
  }
}

async function trial(
  master: 'keepalived' | 'keepvs',
  backupKind: 'keepalived' | 'keepvs',
  how: 'stop' | 'group' | 'crash',
): Promise<number> {
  const backup = start(backupKind, 'lb2', 90);
  const m = start(master, 'lb1', 100);
  await waitFor(() => hasVip('lb1') && !hasVip('lb2'), 20000);
  await sleep(1500);
  const t0 = performance.now();
  if (how === 'stop') kill(m, 'SIGTERM');
  // SIGTERM to the whole process group, as systemd's KillMode=control-group and Ctrl-C send it
  else if (how === 'group') kill(m, 'SIGTERM', true);
  else kill(m, 'SIGKILL', true);
  // one holder only: the backup has the VIP and, for the graceful stops, the old master released it
  const took = await waitFor(() => hasVip('lb2') && (how === 'crash' || !hasVip('lb1')), 15000);
  void t0;
  kill(m, 'SIGKILL', true);
  kill(backup, 'SIGKILL', true);
  await sleep(500);
  // a crashed master leaves its VIP configured (keepalived does the same): clean the lab for the next trial
  try {
    execFileSync('ip', ['-n', `${P}-lb1`, 'addr', 'del', '198.18.0.100/24', 'dev', 'eth0'], { stdio: 'ignore' });
  } catch {
    // not there
  }
  try {
    execFileSync('ip', ['-n', `${P}-lb2`, 'addr', 'del', '198.18.0.100/24', 'dev', 'eth0'], { stdio: 'ignore' });
  } catch {
    // not there
  }
  return took;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.error('failover bench: needs root (network namespaces, raw sockets)');
    process.exit(2);
  }
  lab('up');
  try {
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const skew = ((256 - 90) * ADVERT * 1000) / 256;
    console.log(
      `# VRRP failover, ${new Date().toISOString()}, v3 advert_int ${ADVERT}s, backup prio 90 (skew ${skew.toFixed(0)} ms), ${ROUNDS} rounds, medians`,
    );
    console.log('| master -> backup taking over | graceful stop (ms) | group SIGTERM (ms) | crash (ms) |');
    console.log('| --- | --- | --- | --- |');
    const pairs = [
      ['keepalived', 'keepalived'],
      ['keepvs', 'keepalived'],
      ['keepalived', 'keepvs'],
    ] as const;
    for (const [master, backup] of pairs) {
      const stops: number[] = [];
      const groups: number[] = [];
      const crashes: number[] = [];
      // interleaved: each round runs the three ways of stopping one after the other
      for (let i = 0; i < ROUNDS; i++) {
        stops.push(await trial(master, backup, 'stop'));
        groups.push(await trial(master, backup, 'group'));
        crashes.push(await trial(master, backup, 'crash'));
      }
      const fmt = (xs: number[]) => `${median(xs).toFixed(0)} (${xs.map((x) => x.toFixed(0)).join(', ')})`;
      console.log(`| ${master} -> ${backup} | ${fmt(stops)} | ${fmt(groups)} | ${fmt(crashes)} |`);
    }
    console.log(
      `bounds: graceful <= skew + 50 = ${(skew + 50).toFixed(0)} ms; crash <= 3 x advert + skew + 100 = ${(3 * ADVERT * 1000 + skew + 100).toFixed(0)} ms`,
    );
  } finally {
    lab('down');
  }
}

void main();
