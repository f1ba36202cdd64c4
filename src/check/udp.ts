/**
 * UDP_CHECK (keepalived check_udp.c): send `payload`; an ICMP unreachable fails the check. With
 * `require_reply`, the reply must match it (X nibbles are wildcards) within min/max_reply_length;
 * without it, any reply or silence until connect_timeout counts as up.
 */
import type { UdpCheck } from '../config/model.js';
import { formatTrio } from '../lb/ids.js';
import { connectionIdentity, identityText } from './identity.js';
import type { Checker, CheckPorts, CheckResult, CheckTarget } from './types.js';

/** Parses hex with optional X/x wildcard nibbles into value and mask nibble arrays. */
export function parsePattern(hex: string): { value: number[]; wild: boolean[] } {
  const clean = hex.replace(/\s+/g, '');
  const value: number[] = [];
  const wild: boolean[] = [];
  for (const ch of clean) {
    if (ch === 'x' || ch === 'X') {
      value.push(0);
      wild.push(true);
    } else {
      value.push(Number.parseInt(ch, 16));
      wild.push(false);
    }
  }
  return { value, wild };
}

export function matchesReply(reply: Uint8Array, pattern: string): boolean {
  const p = parsePattern(pattern);
  // check_udp.c check_udp_reply compares only the shorter of reply and pattern
  const nibbles = Math.min(p.value.length, reply.length * 2);
  for (let i = 0; i < nibbles; i++) {
    if (p.wild[i]) continue;
    const byte = reply[i >> 1];
    const nib = i % 2 === 0 ? byte >> 4 : byte & 0xf;
    if (nib !== p.value[i]) return false;
  }
  return true;
}

export function createUdpCheck(cfg: UdpCheck, ports: CheckPorts): Checker {
  const payload = Buffer.from((cfg.payload ?? '').replace(/\s+/g, ''), 'hex');
  return {
    type: 'UDP_CHECK',
    async run(t: CheckTarget, signal: AbortSignal): Promise<CheckResult> {
      const where = formatTrio(t.address, 'udp', t.port);
      const inner = AbortSignal.any([signal, AbortSignal.timeout(Math.max(1, cfg.connectTimeout * 1000))]);
      const r = await ports.dialer.udpExchange({
        host: t.address,
        port: t.port,
        family: t.family,
        localAddress: cfg.bindTo,
        localPort: cfg.bindPort,
        payload,
        signal: inner,
      });
      if (r.kind === 'error') return { up: false, reason: `UDP check to ${where} failed (${r.code}).` };
      if (cfg.requireReply === undefined) return { up: true, reason: `UDP check to ${where} success.` };
      if (r.kind === 'silence') return { up: false, reason: `UDP check to ${where}: no reply.` };
      const len = r.data.length;
      if (len < cfg.minReplyLength || len > cfg.maxReplyLength)
        return { up: false, reason: `UDP check to ${where}: reply length ${len} out of range.` };
      if (!matchesReply(r.data, cfg.requireReply))
        return { up: false, reason: `UDP check to ${where}: reply does not match.` };
      return { up: true, reason: `UDP check to ${where} success.` };
    },
  };
}

/** check_udp.c compare_udp_check: the connection options only (payload and reply are not compared). */
export function udpCheckIdentity(cfg: UdpCheck): string {
  return identityText(connectionIdentity(cfg));
}
