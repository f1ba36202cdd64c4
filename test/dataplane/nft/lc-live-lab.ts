/**
 * The lc family live in the network lab (../shared/lab/lab.sh), for bench/lc-live.ts and its smoke
 * test (lc-live-lab.test.ts): the same traffic through the kernel plane's control loop (keepvs
 * --dataplane nft, lc/wlc: slot maps rewritten each conntrack poll, dataplane/nft/plane.ts), through
 * the userspace per-connection scheduler (keepvs --dataplane proxy, same config) and through the
 * kernel plane with rr/wrr (no feedback, the reference).
 *   lb1   one keepvs --dataplane nft: VIP 198.18.0.100:80 (SCHED) and :81 (rr, or wrr when the
 *         weights differ), NAT; one keepvs --dataplane proxy: VIP 198.18.0.101:80 (SCHED), NAT
 *   rsN   a TCP server per real server on ports 80 / 81 / 82 (one per mode, so a mode's tail never
 *         counts for the next): it holds each connection an exponential time of mean HOLD_N, then
 *         answers and closes; it counts its open connections per port, read by the bench over a
 *         Unix socket (the namespaces share the file system) every SAMPLE_MS
 *   client Poisson arrivals at RATE new connections/s, each held until the server closes it
 * Imbalance (as bench/lc-balance.ts, so live and simulated figures compare): per sample, with A_i
 * real server i's open connections, T their sum and s_i = w_i / sum(w) its ideal share,
 * max_i |A_i / s_i - T| / T (0: active counts exactly in proportion to weight; samples with T = 0
 * skipped); a run's figure is the mean over its samples. Every process is started here and killed
 * by pid; down() removes the lab.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LAB, sleep, stopProc } from '../../vrrp/lab-peers.js';
import { startLabKeepvs } from '../lab-daemon.js';

export { LAB };
export const canRunLcLive = process.getuid?.() === 0 && existsSync(LAB) && existsSync('/usr/sbin/nft');

export type Mode = 'nft-lc' | 'proxy-lc' | 'nft-rr';
export const MODES: readonly Mode[] = ['nft-lc', 'proxy-lc', 'nft-rr'];

export interface LcCase {
  readonly name: string;
  /** lc, wlc (any lc-family scheduler the kernel plane runs by its loop) */
  readonly scheduler: string;
  readonly weights: readonly number[];
  /** mean holding time per real server, s */
  readonly hold: readonly number[];
}

/** The simulation's cases (bench/lc-balance.ts), so the figures sit side by side. */
export const CASES: readonly LcCase[] = [
  { name: 'lc, one slow server (hold 0.2/0.2/1.0 s)', scheduler: 'lc', weights: [1, 1, 1], hold: [0.2, 0.2, 1.0] },
  { name: 'wlc 1:2:3, equal hold 0.5 s', scheduler: 'wlc', weights: [1, 2, 3], hold: [0.5, 0.5, 0.5] },
  { name: 'wlc 1:1:1, hold 0.1/0.5/2.0 s', scheduler: 'wlc', weights: [1, 1, 1], hold: [0.1, 0.5, 2.0] },
];

/** One sample's imbalance against the weights' ideal shares; null when nothing is open. */
export function imbalance(active: readonly number[], weights: readonly number[]): number | null {
  const total = active.reduce((a, b) => a + b, 0);
  if (total <= 0) return null;
  const sum = weights.reduce((a, b) => a + b, 0);
  return Math.max(...active.map((a, i) => Math.abs(a / (weights[i] / sum) - total))) / total;
}

/** The reference scheduler for a case: rr when every weight is equal, wrr otherwise. */
export const refScheduler = (weights: readonly number[]): string =>
  weights.every((w) => w === weights[0]) ? 'rr' : 'wrr';

const VIP_NFT = '198.18.0.100';
const VIP_PROXY = '198.18.0.101';
/** per mode: the VIP and port the client uses, and the real servers' port behind it */
export const PATH: Record<Mode, { vip: string; port: number; rsPort: number }> = {
  'nft-lc': { vip: VIP_NFT, port: 80, rsPort: 80 },
  'nft-rr': { vip: VIP_NFT, port: 81, rsPort: 81 },
  'proxy-lc': { vip: VIP_PROXY, port: 80, rsPort: 82 },
};

const RS_SERVER = `import net from 'node:net';
import { rmSync } from 'node:fs';
const [name, holdMs, ctl, ...ports] = process.argv.slice(2);
const open = {}, accepted = {};
for (const p of ports) {
  open[p] = 0; accepted[p] = 0;
  net.createServer((s) => {
    open[p]++; accepted[p]++;
    let closed = false;
    s.on('error', () => {});
    s.resume(); // read what the client sends: without it 'end', hence 'close', never comes
    s.on('close', () => { if (!closed) { closed = true; open[p]--; } });
    const t = setTimeout(() => s.end(name + '\\n'), -Math.log(1 - Math.random()) * Number(holdMs));
    s.on('close', () => clearTimeout(t));
  }).listen(Number(p), '0.0.0.0');
}
rmSync(ctl, { force: true });
net.createServer((c) => c.end(JSON.stringify({ open, accepted }))).listen(ctl);
`;

const CLIENT = `import net from 'node:net';
const [host, port, rate, durationMs] = process.argv.slice(2).map((v, i) => (i === 0 ? v : Number(v)));
let opened = 0, done = 0, errors = 0; const codes = {};
const t0 = Date.now();
let next = 0; // ms after t0 of the next arrival (Poisson)
const arrive = () => { next += (-Math.log(1 - Math.random()) / rate) * 1000; };
arrive();
function one() {
  opened++;
  const s = net.connect({ host, port });
  s.setTimeout(30000);
  s.on('connect', () => s.write('x'));
  s.on('data', () => {});
  s.on('end', () => { done++; });
  s.on('error', (e) => { errors++; codes[e.code] = (codes[e.code] ?? 0) + 1; });
  s.on('timeout', () => { errors++; codes.timeout = (codes.timeout ?? 0) + 1; s.destroy(); });
}
const timer = setInterval(() => {
  const now = Date.now() - t0;
  if (now >= durationMs) {
    clearInterval(timer);
    process.stdout.write(JSON.stringify({ opened, done, errors, codes }));
    process.exit(0);
  }
  while (next <= now) { one(); arrive(); }
}, 2);
`;

export interface RunResult {
  mode: Mode;
  scheduler: string;
  /** samples taken in the measured window */
  samples: number;
  /** mean over those samples of imbalance() */
  imbalance: number;
  /** time-averaged open connections per real server */
  meanActive: number[];
  /** connections each real server accepted in the window */
  conns: number[];
  /** the client's whole run (warm-up included) */
  client: { opened: number; done: number; errors: number; codes: Record<string, number> };
}

export class LcLiveLab {
  readonly dir = mkdtempSync(join(tmpdir(), 'kv-lc-live-'));
  readonly env: NodeJS.ProcessEnv;
  private readonly procs: ChildProcess[] = [];
  private daemons: ChildProcess[] = [];
  private servers: ChildProcess[] = [];
  private isUp = false;
  private runs = 0;

  constructor(
    readonly prefix: string,
    readonly nServers = 3,
    readonly proxyWorkers = 1,
  ) {
    this.env = { ...process.env, LAB_PREFIX: prefix, LAB_RS: String(nServers), LAB_DR: '0' };
    writeFileSync(join(this.dir, 'rs.mjs'), RS_SERVER);
    writeFileSync(join(this.dir, 'client.mjs'), CLIENT);
  }

  sh(cmd: string, ...args: string[]): string {
    return execFileSync(cmd, args, { env: this.env, encoding: 'utf8' });
  }

  up(): void {
    this.sh('bash', LAB, 'up');
    this.isUp = true;
    const lb1 = `${this.prefix}-lb1`;
    for (const a of [`${VIP_NFT}/32`, `${VIP_PROXY}/32`]) this.sh('ip', '-n', lb1, 'addr', 'add', a, 'dev', 'eth0');
    // NAT replies come back through lb1, the real servers' gateway to the client net
    this.sh('ip', '-n', lb1, 'addr', 'add', '198.18.1.254/24', 'dev', 'eth1');
  }

  down(): void {
    for (const p of this.procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    if (this.isUp)
      try {
        this.sh('bash', LAB, 'down');
      } catch {}
    this.isUp = false;
    rmSync(this.dir, { recursive: true, force: true });
  }

  private spawnIn(host: string, argv: string[], log?: string, stdout = false): ChildProcess {
    const p = spawn('ip', ['netns', 'exec', `${this.prefix}-${host}`, ...argv], {
      stdio: ['ignore', log || stdout ? 'pipe' : 'ignore', log ? 'pipe' : 'inherit'],
    });
    if (log) {
      let out = '';
      p.stdout?.on('data', (d) => (out += d));
      p.stderr?.on('data', (d) => (out += d));
      p.on('exit', () => writeFileSync(join(this.dir, log), out));
    }
    this.procs.push(p);
    return p;
  }

  private config(c: LcCase, kernel: boolean): string {
    const vs = (vip: string, port: number, sched: string, rsPort: number) =>
      `virtual_server ${vip} ${port} {\n  lvs_sched ${sched}\n  lvs_method NAT\n  protocol TCP\n${c.weights
        .map((w, i) => `  real_server 198.18.1.${11 + i} ${rsPort} { weight ${w} }`)
        .join('\n')}\n}\n`;
    return kernel
      ? vs(VIP_NFT, PATH['nft-lc'].port, c.scheduler, PATH['nft-lc'].rsPort) +
          vs(VIP_NFT, PATH['nft-rr'].port, refScheduler(c.weights), PATH['nft-rr'].rsPort)
      : vs(VIP_PROXY, PATH['proxy-lc'].port, c.scheduler, PATH['proxy-lc'].rsPort);
  }

  /** Real servers with this case's holding times and both keepvs daemons with its config; waits until every path connects. */
  async start(c: LcCase): Promise<void> {
    await this.stop();
    this.runs++;
    this.servers = c.hold.map((h, i) =>
      this.spawnIn(`rs${i + 1}`, [
        process.execPath,
        join(this.dir, 'rs.mjs'),
        `rs${i + 1}`,
        String(h * 1000),
        this.ctl(i),
        ...Object.values(PATH).map((p) => String(p.rsPort)),
      ]),
    );
    for (const [name, kernel, api] of [
      ['nft', true, 19470],
      ['proxy', false, 19471],
    ] as const) {
      const conf = join(this.dir, `${name}.conf`);
      writeFileSync(conf, this.config(c, kernel));
      const dataplane = kernel
        ? ['--dataplane', 'nft']
        : ['--dataplane', 'proxy', `--dataplane-workers=${this.proxyWorkers}`];
      const k = startLabKeepvs({
        ns: `${this.prefix}-lb1`,
        dir: this.dir,
        name: `${name}-${this.runs}`,
        conf,
        args: ['-G', '--api', `127.0.0.1:${api}`, ...dataplane],
      });
      this.procs.push(k.proc);
      this.daemons.push(k.proc);
    }
    const t0 = Date.now();
    for (;;) {
      const ok = await Promise.all(MODES.map((m) => this.probe(PATH[m].vip, PATH[m].port)));
      if (ok.every(Boolean) && c.hold.every((_, i) => existsSync(this.ctl(i)))) break;
      if (Date.now() - t0 > 30000)
        throw new Error(`lab paths not answering (${MODES.filter((_, i) => !ok[i]).join(', ')}); logs in ${this.dir}`);
      await sleep(300);
    }
  }

  async stop(): Promise<void> {
    for (const p of [...this.daemons, ...this.servers]) await stopProc(p, 'SIGTERM');
    this.daemons = [];
    this.servers = [];
  }

  private ctl(i: number): string {
    return join(this.dir, `rs${i + 1}.ctl`);
  }

  /** One TCP connect from the client namespace (the connection is then dropped). */
  private probe(vip: string, port: number): Promise<boolean> {
    return new Promise((resolve) => {
      const p = spawn(
        'ip',
        [
          'netns',
          'exec',
          `${this.prefix}-client`,
          process.execPath,
          '-e',
          `const s=require('net').connect({host:'${vip}',port:${port}});s.setTimeout(1000);s.on('connect',()=>process.exit(0));s.on('error',()=>process.exit(1));s.on('timeout',()=>process.exit(1));`,
        ],
        { stdio: 'ignore' },
      );
      p.on('exit', (code) => resolve(code === 0));
    });
  }

  /** Every real server's open and accepted connection counts per port. */
  private read(i: number): Promise<{ open: Record<string, number>; accepted: Record<string, number> }> {
    return new Promise((resolve, reject) => {
      let out = '';
      const s = connect(this.ctl(i));
      s.on('data', (d) => (out += d));
      s.on('end', () => {
        try {
          resolve(JSON.parse(out));
        } catch (e) {
          reject(e);
        }
      });
      s.on('error', reject);
    });
  }

  /** Wait until no real server holds a connection on port (the previous mode's tail). */
  private async drained(port: number, ms = 20000): Promise<void> {
    const t0 = Date.now();
    while (Date.now() - t0 < ms) {
      const r = await Promise.all(this.servers.map((_, i) => this.read(i)));
      if (r.every((x) => (x.open[port] ?? 0) === 0)) return;
      await sleep(200);
    }
  }

  /** One mode: RATE new connections/s for warmS + durationS, sampled during the last durationS. */
  async run(
    c: LcCase,
    mode: Mode,
    o: { rate: number; warmS: number; durationS: number; sampleMs?: number },
  ): Promise<RunResult> {
    const path = PATH[mode];
    const port = String(path.rsPort);
    await this.drained(path.rsPort);
    const client = this.spawnIn(
      'client',
      [
        process.execPath,
        join(this.dir, 'client.mjs'),
        path.vip,
        String(path.port),
        String(o.rate),
        String((o.warmS + o.durationS) * 1000),
      ],
      undefined,
      true,
    );
    let out = '';
    client.stdout?.on('data', (d) => (out += d));
    const exited = new Promise<void>((r) => client.on('exit', () => r()));
    const t0 = Date.now();
    await sleep(o.warmS * 1000);
    const n = c.weights.length;
    const sumActive = new Array<number>(n).fill(0);
    let samples = 0;
    let imb = 0;
    const first = await Promise.all(c.weights.map((_, i) => this.read(i)));
    const end = t0 + (o.warmS + o.durationS) * 1000 - 50;
    let last = first;
    while (Date.now() < end) {
      const r = await Promise.all(c.weights.map((_, i) => this.read(i)));
      last = r;
      const active = r.map((x) => x.open[port] ?? 0);
      const f = imbalance(active, c.weights);
      if (f !== null) {
        imb += f;
        samples++;
        for (let i = 0; i < n; i++) sumActive[i] += active[i];
      }
      await sleep(o.sampleMs ?? 100);
    }
    await exited;
    const parsed = out ? JSON.parse(out) : { opened: 0, done: 0, errors: -1, codes: {} };
    return {
      mode,
      scheduler: mode === 'nft-rr' ? refScheduler(c.weights) : c.scheduler,
      samples,
      imbalance: samples ? imb / samples : Number.NaN,
      meanActive: sumActive.map((a) => (samples ? a / samples : 0)),
      conns: last.map((x, i) => (x.accepted[port] ?? 0) - (first[i].accepted[port] ?? 0)),
      client: parsed,
    };
  }

  /** The load average, for the figures' notes. */
  static load(): string {
    return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  }
}
