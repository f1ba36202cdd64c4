/** The daemon's end of the control socket. Bad requests get an error response, never a crash. */
import { chmodSync, existsSync, mkdirSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import { dirname } from 'node:path';
import type { ConnSnapshot, TableOp, TableSnapshot } from '../lb/types.js';
import { type ControlResponse, type DaemonRequest, MAX_REQUEST_BYTES, parseRequest } from './protocol.js';

export interface ControlTarget {
  snapshot(): TableSnapshot;
  connections(): ConnSnapshot[] | Promise<ConnSnapshot[]>;
  apply(ops: readonly TableOp[]): Promise<{ ok: boolean; error?: string }[]>;
  /** ipvsadm --start-daemon / --stop-daemon: undefined, or the error text */
  startDaemon?(d: DaemonRequest): Promise<string | undefined>;
  stopDaemon?(state: 'master' | 'backup'): Promise<string | undefined>;
}

/** Bounds that keep a client that never reads from growing the LVS worker (its output stays in our memory). */
export interface ControlLimits {
  /** unread response bytes held for one client before it is dropped (default 64 MiB: a -Lc of 1M connections fits) */
  readonly maxPendingBytes: number;
  /** a client whose responses stay unread this long is dropped (default 30 s) */
  readonly stallMs: number;
  /** clients connected at once; more are refused (default 64) */
  readonly maxClients: number;
}

export const DEFAULT_CONTROL_LIMITS: ControlLimits = { maxPendingBytes: 64 << 20, stallMs: 30_000, maxClients: 64 };

/** Counted for the API and /metrics (LvsSnapshot.control). */
export interface ControlStats {
  clients: number;
  /** dropped for leaving responses unread (over maxPendingBytes or stalled for stallMs) */
  slowClientsDropped: number;
  /** refused because maxClients were connected */
  clientsRefused: number;
}

export interface ControlServer extends net.Server {
  readonly stats: ControlStats;
}

export async function startControlServer(
  path: string,
  target: ControlTarget,
  limits: ControlLimits = DEFAULT_CONTROL_LIMITS,
  log?: (message: string) => void,
): Promise<ControlServer> {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  if (existsSync(path)) {
    // a live daemon answers; a stale socket file from a crash is removed
    const alive = await new Promise<boolean>((resolve) => {
      const s = net.connect(path, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (alive) throw new Error(`control socket ${path} is in use by another keepvs`);
    unlinkSync(path);
  }
  const stats: ControlStats = { clients: 0, slowClientsDropped: 0, clientsRefused: 0 };
  const server = net.createServer((sock) => {
    if (stats.clients >= limits.maxClients) {
      stats.clientsRefused++;
      sock.on('error', () => {});
      sock.end(`${JSON.stringify({ ok: false, error: 'too many keepvsadm clients connected' })}\n`);
      return;
    }
    stats.clients++;
    sock.once('close', () => stats.clients--);
    let buf = '';
    const queue: string[] = [];
    let busy = false;
    let waitingDrain = false;
    const MAX_QUEUED = 16;
    const maybeResume = () => {
      if (!waitingDrain && queue.length <= MAX_QUEUED && sock.isPaused()) sock.resume();
    };
    sock.setEncoding('utf8');
    sock.on('error', () => {});
    const drop = (why: string) => {
      stats.slowClientsDropped++;
      log?.(`control socket: dropping a client that does not read its responses (${why})`);
      sock.destroy();
    };
    // one request at a time per client, and none read while its last response is unread:
    // a client that never reads holds at most one response in our memory
    const next = () => {
      if (busy || sock.destroyed) return;
      const line = queue.shift();
      maybeResume();
      if (line === undefined) return;
      busy = true;
      void handle(line).then((resp) => {
        busy = false;
        if (sock.destroyed) return;
        const flushed = sock.write(`${JSON.stringify(resp)}\n`);
        if (sock.writableLength > limits.maxPendingBytes) return drop(`${sock.writableLength} bytes unread`);
        if (flushed) return next();
        waitingDrain = true;
        sock.pause();
        sock.once('drain', () => {
          waitingDrain = false;
          maybeResume();
          next();
        });
      });
    };
    // a stalled reader makes no progress at all: the socket times out with output still queued
    sock.setTimeout(limits.stallMs, () => {
      if (sock.writableLength > 0) drop(`no progress for ${limits.stallMs / 1000} s`);
    });
    sock.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.length > MAX_REQUEST_BYTES) {
        sock.end(`${JSON.stringify({ ok: false, error: 'request too large' })}\n`);
        buf = '';
        return;
      }
      let nl = buf.indexOf('\n');
      while (nl >= 0) {
        queue.push(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        nl = buf.indexOf('\n');
      }
      // lines beyond what we answer stay unread in the kernel: pause until the queue drains
      if (queue.length > MAX_QUEUED) sock.pause();
      next();
    });
  });
  const handle = async (line: string): Promise<ControlResponse> => {
    const req = parseRequest(line);
    if (typeof req === 'string') return { ok: false, error: req };
    try {
      if (req.cmd === 'snapshot') return { ok: true, snapshot: target.snapshot() };
      if (req.cmd === 'connections') return { ok: true, connections: await target.connections() };
      if (req.cmd === 'start-daemon' || req.cmd === 'stop-daemon') {
        const error =
          req.cmd === 'start-daemon'
            ? await (target.startDaemon?.(req.daemon) ?? Promise.resolve('the sync daemon is not available here'))
            : await (target.stopDaemon?.(req.state) ?? Promise.resolve('No daemon is running'));
        return error === undefined ? { ok: true, done: true } : { ok: false, error };
      }
      return { ok: true, results: await target.apply(req.ops) };
    } catch (e) {
      return { ok: false, error: e instanceof Error ? e.message : String(e) };
    }
  };
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  chmodSync(path, 0o600);
  return Object.assign(server, { stats });
}

/** One request, one response. */
export function controlRequest(path: string, request: object, timeoutMs = 5000): Promise<ControlResponse> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(path);
    let buf = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error('timed out waiting for keepvs'));
    }, timeoutMs);
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(`${JSON.stringify(request)}\n`));
    sock.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        sock.destroy();
        try {
          resolve(JSON.parse(buf.slice(0, nl)) as ControlResponse);
        } catch {
          reject(new Error('malformed response from keepvs'));
        }
      }
    });
    sock.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}
