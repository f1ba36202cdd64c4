/** PING_CHECK (keepalived check_ping.c): one ICMP echo (v4 or v6); success = an echo reply in time. */
import type { PingCheck } from '../config/model.js';
import { connectionIdentity, identityText } from './identity.js';
import type { Checker, CheckPorts, CheckResult, CheckTarget } from './types.js';

export function createPingCheck(cfg: PingCheck, ports: CheckPorts): Checker {
  return {
    type: 'PING_CHECK',
    async run(t: CheckTarget, signal: AbortSignal): Promise<CheckResult> {
      const where = `[${t.address}]`;
      const inner = AbortSignal.any([signal, AbortSignal.timeout(Math.max(1, cfg.connectTimeout * 1000))]);
      try {
        const ok = await ports.dialer.ping({ host: t.address, family: t.family, signal: inner });
        return ok
          ? { up: true, reason: `ICMP echo to ${where} success.` }
          : { up: false, reason: `ICMP echo to ${where} failed (no reply).` };
      } catch (e) {
        return { up: false, reason: `ICMP echo to ${where} failed (${(e as { code?: string }).code ?? 'error'}).` };
      }
    },
  };
}

/** check_ping.c compare_ping_check: the connection options only. */
export function pingCheckIdentity(cfg: PingCheck): string {
  return identityText(connectionIdentity(cfg));
}
