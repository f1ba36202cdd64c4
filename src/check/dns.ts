/** DNS_CHECK (keepalived check_dns.c): one query of `type` for `name` to the real server; success = an answer. */
import type { DnsCheck } from '../config/model.js';
import { fmtTrio } from './format.js';
import type { Checker, CheckPorts, CheckResult, CheckTarget } from './types.js';

export function createDnsCheck(cfg: DnsCheck, ports: CheckPorts): Checker {
  return {
    type: 'DNS_CHECK',
    async run(t: CheckTarget, signal: AbortSignal): Promise<CheckResult> {
      const where = fmtTrio(t.address, 'udp', t.port);
      const r = await ports.dialer.dnsQuery({
        host: t.address,
        port: t.port,
        family: t.family,
        localAddress: cfg.bindTo,
        name: cfg.name,
        type: cfg.queryType,
        timeoutMs: Math.max(1, cfg.connectTimeout * 1000),
        signal,
      });
      if (r.ok) return { up: true, reason: `DNS query to ${where} succeeded (${r.answers} answers).` };
      return { up: false, reason: `DNS query to ${where} failed: ${r.code} (${cfg.queryType} ${cfg.name}).` };
    },
  };
}
