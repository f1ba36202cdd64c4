/**
 * The lab pair of the keepalived interop tests (../shared/lab/lab.sh, one real server): keepvs and
 * Debian's keepalived as the two directors of one virtual router, VRRP only. Registers the lab's
 * before/after hooks in the calling test file; each file passes its own namespace tag.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';

export function keepalivedPair(tag: string) {
  const LAB = join(process.cwd(), '..', 'shared', 'lab', 'lab.sh');
  const P = `${tag}${process.pid % 10000}`;
  const canRun = process.getuid?.() === 0 && existsSync(LAB) && existsSync('/usr/sbin/keepalived');
  const dir = mkdtempSync(join(tmpdir(), 'kv-interop-'));
  const procs: ChildProcess[] = [];
  const env = { ...process.env, LAB_PREFIX: P, LAB_RS: '1' };

  function lab(...args: string[]): string {
    return execFileSync('bash', [LAB, ...args], { env, encoding: 'utf8' });
  }

  let VIP = '198.18.0.100';
  const setVip = (v: string) => {
    VIP = v;
  };
  function hasVip(host: string): boolean {
    const fam = VIP.includes(':') ? '-6' : '-4';
    return execFileSync('ip', ['-n', `${P}-${host}`, fam, 'addr', 'show', 'dev', 'eth0'], {
      encoding: 'utf8',
    }).includes(`${VIP}/`);
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
  return { P, canRun, opts, hasVip, setVip, conf, startKeepalived, startKeepvs, until, stop };
}
