/**
 * The BGP speaker keepvs drives: a private FRR instance (docs/scale-out.md, "Why FRR"). keepvs
 * writes its configuration, starts bgpd (plus zebra and bfdd when a neighbor uses BFD) with their
 * own vty sockets, pid files and logs under one directory, and announces or withdraws a VIP with
 * `network P` / `no network P` through vtysh. What is announced is read back from bgpd's running
 * configuration, so applying a set is idempotent and a keepvs that restarts adopts the bgpd it left
 * running (the routes stay up while the kernel plane forwards through a keepvs restart).
 *
 * Layout: DIR (root, 0755) holds the configuration files keepvs writes (0644: FRR runs as user
 * frr and reads them); DIR/run (frr, 0750) holds what the daemons write. A pid read back from there
 * is only signalled when /proc says it is that FRR daemon on that directory.
 */
import { chownSync, existsSync, lstatSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import ipaddr from 'ipaddr.js';
import type { BgpAnnounce } from '../config/model.js';
import type { ProcessRunner } from '../util/ports.js';
import { resolveId } from './process-runner.js';
import { writeFileSafely } from './safe-file.js';

export const FRR_LIB = '/usr/lib/frr';
export const DEFAULT_FRR_DIR = '/run/keepvs/frr';
const VTYSH = 'vtysh';
const BFD_PROFILE = 'keepvs';

type Daemon = 'zebra' | 'bfdd' | 'bgpd';

export interface FrrFiles {
  readonly bgpd: string;
  /** only when a neighbor uses BFD: bgpd then talks to bfdd through zebra */
  readonly zebra?: string;
  readonly bfdd?: string;
}

const familyOf = (prefix: string): 4 | 6 => (prefix.includes(':') ? 6 : 4);
const af = (f: 4 | 6) => (f === 6 ? 'ipv6 unicast' : 'ipv4 unicast');

/** The prefix announced for a VIP: /32 or /128. */
export function vipPrefix(address: string): string {
  const a = ipaddr.parse(address);
  return `${a.toString()}/${a.kind() === 'ipv6' ? 128 : 32}`;
}

/**
 * bgpd's configuration (pure; FRR 8.4 syntax). Sessions are eBGP without a policy (`no bgp
 * ebgp-requires-policy`: only the VIPs keepvs adds are sent, and nothing learned is used); networks
 * are added at run time, never written here, so a restart of bgpd announces nothing until keepvs
 * says so. `routerId` is required by bgpd without zebra.
 */
export function renderFrrConfig(bgp: BgpAnnounce, routerId: string): FrrFiles {
  const bfd = bgp.neighbors.some((n) => n.bfd);
  const lines = [
    'frr defaults traditional',
    'hostname keepvs',
    'log timestamp precision 3',
    `router bgp ${bgp.localAs}`,
    ` bgp router-id ${routerId}`,
    ' no bgp ebgp-requires-policy',
    // without zebra bgpd cannot check that a network is in the RIB: keepvs decides instead
    ' no bgp network import-check',
    ' no bgp default ipv4-unicast',
  ];
  for (const n of bgp.neighbors) {
    lines.push(` neighbor ${n.address} remote-as ${n.remoteAs}`);
    lines.push(` neighbor ${n.address} timers ${bgp.keepaliveS} ${bgp.holdTimeS}`);
    lines.push(` neighbor ${n.address} timers connect 2`);
    if (n.bfd) lines.push(` neighbor ${n.address} bfd profile ${BFD_PROFILE}`);
  }
  for (const f of [4, 6] as const) {
    const ns = bgp.neighbors.filter((n) => n.family === f);
    if (!ns.length) continue;
    lines.push(` address-family ${af(f)}`);
    for (const n of ns) {
      lines.push(`  neighbor ${n.address} activate`);
      // announce only: nothing the routers send is wanted
      lines.push(`  neighbor ${n.address} route-map keepvs-deny-all in`);
    }
    lines.push(' exit-address-family');
  }
  lines.push('exit', 'route-map keepvs-deny-all deny 10', 'exit', '');
  if (!bfd) return { bgpd: lines.join('\n') };
  return {
    bgpd: lines.join('\n'),
    zebra: 'hostname keepvs\n',
    bfdd: [
      'bfd',
      ` profile ${BFD_PROFILE}`,
      `  detect-multiplier ${bgp.bfdMultiplier}`,
      `  receive-interval ${bgp.bfdIntervalMs}`,
      `  transmit-interval ${bgp.bfdIntervalMs}`,
      ' exit',
      'exit',
      '',
    ].join('\n'),
  };
}

/** The `network P` lines of bgpd's running configuration, per address family block. */
export function parseAnnounced(runningConfig: string): Set<string> {
  const out = new Set<string>();
  let inAf = false;
  for (const raw of runningConfig.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('address-family ipv4 unicast') || line.startsWith('address-family ipv6 unicast')) inAf = true;
    else if (line === 'exit-address-family') inAf = false;
    else if (inAf) {
      const m = /^network (\S+)$/.exec(line);
      if (m) out.add(m[1]);
    }
  }
  return out;
}

export interface NeighborState {
  readonly address: string;
  /** FRR's bgpState: Idle, Connect, Active, OpenSent, OpenConfirm, Established */
  readonly state: string;
  readonly bfd?: string;
}

/** `show bgp neighbors json` -> address and session state. */
export function parseNeighbors(json: string): NeighborState[] {
  try {
    const d = JSON.parse(json) as Record<string, { bgpState?: string; peerBfdInfo?: { status?: string } }>;
    return Object.entries(d)
      .filter(([, v]) => v && typeof v === 'object' && typeof v.bgpState === 'string')
      .map(([address, v]) => ({
        address,
        state: v.bgpState as string,
        ...(v.peerBfdInfo?.status ? { bfd: v.peerBfdInfo.status } : {}),
      }));
  } catch {
    return [];
  }
}

/** The vtysh commands taking bgpd from `have` to `want` (withdrawals first). */
export function announceCommands(localAs: number, have: ReadonlySet<string>, want: ReadonlySet<string>): string[] {
  const cmds: string[] = [];
  for (const [del, list] of [
    [true, [...have].filter((p) => !want.has(p))],
    [false, [...want].filter((p) => !have.has(p))],
  ] as const)
    for (const f of [4, 6] as const) {
      const ps = list.filter((p) => familyOf(p) === f);
      if (!ps.length) continue;
      cmds.push(`router bgp ${localAs}`, `address-family ${af(f)}`);
      for (const p of ps) cmds.push(`${del ? 'no ' : ''}network ${p}`);
      cmds.push('exit-address-family', 'exit');
    }
  return cmds.length ? ['configure terminal', ...cmds, 'end'] : [];
}

export interface FrrBgpOptions {
  readonly dir?: string;
  readonly runner: ProcessRunner;
  readonly frrLib?: string;
  /** the FRR user (default frr) */
  readonly user?: string;
}

/** The private FRR instance: start, apply the announced set, report sessions, stop. */
export class FrrBgp {
  readonly dir: string;
  readonly runDir: string;
  private readonly lib: string;
  private daemons: Daemon[] = ['bgpd'];
  private localAs = 0;

  constructor(private readonly o: FrrBgpOptions) {
    this.dir = o.dir ?? DEFAULT_FRR_DIR;
    this.runDir = join(this.dir, 'run');
    this.lib = o.frrLib ?? FRR_LIB;
  }

  /** Why FRR cannot run here, or undefined. */
  static unavailable(frrLib = FRR_LIB, user = 'frr'): string | undefined {
    if (!existsSync(join(frrLib, 'bgpd'))) return `FRR bgpd not found at ${join(frrLib, 'bgpd')} (Debian package frr)`;
    if (resolveId(user, '/etc/passwd') === undefined) return `user ${user} does not exist`;
    if ((process.getuid?.() ?? 0) !== 0) return 'keepvs is not running as root';
    return undefined;
  }

  private pidOf(d: Daemon): number {
    try {
      const pid = Number(readFileSync(join(this.runDir, `${d}.pid`), 'utf8').trim());
      if (!Number.isInteger(pid) || pid <= 1) return 0;
      // the pid file is writable by the FRR user: trust it only for that daemon on this directory
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      return argv[0] === join(this.lib, d) && argv.includes(this.runDir) ? pid : 0;
    } catch {
      return 0;
    }
  }

  running(d: Daemon = 'bgpd'): boolean {
    return this.pidOf(d) > 0;
  }

  /**
   * Writes the configuration and starts the daemons that are not running yet. When bgpd runs with
   * another configuration (a reload changed neighbors or timers), it is restarted: the sessions
   * flap once and the routes are announced again by the next apply.
   */
  async start(bgp: BgpAnnounce, routerId: string): Promise<void> {
    const files = renderFrrConfig(bgp, routerId);
    this.localAs = bgp.localAs;
    this.daemons = files.zebra ? ['zebra', 'bfdd', 'bgpd'] : ['bgpd'];
    const user = this.o.user ?? 'frr';
    const uid = resolveId(user, '/etc/passwd');
    const gid = resolveId(user, '/etc/group');
    if (uid === undefined || gid === undefined) throw new Error(`user/group ${user} does not exist`);
    mkdirSync(this.dir, { recursive: true, mode: 0o755 });
    mkdirSync(this.runDir, { recursive: true, mode: 0o750 });
    const st = lstatSync(this.runDir);
    if (!st.isDirectory()) throw new Error(`${this.runDir} is not a directory`);
    chownSync(this.runDir, uid, gid);
    let changed = false;
    for (const d of ['bgpd', 'zebra', 'bfdd'] as const) {
      const text = files[d];
      if (text === undefined) continue;
      const path = join(this.dir, `${d}.conf`);
      let old: string | undefined;
      try {
        old = readFileSync(path, 'utf8');
      } catch {}
      if (old !== text) {
        // the directory itself must be root's and closed to others; readable by frr
        writeFileSafely(path, text, 0o644, true);
        changed = true;
      }
    }
    if (changed) await this.stop(false);
    for (const d of this.daemons) {
      if (this.running(d)) continue;
      const argv = [
        join(this.lib, d),
        '-d',
        '-P',
        '0',
        '--vty_socket',
        this.runDir,
        '-f',
        join(this.dir, `${d}.conf`),
        '-i',
        join(this.runDir, `${d}.pid`),
        '--log',
        `file:${join(this.runDir, `${d}.log`)}`,
        ...(d === 'bgpd' && !files.zebra ? ['-Z'] : ['-z', join(this.runDir, 'zserv.api')]),
        // announce only: nothing learned goes into the kernel
        ...(d === 'bgpd' ? ['-n'] : []),
      ];
      const r = await this.o.runner.run(argv, { timeoutMs: 15000, captureBytes: 4096 });
      if (r.spawnError || r.exitCode !== 0)
        throw new Error(`${d} did not start: ${r.spawnError ?? r.stdout.trim() ?? `status ${r.exitCode}`}`);
      // zebra's socket must exist before bfdd and bgpd connect to it
      for (let i = 0; i < 100 && !this.running(d); i++) await new Promise((res) => setTimeout(res, 50));
      if (d === 'zebra')
        for (let i = 0; i < 100 && !existsSync(join(this.runDir, 'zserv.api')); i++)
          await new Promise((res) => setTimeout(res, 50));
    }
  }

  private async vtysh(commands: readonly string[], daemon: Daemon = 'bgpd'): Promise<string> {
    const argv = [VTYSH, '--vty_socket', this.runDir, '-d', daemon, ...commands.flatMap((c) => ['-c', c])];
    const r = await this.o.runner.run(argv, { timeoutMs: 10000, captureBytes: 1 << 20 });
    if (r.spawnError) throw new Error(`vtysh: ${r.spawnError}`);
    if (r.exitCode !== 0) throw new Error(`vtysh ${commands.join('; ')}: status ${r.exitCode}: ${r.stdout.trim()}`);
    return r.stdout;
  }

  /** What bgpd announces now. */
  async announced(): Promise<Set<string>> {
    return parseAnnounced(await this.vtysh(['show running-config']));
  }

  /** Announces exactly `want`; returns what changed. */
  async apply(want: ReadonlySet<string>): Promise<{ added: string[]; removed: string[] }> {
    const have = await this.announced();
    const cmds = announceCommands(this.localAs, have, want);
    if (cmds.length) await this.vtysh(cmds);
    return { added: [...want].filter((p) => !have.has(p)), removed: [...have].filter((p) => !want.has(p)) };
  }

  async neighbors(): Promise<NeighborState[]> {
    return parseNeighbors(await this.vtysh(['show bgp neighbors json']));
  }

  /** Stops the daemons (bgpd first, so its sessions close with a NOTIFICATION); `withdraw` first withdraws every VIP. */
  async stop(withdraw = true): Promise<void> {
    if (withdraw && this.running('bgpd')) await this.apply(new Set()).catch(() => {});
    for (const d of ['bgpd', 'bfdd', 'zebra'] as const) {
      const pid = this.pidOf(d);
      if (!pid) continue;
      try {
        process.kill(pid, 'SIGTERM');
      } catch {}
      for (let i = 0; i < 100 && existsSync(`/proc/${pid}`) && !isZombie(pid); i++)
        await new Promise((res) => setTimeout(res, 50));
    }
  }
}

function isZombie(pid: number): boolean {
  try {
    return /\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}
