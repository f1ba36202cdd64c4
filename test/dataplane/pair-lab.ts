/**
 * Two keepvs directors sharing a VIP in the network lab (../shared/lab/lab.sh): lb1 and lb2 each run
 * a whole keepvs (kernel plane + VRRP) in their own namespace, three real servers echo what they are
 * sent, and a client namespace holds long-lived connections while it opens new ones all the time.
 * Used by test/dataplane/director-pair-lab.test.ts (the lean CI subset) and bench/chaos.ts (the
 * chaos suite). Every process is started here and killed by pid; `down()` also removes the lab.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { collect, KEEPALIVED, LAB, sleep, stopProc, until } from '../vrrp/lab-peers.js';
import { type LabKeepvs, startLabKeepvs } from './lab-daemon.js';

// the lab helpers the VRRP lab files use, for the pair's tests and bench/chaos.ts
export { KEEPALIVED, LAB, sleep, stopProc, until };

export const canRunPair = process.getuid?.() === 0 && existsSync(LAB) && existsSync('/usr/sbin/nft');
export const VIP = '198.18.0.100';
export const GW_VIP = '198.18.1.254';
/** full-NAT source address: a VIP of the pair (the real servers answer it, so it moves with the master) */
export const LADDR = '198.18.1.250';
/** service ports: stateless NAT, DR and full-NAT by Maglev; NAT and full-NAT by rr (need connection sync) */
export const PORTS = { natMh: 80, natRr: 81, drMh: 82, fnatRr: 83, fnatMh: 84 } as const;
export type Director = 'lb1' | 'lb2';

/** Real server: its name first, then every byte it receives echoed back. */
const RS_SERVER = `import net from 'node:net';
const [name, ...ports] = process.argv.slice(2);
for (const p of ports)
  net.createServer((s) => { s.on('error', () => {}); s.write(name + '\\n'); s.on('data', (d) => s.write(d)); }).listen(Number(p), '0.0.0.0');
`;

/**
 * Client: N long-lived connections, each sending one byte every period and expecting it back; a new
 * connection attempt started every newEveryMs whatever the earlier ones became (each reads the
 * server's name and closes; at most 1,000 in flight, the ticks skipped beyond are counted). Commands
 * on stdin: "mark" records a time, "stop" probes every long-lived connection once more and prints
 * the result. Each attempt records when it started, connected and ended.
 */
const CLIENT = `import net from 'node:net';
import readline from 'node:readline';
const [host, port, nLong, periodMs, newEveryMs] = process.argv.slice(2).map((v, i) => (i === 0 ? v : Number(v)));
const t0 = Date.now(); const now = () => Date.now() - t0;
const long = []; const attempts = []; const marks = []; let skipped = 0;
function openLong(i) {
  const c = { i, name: '', sent: 0, got: 0, waitingSince: -1, maxWait: 0, dead: '', buf: '' };
  const s = net.connect({ host, port }); c.s = s; s.setNoDelay(true);
  s.on('data', (d) => {
    let t = d.toString();
    if (!c.name) { c.buf += t; const nl = c.buf.indexOf('\\n'); if (nl < 0) return; c.name = c.buf.slice(0, nl); t = c.buf.slice(nl + 1); }
    c.got += t.length;
    if (c.got >= c.sent && c.waitingSince >= 0) { c.maxWait = Math.max(c.maxWait, now() - c.waitingSince); c.waitingSince = -1; }
  });
  s.on('error', (e) => { if (!c.dead) c.dead = e.code || String(e); });
  s.on('close', () => { if (!c.dead) c.dead = 'closed'; });
  long.push(c);
}
for (let i = 0; i < nLong; i++) openLong(i);
const tick = setInterval(() => {
  for (const c of long) if (!c.dead && c.name && c.waitingSince < 0) { c.s.write('x'); c.sent++; c.waitingSince = now(); }
}, periodMs);
let inflight = 0;
function attempt() {
  if (inflight >= 1000) { skipped++; return; }
  inflight++;
  const a = { start: now(), connected: -1, end: -1, ok: false, err: '' }; attempts.push(a);
  const s = net.connect({ host, port });
  const done = (ok, err) => { if (a.end >= 0) return; a.end = now(); a.ok = ok; a.err = err; inflight--; s.destroy(); };
  s.setTimeout(3000, () => done(false, 'timeout'));
  s.on('connect', () => { a.connected = now(); });
  let b = '';
  s.on('data', (d) => { b += d; if (b.includes('\\n')) done(b.startsWith('rs'), ''); });
  s.on('error', (e) => done(false, e.code || 'error'));
  s.on('close', () => done(false, 'closed'));
}
const opener = setInterval(attempt, newEveryMs);
readline.createInterface({ input: process.stdin }).on('line', async (l) => {
  if (l === 'mark') { marks.push(now()); return; }
  if (l !== 'stop') return;
  clearInterval(opener); clearInterval(tick);
  // last probe: every live connection must still echo within 5 s
  for (const c of long) if (!c.dead && c.name) { c.s.write('y'); c.sent++; if (c.waitingSince < 0) c.waitingSince = now(); }
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline && long.some((c) => !c.dead && c.got < c.sent)) await new Promise((r) => setTimeout(r, 50));
  while (inflight > 0 && Date.now() < deadline + 3000) await new Promise((r) => setTimeout(r, 50));
  const out = {
    long: long.map((c) => ({ name: c.name, ok: !c.dead && !!c.name && c.got >= c.sent, dead: c.dead, maxWait: Math.max(c.maxWait, c.waitingSince >= 0 ? now() - c.waitingSince : 0) })),
    attempts, marks, skipped, everyMs: newEveryMs,
  };
  process.stdout.write(JSON.stringify(out));
  for (const c of long) c.s.destroy();
  process.exit(0);
});
`;

export interface Attempt {
  start: number;
  /** when the connection was established (-1: never) */
  connected?: number;
  end: number;
  ok: boolean;
  err: string;
}
export interface ClientResult {
  long: { name: string; ok: boolean; dead: string; maxWait: number }[];
  attempts: Attempt[];
  marks: number[];
  /** attempts not started because 1,000 were in flight (never hidden: reported with the figures) */
  skipped?: number;
  /** the attempt period (ms) */
  everyMs?: number;
}

/** What one fault cost, from a client's result (times in ms from the first mark). */
export interface FaultFigures {
  kept: number;
  total: number;
  newFailed: number;
  newTotal: number;
  /** attempt ticks the client skipped (1,000 in flight) */
  newSkipped: number;
  /**
   * Time without service: the longest span of attempt start times whose attempt was not answered
   * at the first try (FIRST_TRY_MS), from the first such start to the start of the next attempt
   * answered at the first try. The attempts start at a fixed rate, whatever the earlier ones became.
   */
  outageMs: number;
  /** the longest gap between the starts of two consecutive attempts answered at the first try */
  firstTryGapMs: number;
  /** attempts after the mark not answered at the first try (failed or answered late) */
  notFirstTry: number;
  /**
   * The figure of the earlier suite: the same client as one that stops starting attempts while 16
   * are in flight (replayed on these attempts), and the longest run of its attempts that failed or
   * took over 500 ms, from its first start to the next good start. It includes a client's TCP
   * retransmission timer: a SYN lost in the takeover is resent after 1 s, and the capped client
   * starts nothing new meanwhile.
   */
  oldOutageMs: number;
  /** longest wait of a long-lived connection for its echo */
  stallMs: number;
}

/**
 * An attempt answered at the first try: connected and greeted within 900 ms. TCP's initial
 * retransmission timeout is 1 s (RFC 6298 §2.1; Linux TCP_TIMEOUT_INIT), so an attempt whose
 * first SYN (or SYN-ACK) was lost cannot connect before 1 s.
 */
export const FIRST_TRY_MS = 900;

/** The longest run of attempts that are not `good`, from its first start to the next good start. */
function longestBadRun(att: readonly Attempt[], good: (a: Attempt) => boolean): number {
  let outage = 0;
  let runStart = -1;
  for (const a of att) {
    if (!good(a)) {
      if (runStart < 0) runStart = a.start;
    } else if (runStart >= 0) {
      outage = Math.max(outage, a.start - runStart);
      runStart = -1;
    }
  }
  if (runStart >= 0) outage = Math.max(outage, (att.at(-1)?.start ?? runStart) - runStart);
  return outage;
}

/** The attempts a client that starts none while `cap` are in flight would have made (same ticks). */
export function cappedAttempts(att: readonly Attempt[], cap = 16, timeoutMs = 3000): Attempt[] {
  const taken: Attempt[] = [];
  const endOf = (a: Attempt) => (a.end >= 0 ? a.end : a.start + timeoutMs);
  for (const a of att) if (taken.filter((t) => endOf(t) > a.start).length < cap) taken.push(a);
  return taken;
}

export function figures(r: ClientResult, slowMs = 500): FaultFigures {
  const from = r.marks[0] ?? 0;
  const all = [...r.attempts].sort((a, b) => a.start - b.start);
  const att = all.filter((a) => a.start >= from);
  const firstTry = (a: Attempt) => a.ok && a.end - a.start < FIRST_TRY_MS;
  let gap = 0;
  // from the last first-try answer before the mark: a fault at the mark leaves the first attempts unanswered
  let last = all.filter((a) => a.start < from && firstTry(a)).at(-1)?.start ?? -1;
  for (const a of att)
    if (firstTry(a)) {
      if (last >= 0) gap = Math.max(gap, a.start - last);
      last = a.start;
    }
  // the earlier client's view: replayed over every attempt (its in-flight count spans the mark)
  const old = cappedAttempts(all).filter((a) => a.start >= from);
  return {
    kept: r.long.filter((c) => c.ok).length,
    total: r.long.length,
    newFailed: att.filter((a) => !a.ok).length,
    newTotal: att.length,
    newSkipped: r.skipped ?? 0,
    outageMs: longestBadRun(att, firstTry),
    firstTryGapMs: gap,
    notFirstTry: att.filter((a) => !firstTry(a)).length,
    oldOutageMs: longestBadRun(old, (a) => a.ok && a.end - a.start <= slowMs),
    stallMs: Math.max(0, ...r.long.map((c) => c.maxWait)),
  };
}

export class Client {
  private out = '';
  private readonly exited: Promise<void>;
  constructor(private readonly proc: ChildProcess) {
    proc.stdout?.on('data', (d) => (this.out += d));
    this.exited = new Promise((r) => proc.once('exit', () => r()));
  }
  mark(): void {
    this.proc.stdin?.write('mark\n');
  }
  async stop(): Promise<ClientResult> {
    this.proc.stdin?.write('stop\n');
    await Promise.race([this.exited, sleep(15000)]);
    if (this.proc.exitCode === null) this.proc.kill('SIGKILL');
    return JSON.parse(this.out) as ClientResult;
  }
}

export interface DirectorOptions {
  priority: number;
  advertInt: number;
  /** VRRP by keepalived 2.2.7 on this host; keepvs then runs its checkers and data plane only (-C) */
  vrrpBy?: 'keepvs' | 'keepalived';
  /** `lvs_sync_daemon eth1 VI_1`: conntrackd syncs the connections (keepvs's VRRP only) */
  sync?: boolean;
  /** extra virtual_server text */
  extra?: string;
}

const rsBody = (port: number) =>
  [1, 2, 3]
    .map((i) => `  real_server 198.18.1.1${i} ${port} {\n    TCP_CHECK {\n      connect_timeout 1\n    }\n  }`)
    .join('\n');
const vs = (port: number, sched: string, method: string) =>
  `virtual_server ${VIP} ${port} {\n  delay_loop 1\n  lvs_sched ${sched}\n  lvs_method ${method}\n${method === 'FNAT' ? '  laddr_group_name LADDR\n' : ''}  protocol TCP\n${rsBody(port)}\n}\n`;

export function vrrpInstance(o: DirectorOptions): string {
  return `vrrp_instance VI_1 {
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority ${o.priority}
  advert_int ${o.advertInt}
  version 3
  track_interface {
    eth1
  }
  virtual_ipaddress {
    ${VIP}/24 dev eth0
    ${GW_VIP}/24 dev eth1
    ${LADDR}/24 dev eth1
  }
}
`;
}

export function directorConfig(host: Director, o: DirectorOptions, withVrrp = true): string {
  const sync = withVrrp && o.sync ? '  lvs_sync_daemon eth1 VI_1 id 51\n' : '';
  return (
    `global_defs {\n  router_id ${host}\n${sync}}\nlocal_address_group LADDR {\n  ${LADDR}\n}\n` +
    (withVrrp ? vrrpInstance(o) : '') +
    vs(PORTS.natMh, 'mh', 'NAT') +
    vs(PORTS.natRr, 'rr', 'NAT') +
    vs(PORTS.drMh, 'mh', 'DR') +
    vs(PORTS.fnatRr, 'rr', 'FNAT') +
    vs(PORTS.fnatMh, 'mh', 'FNAT') +
    (o.extra ?? '')
  );
}

interface Running {
  keepvs: ChildProcess;
  kv: LabKeepvs;
  keepalived?: ChildProcess;
  options: DirectorOptions;
  run: number;
}

export class PairLab {
  readonly dir = mkdtempSync(join(tmpdir(), 'kv-pair-'));
  private readonly env: NodeJS.ProcessEnv;
  private readonly rs = new Map<number, ChildProcess>();
  private readonly directors = new Map<Director, Running>();
  private readonly clients: ChildProcess[] = [];
  private runs = 0;
  private readonly apiBase = 19700 + (process.pid % 200) * 2;

  constructor(readonly prefix: string) {
    this.env = { ...process.env, LAB_PREFIX: prefix, LAB_RS: '3', LAB_DR: '0' };
  }

  ns(host: string): string {
    return `${this.prefix}-${host}`;
  }

  sh(cmd: string, ...args: string[]): string {
    return execFileSync(cmd, args, { env: this.env, encoding: 'utf8' });
  }

  /** Runs in a namespace; never throws (a fault step may legitimately fail). */
  tryIn(host: string, ...argv: string[]): boolean {
    return spawnSync('ip', ['netns', 'exec', this.ns(host), ...argv], { stdio: 'ignore' }).status === 0;
  }

  up(): void {
    writeFileSync(join(this.dir, 'rs.mjs'), RS_SERVER);
    writeFileSync(join(this.dir, 'client.mjs'), CLIENT);
    this.sh('bash', LAB, 'up');
    // DR replies come back through the director holding the back gateway: their source is the VIP
    for (const lb of ['lb1', 'lb2'])
      this.sh('ip', 'netns', 'exec', this.ns(lb), 'sysctl', '-qw', 'net.ipv4.conf.all.accept_local=1');
    for (const lb of ['lb1', 'lb2'])
      this.sh('ip', 'netns', 'exec', this.ns(lb), 'sysctl', '-qw', 'net.ipv4.conf.eth1.accept_local=1');
    for (const i of [1, 2, 3]) {
      this.sh('ip', '-n', this.ns(`rs${i}`), 'addr', 'add', `${VIP}/32`, 'dev', 'lo');
      this.startRs(i);
    }
    const abort = () => {
      this.killAll();
      try {
        this.sh('bash', LAB, 'down');
      } catch {}
      rmSync(this.dir, { recursive: true, force: true });
      process.exit(1);
    };
    process.once('SIGTERM', abort);
    process.once('SIGINT', abort);
  }

  startRs(i: number): void {
    const p = spawn(
      'ip',
      [
        'netns',
        'exec',
        this.ns(`rs${i}`),
        process.execPath,
        join(this.dir, 'rs.mjs'),
        `rs${i}`,
        ...Object.values(PORTS).map(String),
      ],
      { stdio: 'ignore' },
    );
    this.rs.set(i, p);
  }

  async stopRs(i: number): Promise<void> {
    const p = this.rs.get(i);
    this.rs.delete(i);
    if (p) await stopProc(p, 'SIGKILL');
  }

  private apiPort(host: Director): number {
    return this.apiBase + (host === 'lb1' ? 0 : 1);
  }

  sock(host: Director): string {
    return join(this.dir, `${host}.sock`);
  }

  /** keepvs (and keepalived when it runs VRRP) on a director, each in its own process group. */
  start(host: Director, options: DirectorOptions): void {
    const run = ++this.runs;
    const byKeepalived = options.vrrpBy === 'keepalived';
    const conf = join(this.dir, `${host}-${run}.conf`);
    writeFileSync(conf, directorConfig(host, options, !byKeepalived));
    const kv = startLabKeepvs({
      ns: this.ns(host),
      dir: this.dir,
      name: `${host}-${run}`,
      conf,
      sock: this.sock(host),
      detached: true,
      args: [
        '-D',
        ...(byKeepalived ? ['-C'] : []),
        ...['--dataplane', 'nft', '--api', `127.0.0.1:${this.apiPort(host)}`, '--api-token', 'lab-token'],
      ],
    });
    const keepvs = kv.proc;
    let keepalived: ChildProcess | undefined;
    if (byKeepalived) {
      const kconf = join(this.dir, `${host}-${run}-ka.conf`);
      writeFileSync(kconf, `global_defs {\n  router_id ${host}\n}\n${vrrpInstance(options)}`);
      keepalived = spawn(
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
          kconf,
          '-p',
          join(this.dir, `${host}-${run}-ka.pid`),
          '-r',
          join(this.dir, `${host}-${run}-kar.pid`),
        ],
        { stdio: ['ignore', 'pipe', 'pipe'], detached: true },
      );
      collect(keepalived, join(this.dir, `${host}-${run}-ka.log`));
    }
    this.directors.set(host, { keepvs, kv, ...(keepalived ? { keepalived } : {}), options, run });
  }

  /** The director's whole process group(s): SIGKILL is a crash, SIGTERM a graceful stop. */
  async stop(host: Director, sig: NodeJS.Signals): Promise<void> {
    const d = this.directors.get(host);
    if (!d) return;
    this.directors.delete(host);
    await Promise.all([stopProc(d.keepvs, sig, true), d.keepalived ? stopProc(d.keepalived, sig, true) : undefined]);
  }

  /** The pid of a director's VRRP worker, from its pid file (0: not known yet). */
  vrrpPid(host: Director): number {
    const d = this.directors.get(host);
    if (!d) return 0;
    try {
      return Number(readFileSync(join(this.dir, `${host}-${d.run}-vrrp.pid`), 'utf8').trim()) || 0;
    } catch {
      return 0;
    }
  }

  /**
   * A graceful stop whose VRRP worker is late by `lateMs` (held with SIGSTOP; the group's SIGTERM
   * waits for SIGCONT), as a loaded host may schedule it after the LVS worker.
   */
  async stopVrrpLate(host: Director, lateMs: number): Promise<void> {
    const pid = this.vrrpPid(host);
    assert.ok(pid > 0, `${host}: VRRP worker pid`);
    process.kill(pid, 'SIGSTOP');
    const t = setTimeout(() => process.kill(pid, 'SIGCONT'), lateMs);
    try {
      await this.stop(host, 'SIGTERM');
    } finally {
      clearTimeout(t);
      try {
        process.kill(pid, 'SIGCONT');
      } catch {}
    }
  }

  /** SIGHUP to the director's keepvs (a reload with the same configuration). */
  reload(host: Director): void {
    const pid = this.directors.get(host)?.keepvs.pid;
    if (pid) process.kill(pid, 'SIGHUP');
  }

  /** After a crash the dead director keeps its VIPs (as keepalived's); a new start must not race them. */
  clearVips(host: Director): void {
    spawnSync('ip', ['-n', this.ns(host), 'addr', 'del', `${VIP}/24`, 'dev', 'eth0'], { stdio: 'ignore' });
    for (const a of [GW_VIP, LADDR])
      spawnSync('ip', ['-n', this.ns(host), 'addr', 'del', `${a}/24`, 'dev', 'eth1'], { stdio: 'ignore' });
  }

  /** A director's cable on the front (eth0) or back (eth1) network, pulled at the switch or put back. */
  link(host: Director, leg: 'front' | 'back', up: boolean): void {
    // (ip warns "Peer netns reference is invalid" about the veth's far end: harmless, not shown)
    execFileSync(
      'ip',
      ['-n', this.ns('sw'), 'link', 'set', `${host}-${leg === 'front' ? 'f' : 'b'}`, up ? 'up' : 'down'],
      {
        stdio: ['ignore', 'ignore', 'ignore'],
      },
    );
  }

  /** Every frame between lb1 and lb2 dropped at the switch (both networks), or let through again. */
  partition(on: boolean): void {
    const rules = on
      ? `add table bridge chaos
add chain bridge chaos cut { type filter hook forward priority 0; policy accept; }
add rule bridge chaos cut iifname { "lb1-f", "lb1-b" } oifname { "lb2-f", "lb2-b" } drop
add rule bridge chaos cut iifname { "lb2-f", "lb2-b" } oifname { "lb1-f", "lb1-b" } drop
`
      : 'delete table bridge chaos\n';
    execFileSync('ip', ['netns', 'exec', this.ns('sw'), 'nft', '-f', '-'], {
      input: rules,
      stdio: ['pipe', 'ignore', 'pipe'],
    });
  }

  running(host: Director): boolean {
    return this.directors.has(host);
  }

  options(host: Director): DirectorOptions | undefined {
    return this.directors.get(host)?.options;
  }

  hasVip(host: Director): boolean {
    try {
      return execFileSync('ip', ['-n', this.ns(host), '-4', 'addr', 'show', 'dev', 'eth0'], {
        encoding: 'utf8',
      }).includes(` ${VIP}/`);
    } catch {
      return false;
    }
  }

  holders(): Director[] {
    return (['lb1', 'lb2'] as const).filter((h) => this.hasVip(h));
  }

  /**
   * Forget where the VIP and the back gateway were (client and real servers' neighbour entries), so
   * that a run starts with the traffic on the VIP holder: a backup still forwards what is sent to
   * its own MAC (its tables are the same), which would hide a fault.
   */
  forgetNeighbours(): void {
    spawnSync('ip', ['-n', this.ns('client'), 'neigh', 'del', VIP, 'dev', 'eth0'], { stdio: 'ignore' });
    for (const i of [1, 2, 3])
      spawnSync('ip', ['-n', this.ns(`rs${i}`), 'neigh', 'del', GW_VIP, 'dev', 'eth0'], { stdio: 'ignore' });
  }

  /** A host's MAC address on one of its interfaces */
  macOf(host: string, dev: string): string {
    const out = spawnSync('ip', ['-n', this.ns(host), 'link', 'show', dev], { encoding: 'utf8' }).stdout ?? '';
    return /link\/ether (\S+)/.exec(out)?.[1] ?? '';
  }

  /** The MAC a host's neighbour entry gives for an address ('' when it has none) */
  neighbour(host: string, address: string): string {
    const out = spawnSync('ip', ['-n', this.ns(host), 'neigh', 'show', address], { encoding: 'utf8' }).stdout ?? '';
    return /lladdr (\S+)/.exec(out)?.[1] ?? '';
  }

  /** The MAC the client sends VIP traffic to ('' when it has none) */
  clientVipMac(): string {
    const out = spawnSync('ip', ['-n', this.ns('client'), 'neigh', 'show', VIP], { encoding: 'utf8' }).stdout ?? '';
    return /lladdr (\S+)/.exec(out)?.[1] ?? '';
  }

  /** keepvsadm against a director's socket */
  adm(host: Director, ...args: string[]): string {
    return execFileSync(process.execPath, [join(process.cwd(), 'bin', 'keepvsadm.js'), ...args], {
      env: { ...process.env, KEEPVS_SOCKET: this.sock(host) },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  }

  /** every real server of every service in the director's table */
  serving(host: Director): boolean {
    try {
      const out = this.adm(host, '-Ln');
      return (out.match(/-> 198\.18\.1\.1\d:/g) ?? []).length >= 3 * Object.keys(PORTS).length;
    } catch {
      return false;
    }
  }

  /** One request through the VIP from the client namespace: the real server's name, or '' */
  probe(port: number): string {
    const r = spawnSync(
      'ip',
      [
        'netns',
        'exec',
        this.ns('client'),
        process.execPath,
        '-e',
        `const s=require('net').connect(${port},'${VIP}');s.setTimeout(1500,()=>process.exit(1));s.on('data',d=>{process.stdout.write(String(d).split('\\n')[0]);process.exit(0)});s.on('error',()=>process.exit(1))`,
      ],
      { encoding: 'utf8', timeout: 5000 },
    );
    return r.status === 0 ? r.stdout : '';
  }

  client(port: number, opts: { long?: number; periodMs?: number; newEveryMs?: number } = {}): Client {
    const p = spawn(
      'ip',
      [
        'netns',
        'exec',
        this.ns('client'),
        process.execPath,
        join(this.dir, 'client.mjs'),
        VIP,
        String(port),
        String(opts.long ?? 20),
        String(opts.periodMs ?? 100),
        String(opts.newEveryMs ?? 20),
      ],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    this.clients.push(p);
    return new Client(p);
  }

  /** keepvs's output on `host`: the running one's so far, else the last run's, written at its exit */
  log(host: Director): string {
    const d = this.directors.get(host);
    if (d) return d.kv.log();
    const f = join(this.dir, `${host}-${this.runs}.log`);
    return existsSync(f) ? readFileSync(f, 'utf8') : '';
  }

  private killAll(): void {
    for (const d of this.directors.values())
      for (const p of [d.keepvs, d.keepalived])
        if (p?.pid)
          try {
            process.kill(-p.pid, 'SIGKILL');
          } catch {}
    for (const p of [...this.rs.values(), ...this.clients]) if (p.pid) p.kill('SIGKILL');
  }

  async down(): Promise<void> {
    for (const h of [...this.directors.keys()]) await this.stop(h, 'SIGKILL');
    for (const p of [...this.rs.values(), ...this.clients]) await stopProc(p, 'SIGKILL');
    try {
      this.sh('bash', LAB, 'down');
    } catch {}
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Both directors up (lb1 150, lb2 100), lb1 the only VIP holder, both tables full, the service answering. */
export async function settlePair(lab: PairLab, port: number, advertInt: number): Promise<void> {
  if (!lab.running('lb1')) {
    lab.clearVips('lb1');
    lab.start('lb1', { priority: 150, advertInt });
  }
  if (!lab.running('lb2')) lab.start('lb2', { priority: 100, advertInt });
  await until('lb1 alone holds the VIP', () => lab.holders().join() === 'lb1', 30000);
  await until('both tables complete', () => lab.serving('lb1') && lab.serving('lb2'), 30000);
  lab.forgetNeighbours();
  await until('the service answers', () => lab.probe(port).startsWith('rs'), 30000);
}

/** The client through `fault`: its figures, and when lb2 took the VIP. */
export async function throughFault(lab: PairLab, port: number, fault: () => Promise<void>) {
  const c = lab.client(port);
  await sleep(1200);
  c.mark();
  const t0 = Date.now();
  await fault();
  const takeover = await until('lb2 takes the VIP', () => lab.hasVip('lb2'), 15000).then(() => Date.now() - t0);
  await sleep(2000);
  return { ...figures(await c.stop()), takeover };
}

/** The host dies: keepvs killed and its cables cut (its kernel tables alone would keep forwarding). */
export async function crashHost(lab: PairLab, host: Director): Promise<void> {
  await lab.stop(host, 'SIGKILL');
  lab.link(host, 'front', false);
  lab.link(host, 'back', false);
}

export function reviveHost(lab: PairLab, host: Director): void {
  lab.link(host, 'front', true);
  lab.link(host, 'back', true);
}
