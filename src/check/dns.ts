/**
 * DNS_CHECK (keepalived check_dns.c): one UDP query (RD set) of `type` for `name` to the real
 * server. Replies with another id or without QR are ignored (the wait goes on); the check passes
 * on RCODE 0 (NOERROR, with or without answers) and fails on any other RCODE or a timeout.
 */
import { randomInt } from 'node:crypto';
import { decodeHeader, encodeQuery } from '../codec/dns.js';
import type { DnsCheck } from '../config/model.js';
import { formatTrio } from '../lb/ids.js';
import { connectionIdentity, identityText } from './identity.js';
import type { Checker, CheckPorts, CheckResult, CheckTarget } from './types.js';

/** RFC 1035 §4.1.1 RCODE names, for log lines. */
const RCODES: readonly string[] = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED'];

export function createDnsCheck(cfg: DnsCheck, ports: CheckPorts): Checker {
  return {
    type: 'DNS_CHECK',
    async run(t: CheckTarget, signal: AbortSignal): Promise<CheckResult> {
      const where = formatTrio(t.address, 'udp', t.port);
      const id = randomInt(0, 0x10000);
      const query = encodeQuery({ id, name: cfg.name, type: cfg.queryType, recursionDesired: true });
      if (!query.ok)
        return { up: false, reason: `DNS_CHECK ${where}: cannot encode ${cfg.name}: ${query.error.message}` };
      const inner = AbortSignal.any([signal, AbortSignal.timeout(Math.max(1, cfg.connectTimeout * 1000))]);
      const r = await ports.dialer.udpExchange({
        host: t.address,
        port: t.port,
        family: t.family,
        localAddress: cfg.bindTo,
        localPort: cfg.bindPort,
        payload: query.value,
        accept: (reply) => {
          const h = decodeHeader(reply);
          return h.ok && h.value.id === id && h.value.response;
        },
        signal: inner,
      });
      if (r.kind === 'error') return { up: false, reason: `DNS_CHECK (${where}) connection error (${r.code}).` };
      if (r.kind === 'silence') return { up: false, reason: `DNS_CHECK (${where}) read timeout from socket.` };
      const h = decodeHeader(r.data);
      if (!h.ok) return { up: false, reason: `DNS_CHECK (${where}) bad reply: ${h.error.message}` };
      if (h.value.rcode !== 0)
        return {
          up: false,
          reason:
            `DNS_CHECK (${where}) error occurred (rcode = ${h.value.rcode} ${RCODES[h.value.rcode] ?? ''}).`.replace(
              ' ).',
              ').',
            ),
        };
      return {
        up: true,
        reason: `DNS_CHECK (${where}) succeed (${cfg.queryType} ${cfg.name}, ${h.value.ancount} answers).`,
      };
    },
  };
}

/** check_dns.c compare_dns_check: the connection options, type and name. */
export function dnsCheckIdentity(cfg: DnsCheck): string {
  return identityText([connectionIdentity(cfg), cfg.queryType, cfg.name]);
}
