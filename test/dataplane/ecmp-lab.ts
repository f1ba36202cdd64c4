/**
 * The ECMP lab (docs/scale-out.md, "Measured"; bench/ecmp-lab.ts, test/dataplane/ecmp-lab.test.ts): a router
 * namespace (the lab's client) running FRR zebra + bgpd + bfdd with multipath and the L4 ECMP hash
 * (fib_multipath_hash_policy 1), three directors (lb1, lb2 and an lb3 this script adds to the lab)
 * each running keepvs with the kernel plane in DR mode and `bgp_announce`, three real servers with
 * the VIP on lo answering the router directly, and long-lived TCP flows from the router, each
 * sending a line every 200 ms and reading which real server answered.
 *
 * Every process is started here and killed by pid; down() also tears the lab (and lb3) down.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { startLabKeepvs } from './lab-daemon.js';

export const LAB = join(process.cwd(), '..', 'shared', 'lab', 'lab.sh');
export const FRR = '/usr/lib/frr';
const VIP = '198.18.0.100';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Real server: a line in, its name out, on long-lived connections. */
const RS = `const name = process.argv[2];
require('node:net').createServer((s) => { s.on('data', (d) => { for (const _ of String(d).split('\\n').slice(1)) s.write(name + '\\n'); }); s.on('error', () => {}); }).listen(80);
`;

/** Flows from the router: stdin "report" -> one JSON line with each flow's state. */
const CLIENT = `const net = require('node:net');
const [vip, n] = [process.argv[2], Number(process.argv[3])];
const flows = [];
for (let i = 0; i < n; i++) {
  const f = { sport: 0, rs: '', changes: 0, broken: '', lastAt: Date.now(), answers: 0 };
  const s = net.connect({ host: vip, port: 80 });
  s.setNoDelay(true);
  s.on('connect', () => { f.sport = s.localPort; f.lastAt = Date.now(); });
  let buf = '';
  s.on('data', (d) => {
    buf += d;
    const lines = buf.split('\\n'); buf = lines.pop();
    for (const l of lines) { if (f.rs && l !== f.rs) f.changes++; f.rs = l; f.answers++; f.lastAt = Date.now(); }
  });
  s.on('error', (e) => { if (!f.broken) f.broken = e.code || 'error'; });
  s.on('close', () => { if (!f.broken) f.broken = 'closed'; });
  f.sock = s;
  flows.push(f);
}
setInterval(() => {
  for (const f of flows) {
    if (f.broken || !f.sport) continue;
    if (Date.now() - f.lastAt > 3000) { f.broken = 'no answer for 3 s'; f.sock.destroy(); continue; }
    f.sock.write('x\\n');
  }
}, 200);
require('node:readline').createInterface({ input: process.stdin }).on('line', () => {
  process.stdout.write(JSON.stringify(flows.map(({ sock, ...f }) => f)) + '\\n');
});`;

export interface Flow {
  sport: number;
  rs: string;
  changes: number;
  broken: string;
  answers: number;
}

export class EcmpLab {
  readonly dir = mkdtempSync(join(tmpdir(), 'kv-ecmp-'));
  readonly env: NodeJS.ProcessEnv;
  private readonly procs = new Map<string, ChildProcess>();
  private client: { p: ChildProcess; lines: AsyncIterator<string> } | undefined;
  readonly logs = new Map<string, string>();

  constructor(readonly prefix: string) {
    this.env = { ...process.env, LAB_PREFIX: prefix, LAB_RS: '3', LAB_DR: '1' };
  }

  sh(cmd: string, ...args: string[]): string {
    return execFileSync(cmd, args, { env: this.env, encoding: 'utf8' });
  }
  inNs(host: string, ...argv: string[]): string {
    return this.sh('ip', 'netns', 'exec', `${this.prefix}-${host}`, ...argv);
  }

  /** lab.sh's hosts plus lb3 (same wiring as lb1/lb2; lab.sh down removes it too) */
  up(): void {
    chmodSync(this.dir, 0o755);
    this.sh('bash', LAB, 'up');
    // a runner that ends this file with a signal must not leave the lab (and what runs in it) behind
    const abort = () => {
      this.down();
      process.exit(1);
    };
    process.once('SIGTERM', abort);
    process.once('SIGINT', abort);
    const ns = `${this.prefix}-lb3`;
    const sw = `${this.prefix}-sw`;
    this.sh('ip', 'netns', 'add', ns);
    this.sh('ip', '-n', ns, 'link', 'set', 'lo', 'up');
    for (const [net, ifc, br] of [
      [0, 'eth0', 'brf'],
      [1, 'eth1', 'brb'],
    ] as const) {
      const port = `lb3-${net === 0 ? 'f' : 'b'}`;
      this.sh('ip', '-n', sw, 'link', 'add', port, 'type', 'veth', 'peer', 'name', ifc, 'netns', ns);
      this.sh('ip', '-n', sw, 'link', 'set', port, 'master', br, 'up');
      this.sh('ip', '-n', ns, 'link', 'set', ifc, 'address', `02:18:0${net}:00:00:03`, 'up');
      this.sh('ip', '-n', ns, 'addr', 'add', `198.18.${net}.3/24`, 'dev', ifc);
    }
    for (const k of [
      'net.ipv4.ip_forward=1',
      'net.ipv4.conf.all.rp_filter=0',
      'net.ipv4.conf.default.rp_filter=0',
      'net.ipv4.conf.all.send_redirects=0',
    ])
      this.inNs('lb3', 'sysctl', '-qw', k);
    // the router: L4 hash, so each flow (source port) takes its own path
    this.inNs('client', 'sysctl', '-qw', 'net.ipv4.fib_multipath_hash_policy=1');
    for (const i of [1, 2, 3]) {
      this.sh('ip', '-n', `${this.prefix}-rs${i}`, 'addr', 'add', `${VIP}/32`, 'dev', 'lo');
      this.startRs(i);
    }
    writeFileSync(join(this.dir, 'client.cjs'), CLIENT);
    this.startRouter();
  }

  startRs(i: number): void {
    writeFileSync(join(this.dir, 'rs.cjs'), RS);
    this.spawnIn(`rs${i}`, `rs${i}`, [process.execPath, join(this.dir, 'rs.cjs'), `rs${i}`]);
  }

  stopRs(i: number): void {
    this.kill(`rs${i}`);
  }

  private spawnIn(name: string, host: string, argv: string[]): ChildProcess {
    const p = spawn('ip', ['netns', 'exec', `${this.prefix}-${host}`, ...argv], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: this.env,
    });
    let log = '';
    p.stdout?.on('data', (d) => (log += d));
    p.stderr?.on('data', (d) => (log += d));
    p.on('exit', () => this.logs.set(name, log));
    this.procs.set(name, p);
    return p;
  }

  kill(name: string, sig: NodeJS.Signals = 'SIGKILL'): void {
    this.procs.get(name)?.kill(sig);
    this.procs.delete(name);
  }

  private routerDir(): string {
    return join(this.dir, 'router');
  }

  private startRouter(): void {
    const d = this.routerDir();
    mkdirSync(d);
    const uid = Number(this.sh('id', '-u', 'frr').trim());
    const gid = Number(this.sh('id', '-g', 'frr').trim());
    writeFileSync(join(d, 'zebra.conf'), 'hostname router\n');
    writeFileSync(join(d, 'bfdd.conf'), 'bfd\n profile fast\n  receive-interval 100\n  transmit-interval 100\n');
    const peers = [1, 2, 3].flatMap((i) => [
      ` neighbor 198.18.0.${i} remote-as 65001`,
      ` neighbor 198.18.0.${i} timers 1 3`,
      ` neighbor 198.18.0.${i} timers connect 1`,
      ` neighbor 198.18.0.${i} bfd profile fast`,
    ]);
    writeFileSync(
      join(d, 'bgpd.conf'),
      [
        'router bgp 65000',
        ' bgp router-id 198.18.0.10',
        ' no bgp ebgp-requires-policy',
        ...peers,
        ' address-family ipv4 unicast',
        '  maximum-paths 8',
        ' exit-address-family',
        '',
      ].join('\n'),
    );
    for (const f of ['zebra.conf', 'bfdd.conf', 'bgpd.conf']) chownSync(join(d, f), uid, gid);
    chownSync(d, uid, gid);
    for (const dm of ['zebra', 'bfdd', 'bgpd']) {
      this.inNs(
        'client',
        join(FRR, dm),
        '-d',
        '-P',
        '0',
        '--vty_socket',
        d,
        '-z',
        join(d, 'zserv.api'),
        '-f',
        join(d, `${dm}.conf`),
        '-i',
        join(d, `${dm}.pid`),
        '--log',
        `file:${join(d, `${dm}.log`)}`,
      );
      if (dm === 'zebra') execFileSync('sleep', ['0.5']);
    }
  }

  /** A new configuration for director i, applied by SIGHUP (keepvs's reload). */
  reloadDirector(i: number, config: string): void {
    writeFileSync(join(this.dir, `lb${i}.conf`), config);
    this.procs.get(`lb${i}`)?.kill('SIGHUP');
  }

  directorConfig(i: number, holdDownS = 2): string {
    const rs = [1, 2, 3];
    return `bgp_announce {
  local_as 65001
  router_id 198.18.0.${i}
  neighbor 198.18.0.10 remote_as 65000 bfd
  timers 1 3
  bfd_timers 100 3
  hold_down ${holdDownS}
  hold_down_max 16
  frr_dir ${join(this.dir, `frr-lb${i}`)}
}
virtual_server ${VIP} 80 {
  delay_loop 1
  lvs_sched mh
  mh-port
  lvs_method DR
  protocol TCP
  bgp_announce
${rs.map((r) => `  real_server 198.18.1.1${r} 80 {\n    TCP_CHECK {\n      connect_timeout 1\n    }\n  }`).join('\n')}
}
`;
  }

  startDirector(i: number, config = this.directorConfig(i)): void {
    const conf = join(this.dir, `lb${i}.conf`);
    writeFileSync(conf, config);
    const name = `lb${i}`;
    const k = startLabKeepvs({
      ns: `${this.prefix}-${name}`,
      dir: this.dir,
      name,
      conf,
      env: this.env,
      args: ['--dataplane=nft', '--api', `127.0.0.1:${19900 + i}`, '--api-token', 'lab-token'],
    });
    this.procs.set(name, k.proc);
    void k.exited.then(() => this.logs.set(name, k.log()));
  }

  /** Director `i`'s check verdicts, from its status API. */
  checkVerdicts(i: number): { dest: string; up: boolean; since: number }[] {
    const s = JSON.parse(
      this.inNs(
        `lb${i}`,
        'curl',
        '-s',
        '-m',
        '2',
        '-H',
        'authorization: Bearer lab-token',
        `http://127.0.0.1:${19900 + i}/api/v1/status`,
      ),
    ) as { lvs?: { checks: { servers: { dest: string; up: boolean; since: number }[] } } };
    return s.lvs?.checks.servers ?? [];
  }

  /** Whether director `i` sees real server `dest` (198.18.1.13:80) up, from its status API. */
  serverUp(i: number, dest: string): boolean | undefined {
    return this.checkVerdicts(i).find((r) => r.dest === dest)?.up;
  }

  /** Directors the router has a BGP path through, from its FIB. */
  nexthops(): string[] {
    const out = this.inNs('client', 'ip', '-4', 'route', 'show', `${VIP}/32`);
    const hops = [...out.matchAll(/via (198\.18\.0\.\d+)/g)].map((m) => m[1]);
    return [...new Set(hops)].sort();
  }

  /** The director the router sends a flow from `sport` to (the kernel's own multipath choice). */
  directorOf(sport: number): string {
    const out = this.inNs(
      'client',
      'ip',
      '-4',
      'route',
      'get',
      VIP,
      'from',
      '198.18.0.10',
      'ipproto',
      'tcp',
      'sport',
      String(sport),
      'dport',
      '80',
    );
    return /via (198\.18\.0\.\d+)/.exec(out)?.[1] ?? '';
  }

  startFlows(n: number): void {
    const child = spawn(
      'ip',
      ['netns', 'exec', `${this.prefix}-client`, process.execPath, join(this.dir, 'client.cjs'), VIP, String(n)],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    this.procs.set('client', child);
    this.client = { p: child, lines: createInterface({ input: child.stdout! })[Symbol.asyncIterator]() };
  }

  async flows(): Promise<Flow[]> {
    const c = this.client;
    if (!c) throw new Error('no flows');
    c.p.stdin?.write('report\n');
    const r = await c.lines.next();
    return JSON.parse(r.value as string) as Flow[];
  }

  async until(what: string, f: () => boolean | Promise<boolean>, ms = 30000): Promise<number> {
    const t0 = Date.now();
    for (;;) {
      try {
        if (await f()) return Date.now() - t0;
      } catch {}
      if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
      await sleep(50);
    }
  }

  down(): void {
    for (const name of [...this.procs.keys()]) this.kill(name, name.startsWith('lb') ? 'SIGTERM' : 'SIGKILL');
    for (const dm of ['bgpd', 'bfdd', 'zebra'])
      try {
        process.kill(Number(readFileSync(join(this.routerDir(), `${dm}.pid`), 'utf8')), 'SIGTERM');
      } catch {}
    try {
      this.sh('bash', LAB, 'down');
    } catch {}
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Counted over the flows alive before an event. */
export function compare(
  before: Flow[],
  after: Flow[],
  dirBefore: Map<number, string>,
  dirAfter: Map<number, string>,
): { flows: number; movedDirector: number; broken: number; changedServer: number } {
  let flows = 0;
  let movedDirector = 0;
  let broken = 0;
  let changedServer = 0;
  before.forEach((b, i) => {
    if (b.broken || !b.sport) return;
    flows++;
    const a = after[i];
    if (dirBefore.get(b.sport) !== dirAfter.get(b.sport)) movedDirector++;
    if (a.broken) broken++;
    else if (a.rs !== b.rs || a.changes > b.changes) changedServer++;
  });
  return { flows, movedDirector, broken, changedServer };
}
