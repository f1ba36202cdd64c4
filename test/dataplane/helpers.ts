/** Loopback real servers and clients for the data-plane tests. */
import { once } from 'node:events';
import net, { type AddressInfo, type Server, type Socket } from 'node:net';
import type { DestParams, ServiceKey, ServiceParams, TableOp } from '../../src/lb/types.js';

export const SVC_PARAMS: ServiceParams = { scheduler: 'rr', schedFlags: [], ops: false };
export const DEST_PARAMS: DestParams = { forward: 'masq', weight: 1, uThreshold: 0, lThreshold: 0 };

export function tcpKey(port = 0, address = '127.0.0.1'): Extract<ServiceKey, { kind: 'addr' }> {
  return { kind: 'addr', protocol: 'tcp', family: address.includes(':') ? 6 : 4, address, port };
}

export function addOps(key: ServiceKey, destPorts: number[], scheduler = 'rr', address = '127.0.0.1'): TableOp[] {
  return [
    { op: 'add-service', key, params: { ...SVC_PARAMS, scheduler } },
    ...destPorts.map((port): TableOp => ({ op: 'add-dest', key, dest: { address, port }, params: DEST_PARAMS })),
  ];
}

/** A real server; `handler` gets each connection (default: echo with half-close passed on). */
export async function realServer(
  handler: (s: Socket) => void = (s) => s.pipe(s),
  host = '127.0.0.1',
): Promise<{ server: Server; port: number; sockets: Set<Socket>; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    handler(s);
  });
  server.listen(0, host);
  await once(server, 'listening');
  return {
    server,
    port: (server.address() as AddressInfo).port,
    sockets,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

export async function connect(port: number, host = '127.0.0.1'): Promise<Socket> {
  const s = net.connect({ port, host, allowHalfOpen: true });
  s.on('error', () => {});
  await once(s, 'connect');
  return s;
}

/** Everything the socket receives until the peer ends (or it closes). */
export function readAll(s: Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => chunks.push(c));
  return new Promise((resolve) => {
    s.once('end', () => resolve(Buffer.concat(chunks)));
    s.once('close', () => resolve(Buffer.concat(chunks)));
  });
}

export async function waitFor(cond: () => boolean, timeoutMs = 3000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** How a client socket ended: 'end' (FIN), 'reset' (ECONNRESET) or 'close'. */
export function outcome(s: Socket): Promise<'end' | 'reset' | 'close'> {
  return new Promise((resolve) => {
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNRESET' ? 'reset' : 'close'));
    s.once('end', () => resolve('end'));
    s.once('close', () => resolve('close'));
    s.resume();
  });
}

/** A port that was free a moment ago, never handed out twice (the real table refuses port 0 for non-persistent services). */
export { freePort } from '../e2e/harness.js';
