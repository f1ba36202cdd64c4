/** TCP_CHECK: success = the TCP handshake completes (keepalived check_tcp.c). */
import type { TcpCheck } from '../config/model.js';
import { formatTrio } from '../lb/ids.js';
import { connectionIdentity, identityText } from './identity.js';
import type { Checker, CheckPorts, CheckResult, CheckTarget } from './types.js';

export function createTcpCheck(cfg: TcpCheck, ports: CheckPorts): Checker {
  return {
    type: 'TCP_CHECK',
    async run(t: CheckTarget, signal: AbortSignal): Promise<CheckResult> {
      const where = formatTrio(t.address, 'tcp', t.port);
      try {
        const sock = await ports.dialer.connectTcp({
          host: t.address,
          port: t.port,
          family: t.family,
          localAddress: cfg.bindTo,
          localPort: cfg.bindPort,
          signal,
        });
        sock.destroy();
        return { up: true, reason: `TCP connection to ${where} success.` };
      } catch (e) {
        const code = (e as { code?: string }).code ?? 'error';
        return { up: false, reason: `TCP connection to ${where} failed (${code}).` };
      }
    },
  };
}

/** check_tcp.c tcp_check_compare: the connection options only. */
export function tcpCheckIdentity(cfg: TcpCheck): string {
  return identityText(connectionIdentity(cfg));
}
