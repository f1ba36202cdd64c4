/**
 * Debian's conntrackd as keepvs's connection-sync daemon: a private configuration (written with
 * safe-file's rules in keepvs's run directory), the daemon as a child process in console mode,
 * and its client commands (`conntrackd -C CONF -c|-f|-R|-B|-t|-n|-e ct`), docs/conn-sync.md.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, unlinkSync } from 'node:fs';
import { createServer, connect as netConnect } from 'node:net';
import { endianness, networkInterfaces } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../util/logger.js';
import type { ProcessRunner } from '../util/ports.js';
import { writeFileSafely } from './safe-file.js';

export const CONNTRACKD = '/usr/sbin/conntrackd';

/** conntrackd's client commands (conntrackd(8)): commit, flush, resync from the kernel, bulk send, shorten timers, request resync */
export type ConntrackdFlag = '-c' | '-f' | '-R' | '-B' | '-t' | '-n';

/** A flow of the external cache (the same shape as lb/conn-sync.ts SyncedFlow). */
export interface ExternalFlow {
  readonly family: 4 | 6;
  readonly protocol: string;
  readonly state: string;
  readonly src: string;
  readonly dst: string;
  readonly sport: number;
  readonly dport: number;
}

/**
 * One line of `conntrackd -e ct`: `tcp 6 ESTABLISHED src=.. dst=.. sport=.. dport=.. [ASSURED] ..`.
 * The external cache holds the original direction only (the NAT target travels as attributes
 * that conntrackd does not print), so the real server is not known here.
 */
export function parseSyncedLine(line: string): ExternalFlow | null {
  const w = line.trim().split(/\s+/);
  if (w.length < 6 || !/^\d+$/.test(w[1] ?? '')) return null;
  const protocol = w[0];
  let i = 2;
  let state = '';
  if (!w[i].includes('=')) state = w[i++];
  const kv: Record<string, string> = {};
  for (; i < w.length; i++) {
    const eq = w[i].indexOf('=');
    if (eq < 0) continue;
    const k = w[i].slice(0, eq);
    if (k in kv) break; // the reply direction, when printed
    kv[k] = w[i].slice(eq + 1);
  }
  if (!kv.src || !kv.dst) return null;
  return {
    family: kv.src.includes(':') ? 6 : 4,
    protocol,
    state,
    src: kv.src,
    dst: kv.dst,
    sport: Number(kv.sport ?? 0),
    dport: Number(kv.dport ?? 0),
  };
}

/** The IPv4 address conntrackd binds on the sync interface. */
export function interfaceAddress4(ifname: string): string | undefined {
  return networkInterfaces()[ifname]?.find((a) => a.family === 'IPv4')?.address;
}

export interface ConntrackdOptions {
  /** private directory (0700) for the configuration, control socket, lock and pid files */
  readonly dir: string;
  readonly runner: ProcessRunner;
  readonly logger: Logger;
  readonly binary?: string;
  /** called when the daemon exits on its own (not through stop()) */
  readonly onExit?: (code: number | null, signal: string | null) => void;
}

const COMMAND_TIMEOUT_MS = 10_000;
const CLIENT_FLAGS: readonly ConntrackdFlag[] = ['-c', '-f', '-R', '-B', '-t', '-n'];

/** The request number conntrackd's client sends for each command (a native int; src/local.c do_local_request). */
export type RequestCodes = Partial<Record<ConntrackdFlag, number>>;

const intBytes = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  if (endianness() === 'LE') b.writeInt32LE(n);
  else b.writeInt32BE(n);
  return b;
};

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // not there
  }
}

/**
 * The request numbers of this conntrackd binary's client commands, read off the binary itself:
 * it is run once per command against a socket of ours (a copy of the configuration naming that
 * socket) and the 4 bytes it sends are kept. The numbers changed between conntrack-tools releases
 * (1.4.7: commit 46, flush 45, resync 44, bulk 22, shorten timers 26, request resync 23), so none
 * is assumed. A command whose number was not learnt runs through the binary as before.
 */
export async function learnRequestCodes(
  binary: string,
  runner: ProcessRunner,
  dir: string,
  confText: string,
  controlSocket: string,
): Promise<RequestCodes> {
  const probeSocket = join(dir, 'probe.ctl');
  const probeConf = join(dir, 'probe.conf');
  const codes: RequestCodes = {};
  let take: ((b: Buffer) => void) | undefined;
  const server = createServer((c) => {
    let got = Buffer.alloc(0);
    c.on('error', () => {});
    c.on('data', (d) => {
      got = Buffer.concat([got, d]);
      if (got.length >= 4) {
        take?.(got.subarray(0, 4));
        c.end();
      }
    });
  });
  try {
    writeFileSafely(probeConf, confText.split(controlSocket).join(probeSocket), 0o600);
    unlinkQuietly(probeSocket);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(probeSocket, () => resolve());
    });
    for (const flag of CLIENT_FLAGS) {
      const sent = new Promise<Buffer | undefined>((resolve) => {
        take = resolve;
        setTimeout(() => resolve(undefined), 3000).unref();
      });
      const r = await runner.run([binary, '-C', probeConf, flag], { timeoutMs: 3000 });
      const b = await sent;
      if (r.exitCode === 0 && b) codes[flag] = endianness() === 'LE' ? b.readInt32LE(0) : b.readInt32BE(0);
    }
  } catch {
    // learnt what could be; the rest runs through the binary
  } finally {
    take = undefined;
    server.close();
    unlinkQuietly(probeSocket);
    unlinkQuietly(probeConf);
  }
  return codes;
}

/**
 * One client request on conntrackd's UNIX socket, as its client does it: the number, then its
 * answer until it closes. undefined when done, else why not.
 */
export function conntrackdRequest(socket: string, code: number, timeoutMs = COMMAND_TIMEOUT_MS) {
  return new Promise<string | undefined>((resolve) => {
    const s = netConnect(socket);
    const timer = setTimeout(() => {
      s.destroy();
      resolve('timed out');
    }, timeoutMs);
    s.on('connect', () => s.write(intBytes(code)));
    // its answer is text conntrackd also logs
    s.on('data', () => {});
    s.on('error', (e) => {
      clearTimeout(timer);
      resolve(e.message);
    });
    s.on('close', (hadError) => {
      clearTimeout(timer);
      if (!hadError) resolve(undefined);
    });
  });
}

export class Conntrackd {
  private child: ChildProcess | undefined;
  private stopping = false;
  readonly conf: string;
  readonly controlSocket: string;
  readonly lockFile: string;
  private readonly pidFile: string;
  private readonly binary: string;
  /** the client commands sent straight to the control socket (no process per command) */
  private codes: RequestCodes = {};

  constructor(private readonly o: ConntrackdOptions) {
    this.conf = join(o.dir, 'conntrackd.conf');
    this.controlSocket = join(o.dir, 'conntrackd.ctl');
    this.lockFile = join(o.dir, 'conntrackd.lock');
    this.pidFile = join(o.dir, 'conntrackd.pid');
    this.binary = o.binary ?? CONNTRACKD;
  }

  /** Why conntrackd cannot run here (undefined: it can). */
  unavailable(): string | undefined {
    if (!existsSync(this.binary)) return `${this.binary} is not installed (Debian package conntrackd)`;
    if (process.getuid?.() !== 0) return 'conntrackd needs root (netlink conntrack events)';
    return undefined;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /**
   * Writes `confText` and starts the daemon; resolves once its control socket answers (or with
   * the reason it did not start). A conntrackd left by a previous keepvs worker (its pid file,
   * and /proc says it runs our configuration) is stopped first: its lock file would refuse ours.
   */
  async start(confText: string): Promise<string | undefined> {
    const why = this.unavailable();
    if (why) return why;
    if (this.running) await this.stop();
    await this.killStale();
    try {
      writeFileSafely(this.conf, confText, 0o600);
    } catch (e) {
      return e instanceof Error ? e.message : String(e);
    }
    for (const f of [this.lockFile, this.controlSocket]) {
      try {
        unlinkSync(f);
      } catch {
        // not there
      }
    }
    this.stopping = false;
    const child = spawn(this.binary, ['-C', this.conf], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    const log = this.o.logger;
    const relay = (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) {
        // "[date] (pid=N) [level] text": warnings and errors are worth the log, notices at info
        const m = /\[(notice|warning|ERROR|error)\]\s*(.*)$/.exec(line);
        if (m) log.log(m[1] === 'notice' ? 'info' : m[1] === 'warning' ? 'warning' : 'error', `conntrackd: ${m[2]}`);
      }
    };
    child.stdout?.on('data', relay);
    child.stderr?.on('data', relay);
    const exited = new Promise<string>((resolve) => {
      child.on('error', (e) => resolve(`cannot start ${this.binary}: ${e.message}`));
      child.on('exit', (code, signal) => {
        this.removePid();
        if (!this.stopping) this.o.onExit?.(code, signal);
        resolve(`conntrackd exited (${signal ?? `status ${code}`})`);
      });
    });
    if (child.pid) writeFileSafely(this.pidFile, `${child.pid}\n`, 0o600);
    const ready = (async () => {
      for (let i = 0; i < 100; i++) {
        if (!this.running) return;
        if (existsSync(this.controlSocket)) {
          const r = await this.o.runner.run([this.binary, '-C', this.conf, '-s'], { timeoutMs: 3000 });
          if (r.exitCode === 0) return undefined;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      return 'conntrackd did not answer on its control socket within 5 s';
    })();
    const why2 = await Promise.race([ready, exited]);
    // a takeover's commit is on the critical path: a process per command costs more than the commit
    this.codes =
      why2 === undefined
        ? await learnRequestCodes(this.binary, this.o.runner, this.o.dir, confText, this.controlSocket)
        : {};
    return why2;
  }

  /** Runs one client command (`what` names it in the log); false, and a log line, when it failed. */
  async command(flag: ConntrackdFlag, what: string): Promise<boolean> {
    if (!this.running) {
      this.o.logger.log('error', `conntrackd ${flag} (${what}): conntrackd is not running`);
      return false;
    }
    const code = this.codes[flag];
    if (code !== undefined) {
      const why = await conntrackdRequest(this.controlSocket, code);
      if (why === undefined) return true;
      this.o.logger.log('error', `conntrackd ${flag} (${what}) failed: ${why}`);
      return false;
    }
    const r = await this.o.runner.run([this.binary, '-C', this.conf, flag], { timeoutMs: COMMAND_TIMEOUT_MS });
    if (r.exitCode === 0) return true;
    this.o.logger.log(
      'error',
      `conntrackd ${flag} (${what}) failed: ${r.spawnError ?? (r.timedOut ? 'timed out' : `status ${r.exitCode ?? r.signal}`)}`,
    );
    return false;
  }

  /** The peer's flows (the external cache). */
  async external(): Promise<ExternalFlow[]> {
    if (!this.running) return [];
    const r = await this.o.runner.run([this.binary, '-C', this.conf, '-e', 'ct'], {
      timeoutMs: COMMAND_TIMEOUT_MS,
      captureBytes: 8 * 1024 * 1024,
    });
    if (r.exitCode !== 0) return [];
    const out: ExternalFlow[] = [];
    for (const line of r.stdout.split('\n')) {
      const f = line ? parseSyncedLine(line) : null;
      if (f) out.push(f);
    }
    return out;
  }

  async stop(): Promise<void> {
    const c = this.child;
    this.child = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    this.stopping = true;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => c.kill('SIGKILL'), 3000);
      c.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
      c.kill('SIGTERM');
    });
  }

  private removePid(): void {
    try {
      unlinkSync(this.pidFile);
    } catch {
      // gone
    }
  }

  private async killStale(): Promise<void> {
    let pid: number;
    try {
      pid = Number(readFileSync(this.pidFile, 'utf8').trim());
    } catch {
      return;
    }
    if (!Number.isInteger(pid) || pid <= 1) return;
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (cmdline.includes(this.conf) && /conntrackd/.test(cmdline[0] ?? '')) {
        process.kill(pid, 'SIGKILL');
        // gone once /proc says so (a zombie waits for its parent, which is gone)
        for (let i = 0; i < 40 && existsSync(`/proc/${pid}/cmdline`); i++) {
          if (/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'))) break;
          await new Promise((r) => setTimeout(r, 25));
        }
      }
    } catch {
      // not running
    }
    this.removePid();
  }
}
