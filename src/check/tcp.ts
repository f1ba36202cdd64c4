/** TCP_CHECK: success is a completed TCP connect (keepalived check_tcp.c). */
import net from 'node:net';
import type { TcpCheck } from '../config/model.js';
import { type CheckResult, type CheckTarget, fmtTarget, type HealthChecker } from './types.js';

export interface ConnectOptions {
  readonly address: string;
  readonly port: number;
  readonly bindTo?: string;
  readonly bindPort?: number;
  readonly timeoutMs: number;
  readonly signal: AbortSignal;
}

/** Opens a TCP connection or fails with a reason; the caller owns the socket on success. */
export function connectTcp(o: ConnectOptions): Promise<{ socket: net.Socket } | { error: string }> {
  return new Promise((resolve) => {
    const socket = net.connect({
      host: o.address,
      port: o.port,
      ...(o.bindTo ? { localAddress: o.bindTo } : {}),
      ...(o.bindPort ? { localPort: o.bindPort } : {}),
    });
    let done = false;
    const finish = (r: { socket: net.Socket } | { error: string }) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      o.signal.removeEventListener('abort', abort);
      if ('error' in r) socket.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => finish({ error: 'timeout' }), o.timeoutMs);
    const abort = () => finish({ error: 'aborted' });
    o.signal.addEventListener('abort', abort);
    socket.once('connect', () => finish({ socket }));
    socket.once('error', (e: NodeJS.ErrnoException) => finish({ error: e.code ?? e.message }));
  });
}

export function createTcpCheck(config: TcpCheck): HealthChecker {
  return {
    type: 'TCP_CHECK',
    async run(target: CheckTarget, signal: AbortSignal): Promise<CheckResult> {
      const address = config.connectIp ?? target.address;
      const port = config.connectPort ?? target.port;
      const r = await connectTcp({
        address,
        port,
        ...(config.bindTo ? { bindTo: config.bindTo } : {}),
        ...(config.bindPort ? { bindPort: config.bindPort } : {}),
        timeoutMs: config.connectTimeout * 1000,
        signal,
      });
      if ('error' in r)
        return { ok: false, reason: `TCP connection to ${fmtTarget(address, port)} failed (${r.error})` };
      r.socket.destroy();
      return { ok: true, reason: `TCP connection to ${fmtTarget(address, port)} success` };
    },
  };
}
