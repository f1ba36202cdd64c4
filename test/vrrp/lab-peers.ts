/**
 * Shared helpers for the VRRP lab tests: one lab (../shared/lab/lab.sh) per test file, keepvs,
 * keepalived and FRR vrrpd as peers inside its namespaces, VIP checks, waits. Every process is
 * started by this module and killed by pid; `down()` also tears the lab down.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before } from 'node:test';

export const LAB = join(process.cwd(), '..', 'shared', 'lab', 'lab.sh');
export const KEEPALIVED = '/usr/sbin/keepalived';
export const FRR_LIB = '/usr/lib/frr';
export const isRoot = process.getuid?.() === 0;
export const haveLab = isRoot && existsSync(LAB);
export const haveKeepalived = haveLab && existsSync(KEEPALIVED);
export const haveFrr = haveLab && existsSync(join(FRR_LIB, 'vrrpd')) && existsSync(join(FRR_LIB, 'zebra'));

export class Lab {
  readonly dir = mkdtempSync(join(tmpdir(), 'kv-vlab-'));
  private readonly procs: ChildProcess[] = [];
  /** FRR daemons fork away (-d): their pids, for a stop that cannot wait */
  private readonly frrPids: (() => number[])[] = [];
  private readonly env: NodeJS.ProcessEnv;
  private port = 19400 + (process.pid % 500);

  constructor(readonly prefix: string) {
    this.env = { ...process.env, LAB_PREFIX: prefix, LAB_RS: '1' };
  }

  ns(host: string): string {
    return `${this.prefix}-${host}`;
  }

  up(): void {
    execFileSync('bash', [LAB, 'up'], { env: this.env, stdio: 'ignore' });
    // the runner ends a file that runs over its time with a signal: the lab (and what runs in its
    // namespaces) must not outlive it
    const abort = () => {
      for (const pids of this.frrPids)
        for (const pid of pids())
          try {
            process.kill(pid, 'SIGKILL');
          } catch {}
      for (const p of this.procs) if (p.pid) p.kill('SIGKILL');
      try {
        execFileSync('bash', [LAB, 'down'], { env: this.env, stdio: 'ignore' });
      } catch {}
      rmSync(this.dir, { recursive: true, force: true });
      process.exit(1);
    };
    process.once('SIGTERM', abort);
    process.once('SIGINT', abort);
  }

  async down(): Promise<void> {
    for (const p of this.procs) await stopProc(p, 'SIGKILL');
    execFileSync('bash', [LAB, 'down'], { env: this.env, stdio: 'ignore' });
    rmSync(this.dir, { recursive: true, force: true });
  }

  ip(host: string, ...args: string[]): string {
    return execFileSync('ip', ['-n', this.ns(host), ...args], { encoding: 'utf8' });
  }

  /** the output is read whole before matching (a grep pipe can kill `ip` with SIGPIPE) */
  hasVip(host: string, vip: string, dev = 'eth0'): boolean {
    const out = this.ip(host, vip.includes(':') ? '-6' : '-4', 'addr', 'show', 'dev', dev);
    return out.includes(` ${vip}/`);
  }

  /** how many of the hosts hold `vip` */
  holders(vip: string, hosts = ['lb1', 'lb2']): string[] {
    return hosts.filter((h) => this.hasVip(h, vip));
  }

  /** removes what a killed peer may have left: the given VIPs on lb1 and lb2 */
  clearVips(vips: string[]): void {
    for (const h of ['lb1', 'lb2'])
      for (const v of vips)
        spawnSync('ip', ['-n', this.ns(h), 'addr', 'del', `${v}/${v.includes(':') ? 64 : 24}`, 'dev', 'eth0'], {
          stdio: 'ignore',
        });
  }

  linkLocal(host: string, dev = 'eth0'): string {
    const m = /inet6 (fe80::[0-9a-f:]+)\/64/.exec(this.ip(host, '-6', 'addr', 'show', 'dev', dev));
    if (!m) throw new Error(`${host} ${dev} has no link-local address`);
    return m[1];
  }

  write(name: string, text: string): string {
    const f = join(this.dir, name);
    writeFileSync(f, text);
    return f;
  }

  exec(host: string, argv: string[], opts: { input?: string; timeoutMs?: number } = {}): string {
    const r = spawnSync('ip', ['netns', 'exec', this.ns(host), ...argv], {
      encoding: 'utf8',
      input: opts.input,
      timeout: opts.timeoutMs ?? 10000,
    });
    return r.stdout ?? '';
  }

  keepalived(host: string, conf: string, tag = host): ChildProcess {
    const file = this.write(`${tag}-ka.conf`, conf);
    const log = join(this.dir, `${tag}-ka.log`);
    const p = spawn(
      'ip',
      [
        'netns',
        'exec',
        this.ns(host),
        KEEPALIVED,
        '-n',
        '-l',
        '-D',
        '-P',
        '-f',
        file,
        '-p',
        join(this.dir, `${tag}-ka.pid`),
        '-r',
        join(this.dir, `${tag}-kar.pid`),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], detached: true },
    );
    collect(p, log);
    this.procs.push(p);
    return p;
  }

  keepvsLog(tag: string): string {
    const f = join(this.dir, `${tag}-kv.log`);
    return existsSync(f) ? readFileSync(f, 'utf8') : '';
  }

  keepaliveLog(tag: string): string {
    const f = join(this.dir, `${tag}-ka.log`);
    return existsSync(f) ? readFileSync(f, 'utf8') : '';
  }

  /** keepvs in its own process group (detached), so that a group signal reaches its workers */
  keepvs(host: string, conf: string, tag = host): { proc: ChildProcess; port: number; confFile: string } {
    const confFile = this.write(`${tag}-kv.conf`, conf);
    const port = ++this.port;
    const p = spawn(
      'ip',
      [
        'netns',
        'exec',
        this.ns(host),
        process.execPath,
        'bin/keepvs.js',
        '-n',
        '-l',
        '-D',
        '-P',
        '-G',
        '-f',
        confFile,
        '--socket',
        join(this.dir, `${tag}.sock`),
        '--api',
        `127.0.0.1:${port}`,
        '--api-token',
        'lab-token',
        '-p',
        join(this.dir, `${tag}-kv.pid`),
        '-r',
        join(this.dir, `${tag}-kvr.pid`),
        '-c',
        join(this.dir, `${tag}-kvc.pid`),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], detached: true },
    );
    collect(p, join(this.dir, `${tag}-kv.log`));
    this.procs.push(p);
    return { proc: p, port, confFile };
  }

  /** GET on a keepvs API inside a namespace */
  api(host: string, port: number, path: string): unknown {
    const out = this.exec(host, [
      'curl',
      '-s',
      '--max-time',
      '3',
      '-H',
      'Authorization: Bearer lab-token',
      `http://127.0.0.1:${port}${path}`,
    ]);
    try {
      return JSON.parse(out);
    } catch {
      return undefined;
    }
  }

  vrrpStatus(
    host: string,
    port: number,
  ): {
    name: string;
    state: string;
    stats: Record<string, number>;
    lastTransitions: { from: string; to: string; reason: string; at: number }[];
  }[] {
    const s = this.api(host, port, '/api/v1/status') as { vrrp?: [] } | undefined;
    return s?.vrrp ?? [];
  }

  /**
   * FRR zebra + vrrpd in a namespace (vrrp-peers.md §2): a private directory owned by `frr`, one
   * macvlan per VRID and family carrying the virtual MAC, the VIP on it. Returns a stop function.
   */
  async frr(
    host: string,
    tag: string,
    vrrp: { vrid: number; version: 2 | 3; priority: number; vip: string; advertMs?: number },
  ): Promise<{
    proc: () => Promise<void>;
    crash: () => Promise<void>;
    vtysh: (cmd: string) => string;
    macvlan: string;
  }> {
    const d = join(this.dir, `frr-${tag}`);
    mkdirSync(d, { recursive: true });
    const uid = Number(execFileSync('id', ['-u', 'frr'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'frr'], { encoding: 'utf8' }).trim());
    chmodSync(this.dir, 0o755);
    const v6 = vrrp.vip.includes(':');
    const mv = `vrrp${v6 ? '6' : '4'}-${vrrp.vrid}`;
    const mac = `00:00:5e:00:0${v6 ? 2 : 1}:${vrrp.vrid.toString(16).padStart(2, '0')}`;
    this.ip(host, 'link', 'add', 'link', 'eth0', 'name', mv, 'address', mac, 'type', 'macvlan', 'mode', 'bridge');
    this.ip(host, 'link', 'set', 'dev', mv, 'addrgenmode', 'random');
    this.ip(host, 'link', 'set', 'dev', mv, 'up');
    if (v6) this.ip(host, '-6', 'addr', 'add', `${vrrp.vip}/64`, 'dev', mv, 'nodad');
    else this.ip(host, '-4', 'addr', 'add', `${vrrp.vip}/24`, 'dev', mv);
    const conf = [
      'interface eth0',
      ` vrrp ${vrrp.vrid} version ${vrrp.version}`,
      ` vrrp ${vrrp.vrid} priority ${vrrp.priority}`,
      ...(vrrp.advertMs ? [` vrrp ${vrrp.vrid} advertisement-interval ${vrrp.advertMs}`] : []),
      ` vrrp ${vrrp.vrid} ${v6 ? 'ipv6' : 'ip'} ${vrrp.vip}`,
      '',
    ].join('\n');
    writeFileSync(join(d, 'zebra.conf'), 'hostname z\n');
    writeFileSync(join(d, 'vrrpd.conf'), conf);
    for (const f of ['zebra.conf', 'vrrpd.conf']) chownSync(join(d, f), uid, gid);
    chownSync(d, uid, gid);
    const common = ['-d', '-P', '0', '--vty_socket', d, '-z', join(d, 'zserv.api')];
    this.exec(host, [
      join(FRR_LIB, 'zebra'),
      ...common,
      '-f',
      join(d, 'zebra.conf'),
      '-i',
      join(d, 'zebra.pid'),
      '--log',
      `file:${join(d, 'zebra.log')}`,
    ]);
    await until('zebra socket', () => existsSync(join(d, 'zserv.api')), 10000);
    this.exec(host, [
      join(FRR_LIB, 'vrrpd'),
      ...common,
      '-f',
      join(d, 'vrrpd.conf'),
      '-i',
      join(d, 'vrrpd.pid'),
      '--log',
      `file:${join(d, 'vrrpd.log')}`,
    ]);
    const pidOf = (n: string) => {
      try {
        return Number(readFileSync(join(d, `${n}.pid`), 'utf8').trim());
      } catch {
        return 0;
      }
    };
    await until('vrrpd pid', () => pidOf('vrrpd') > 0, 10000);
    this.frrPids.push(() => [pidOf('vrrpd'), pidOf('zebra')].filter((p) => p > 0));
    const stop = async (sig: NodeJS.Signals = 'SIGTERM') => {
      for (const n of ['vrrpd', 'zebra']) {
        const pid = pidOf(n);
        if (pid > 0)
          try {
            process.kill(pid, sig);
          } catch {}
        await until(`${n} exits`, () => !existsSync(`/proc/${pid}`) || isZombie(pid), 5000).catch(() => {});
      }
      rmSync(join(d, 'vrrpd.pid'), { force: true });
      rmSync(join(d, 'zebra.pid'), { force: true });
    };
    return {
      proc: () => stop(),
      /** SIGKILL: vrrpd leaves its macvlan up (it still "holds" the VIP, as a crashed keepalived does) */
      crash: () => stop('SIGKILL'),
      vtysh: (cmd: string) => this.exec(host, ['vtysh', '--vty_socket', d, '-c', cmd]),
      macvlan: mv,
    };
  }

  /** FRR "holds the VIP" when its macvlan is up and not in protodown */
  frrHolds(host: string, macvlan: string): boolean {
    try {
      const out = this.ip(host, '-d', 'link', 'show', 'dev', macvlan);
      return !/protodown on/.test(out) && /state UP|,UP/.test(out);
    } catch {
      return false;
    }
  }
}

function isZombie(pid: number): boolean {
  try {
    return /State:\s+Z/.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return true;
  }
}

/** Appends a process's stdout and stderr to `file` as they come (the file is rewritten whole). */
export function collect(p: ChildProcess, file: string): void {
  const chunks: Buffer[] = [];
  // the lab directory may be gone when a killed process's last output arrives
  const flush = () => {
    try {
      writeFileSync(file, Buffer.concat(chunks));
    } catch {}
  };
  p.stdout?.on('data', (b: Buffer) => {
    chunks.push(b);
    flush();
  });
  p.stderr?.on('data', (b: Buffer) => {
    chunks.push(b);
    flush();
  });
}

export async function until(what: string, fn: () => boolean, ms: number, everyMs = 50): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    if (fn()) return Date.now() - t0;
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

/** fn must hold for the whole time */
export async function holds(what: string, fn: () => boolean, ms: number, everyMs = 100): Promise<void> {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    if (!fn()) throw new Error(`${what} stopped holding after ${Date.now() - t0} ms`);
    await sleep(everyMs);
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function stopProc(p: ChildProcess, sig: NodeJS.Signals = 'SIGTERM', group = false): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null || !p.pid) return;
  const done = new Promise((r) => p.once('exit', r));
  try {
    if (group) process.kill(-p.pid, sig);
    else p.kill(sig);
  } catch {}
  await Promise.race([done, sleep(8000)]);
}

/** a VRRP instance block as both keepalived and keepvs read it */
export function instance(o: {
  name?: string;
  vrid?: number;
  priority: number;
  version?: 2 | 3;
  advertInt?: number;
  vips: string[];
  extra?: string;
  dev?: string;
}): string {
  return `vrrp_instance ${o.name ?? 'VI_1'} {
  state BACKUP
  interface ${o.dev ?? 'eth0'}
  virtual_router_id ${o.vrid ?? 51}
  priority ${o.priority}
  advert_int ${o.advertInt ?? 1}
  version ${o.version ?? 3}
${o.extra ?? ''}
  virtual_ipaddress {
${o.vips.map((v) => `    ${v}${v.includes('/') ? '' : v.includes(':') ? '/64' : '/24'} dev ${o.dev ?? 'eth0'}`).join('\n')}
  }
}
`;
}

export const globalDefs = (id: string, extra = '') => `global_defs {\n  router_id ${id}\n${extra}}\n`;

/**
 * The lab of a keepalived lab-test file: up before its tests, down after them, the VIPs cleared
 * between cases; `one(vip, host)` is "exactly that host holds the VIP".
 */
export function keepalivedLab(tag: string) {
  const lab = new Lab(`${tag}${process.pid % 10000}`);
  const opts = { skip: !haveKeepalived && 'needs root, keepalived and ../shared/lab', timeout: 60000 };
  const VIP = '198.18.0.100';
  const VIP6 = '2001:2::100';
  before(() => {
    if (haveKeepalived) lab.up();
  });
  after(async () => {
    if (haveKeepalived) await lab.down();
  });
  afterEach(() => {
    if (haveKeepalived) lab.clearVips([VIP, VIP6]);
  });
  const one = (vip: string, host: string) => () => {
    const h = lab.holders(vip);
    return h.length === 1 && h[0] === host;
  };
  return { lab, opts, VIP, VIP6, one };
}
