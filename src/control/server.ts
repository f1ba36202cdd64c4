/** The daemon's end of the control socket. Bad requests get an error response, never a crash. */
import { chmodSync, existsSync, mkdirSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import { dirname } from 'node:path';
import type { ConnSnapshot, TableOp, TableSnapshot } from '../lb/types.js';
import { type ControlResponse, MAX_REQUEST_BYTES, parseRequest } from './protocol.js';

export interface ControlTarget {
  snapshot(): TableSnapshot;
  connections(): ConnSnapshot[] | Promise<ConnSnapshot[]>;
  apply(ops: readonly TableOp[]): Promise<{ ok: boolean; error?: string }[]>;
}

export async function startControlServer(path: string, target: ControlTarget): Promise<net.Server> {
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
  const server = net.createServer((sock) => {
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('error', () => {});
    sock.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.length > MAX_REQUEST_BYTES) {
        sock.end(`${JSON.stringify({ ok: false, error: 'request too large' })}\n`);
        buf = '';
        return;
      }
      let nl = buf.indexOf('\n');
      while (nl >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        void handle(line).then((resp) => sock.write(`${JSON.stringify(resp)}\n`));
        nl = buf.indexOf('\n');
      }
    });
  });
  const handle = async (line: string): Promise<ControlResponse> => {
    const req = parseRequest(line);
    if (typeof req === 'string') return { ok: false, error: req };
    try {
      if (req.cmd === 'snapshot') return { ok: true, snapshot: target.snapshot() };
      if (req.cmd === 'connections') return { ok: true, connections: await target.connections() };
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
  return server;
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
