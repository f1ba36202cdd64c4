/** A keepvs daemon on loopback for end-to-end tests: real servers, HTTP helpers, keepvsadm, API. */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = process.cwd();

/**
 * Stops a keepvs the test started: SIGTERM (the supervisor stops its proxy workers), SIGKILL after
 * `ms`. A SIGKILL alone would leave the proxy workers running, as they are meant to outlive a
 * crashed supervisor until the next keepvs adopts them.
 */
export async function stopKeepvs(proc: ChildProcess, ms = 8000): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const gone = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGTERM');
  const t = setTimeout(() => proc.kill('SIGKILL'), ms);
  await gone;
  clearTimeout(t);
}

const handedOut = new Set<number>();

/**
 * A port free on `host` a moment ago, and never one this process handed out before: a closed
 * bind(0) port can come back from the next bind(0), and tests bind theirs only later (a VIP port
 * once equalled a real server's, and the daemon could not listen).
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (;;) {
    const s = net.createServer();
    await new Promise<void>((r) => s.listen(0, host, r));
    const p = (s.address() as net.AddressInfo).port;
    await new Promise((r) => s.close(r));
    if (handedOut.has(p)) continue;
    handedOut.add(p);
    return p;
  }
}

/** An HTTP real server answering `name` (and `ok` on /health); its sockets can be listed. */
export async function httpRealServer(port: number, name: string): Promise<http.Server> {
  const s = http.createServer((req, res) => res.end(req.url === '/health' ? 'ok' : name));
  s.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => s.listen(port, '127.0.0.1', r));
  return s;
}

export function get(
  port: number,
  path = '/',
  agent: http.Agent | false = false,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent, timeout: 3000 }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
  });
}

/** Polls `fn` every 100 ms until it gives a truthy value (returned) or `ms` pass (an error with `log`'s tail). */
export async function until<T>(
  what: string,
  fn: () => T | undefined | false | Promise<T | undefined | false>,
  ms = 10000,
  log = () => '',
): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what} ${last ?? ''}\n${log().slice(-3000)}`);
}

export const childPids = (pid: number): number[] => {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
};

export const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

export interface DaemonUnderTest {
  readonly dir: string;
  readonly conf: string;
  readonly apiPort: number;
  readonly proc: ChildProcess;
  output: string;
  status(): Promise<DaemonStatusJson>;
  keepvsadm(...args: string[]): Promise<string>;
  act(action: string, body: object): Promise<{ status: number; body: string }>;
  /** the pid of a worker as the API reports it */
  workerPid(role: 'lvs' | 'vrrp'): Promise<number>;
  /** `keepDir`: leave its directory (pid files, socket dir, state) for a keepvs started again there */
  stop(keepDir?: boolean): Promise<void>;
}

export interface DaemonStatusJson {
  workers: { role: string; pid?: number; state: string; restarts: number; heapUsed?: number }[];
  heapUsed?: number;
  lvs?: {
    table: {
      services: {
        id: string;
        scheduler: string;
        dests: {
          address: string;
          port: number;
          weight: number;
          activeConns: number;
          inactConns: number;
          stats: { conns: number };
        }[];
      }[];
    };
    checks: { servers: { service: string; dest: string; up: boolean; weight: number }[] };
    dataplane: { kind: string; workers: number; services: { id: string; listener: string; open: number }[] };
  };
}

/** Starts `keepvs -n -l` on `configText` (extra args appended); resolves once `ready` holds. */
export async function startDaemon(
  configText: string,
  extraArgs: readonly string[],
  ready: (s: DaemonStatusJson) => boolean,
  /** start again in an earlier daemon's directory (same pid files, socket and API port) */
  again?: { readonly dir: string; readonly apiPort: number },
): Promise<DaemonUnderTest> {
  const dir = again?.dir ?? mkdtempSync(join(tmpdir(), 'kv-e2e-'));
  const conf = join(dir, 'keepalived.conf');
  writeFileSync(conf, configText);
  const apiPort = again?.apiPort ?? (await freePort());
  const socket = join(dir, 'keepvs.sock');
  const proc = spawn(
    process.execPath,
    [
      join(root, 'bin/keepvs.js'),
      '-n',
      '-l',
      '-G',
      '-f',
      conf,
      '--socket',
      socket,
      '--api',
      `127.0.0.1:${apiPort}`,
      '--api-token',
      'e2e-token',
      '-p',
      join(dir, 'keepvs.pid'),
      '-c',
      join(dir, 'checkers.pid'),
      '-r',
      join(dir, 'vrrp.pid'),
      // the userspace proxy even as root (auto would take the kernel plane): loopback real servers
      '--dataplane=proxy',
      ...extraArgs,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const d: DaemonUnderTest = {
    dir,
    conf,
    apiPort,
    proc,
    output: '',
    status: async () => JSON.parse((await get(apiPort, '/api/v1/status')).body) as DaemonStatusJson,
    keepvsadm: (...args) =>
      new Promise<string>((resolve) => {
        const p = spawn(process.execPath, [join(root, 'bin/keepvsadm.js'), '--socket', socket, ...args]);
        let s = '';
        p.stdout.on('data', (x) => (s += x));
        p.stderr.on('data', (x) => (s += x));
        p.on('close', () => resolve(s));
      }),
    act: (action, body) =>
      new Promise((resolve, reject) => {
        const payload = JSON.stringify(body);
        const req = http.request(
          {
            host: '127.0.0.1',
            port: apiPort,
            path: `/api/v1/actions/${action}`,
            method: 'POST',
            agent: false,
            headers: { authorization: 'Bearer e2e-token', 'content-type': 'application/json' },
          },
          (res) => {
            let b = '';
            res.on('data', (x) => (b += x));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b }));
          },
        );
        req.on('error', reject);
        req.end(payload);
      }),
    workerPid: async (role) => (await d.status()).workers.find((w) => w.role === role)?.pid ?? 0,
    stop: async (keepDir = false) => {
      await stopKeepvs(proc);
      if (!keepDir) rmSync(dir, { recursive: true, force: true });
    },
  };
  proc.stdout?.on('data', (x) => (d.output += x));
  proc.stderr?.on('data', (x) => (d.output += x));
  try {
    await until(
      'daemon ready',
      async () => ready(await d.status()),
      15000,
      () => d.output,
    );
  } catch (e) {
    // a daemon that never got ready must not outlive the test
    await d.stop();
    throw e;
  }
  return d;
}

/** A kept-alive HTTP/1.1 connection asking one request at a time (a long-lived client). */
export class LongLived {
  private readonly socket: net.Socket;
  private buf = '';
  private waiting: ((body: string) => void) | undefined;
  broken = false;

  private constructor(port: number) {
    this.socket = net.connect(port, '127.0.0.1');
    this.socket.setEncoding('utf8');
    this.socket.on('data', (d: string) => {
      this.buf += d;
      const m = this.buf.match(/\r\n\r\n/);
      if (!m || m.index === undefined) return;
      const len = Number(this.buf.match(/content-length: (\d+)/i)?.[1] ?? 0);
      const end = m.index + 4 + len;
      if (this.buf.length < end) return;
      const body = this.buf.slice(m.index + 4, end);
      this.buf = this.buf.slice(end);
      this.waiting?.(body);
      this.waiting = undefined;
    });
    const fail = () => {
      this.broken = true;
      this.waiting?.('');
    };
    this.socket.on('error', fail);
    this.socket.on('close', fail);
  }

  static async open(port: number): Promise<LongLived> {
    const c = new LongLived(port);
    await new Promise<void>((resolve, reject) => {
      c.socket.once('connect', () => resolve());
      c.socket.once('error', reject);
    });
    return c;
  }

  /** One request on this connection: the body, or '' when the connection broke or 3 s passed. */
  ask(): Promise<string> {
    if (this.broken) return Promise.resolve('');
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(''), 3000);
      this.waiting = (b) => {
        clearTimeout(t);
        resolve(b);
      };
      this.socket.write('GET / HTTP/1.1\r\nHost: keepvs\r\n\r\n');
    });
  }

  close(): void {
    this.socket.destroy();
  }
}

/** New connections one after the other until stop(): how many got no answer from a real server. */
export function closeLoop(port: number, expect: RegExp): { stop(): Promise<{ done: number; failed: number }> } {
  let running = true;
  let done = 0;
  let failed = 0;
  const loop = (async () => {
    while (running) {
      try {
        const r = await get(port);
        if (!expect.test(r.body)) failed++;
      } catch {
        failed++;
      }
      done++;
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return { done, failed };
    },
  };
}
