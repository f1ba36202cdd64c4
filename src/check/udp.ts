/**
 * UDP_CHECK (keepalived check_udp.c): send `payload`; with `require_reply`, the reply must match
 * (X nibbles are wildcards) within min/max length. Without it, an ICMP port unreachable (seen as
 * ECONNREFUSED on a connected socket) within connect_timeout is a failure, silence a success.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import type { UdpCheck } from '../config/model.js';
import { type CheckResult, type CheckTarget, fmtTarget, type HealthChecker } from './types.js';

export function replyMatches(pattern: string, reply: Buffer): boolean {
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i];
    if (p === 'x') continue;
    const byte = reply[i >> 1];
    if (byte === undefined) return false;
    const nibble = i % 2 === 0 ? byte >> 4 : byte & 0xf;
    if (nibble !== Number.parseInt(p, 16)) return false;
  }
  return true;
}

export function createUdpCheck(config: UdpCheck): HealthChecker {
  return {
    type: 'UDP_CHECK',
    run(target: CheckTarget, signal: AbortSignal): Promise<CheckResult> {
      const address = config.connectIp ?? target.address;
      const port = config.connectPort ?? target.port;
      const where = fmtTarget(address, port, 'udp');
      const want = config.requireReply;
      return new Promise((resolve) => {
        const sock = dgram.createSocket(net.isIPv6(address) ? 'udp6' : 'udp4');
        let done = false;
        const finish = (r: CheckResult) => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          signal.removeEventListener('abort', abort);
          sock.close();
          resolve(r);
        };
        const timer = setTimeout(
          () =>
            finish(
              want !== undefined
                ? { ok: false, reason: `UDP check of ${where}: no reply` }
                : { ok: true, reason: `UDP check of ${where}: no error` },
            ),
          config.connectTimeout * 1000,
        );
        const abort = () => finish({ ok: false, reason: 'aborted' });
        signal.addEventListener('abort', abort);
        sock.on('error', (e: NodeJS.ErrnoException) =>
          finish({ ok: false, reason: `UDP check of ${where} failed (${e.code ?? e.message})` }),
        );
        sock.on('message', (reply) => {
          if (want === undefined) return finish({ ok: true, reason: `UDP check of ${where}: got a reply` });
          const lenOk = reply.length >= config.minReplyLength && reply.length <= config.maxReplyLength;
          finish(
            lenOk && replyMatches(want, reply)
              ? { ok: true, reason: `UDP check of ${where}: reply matched` }
              : { ok: false, reason: `UDP check of ${where}: unexpected reply (${reply.length} bytes)` },
          );
        });
        sock.connect(port, address, () => {
          sock.send(Buffer.from(config.payload ?? '', 'hex'));
        });
      });
    },
  };
}
