/**
 * DNS_CHECK (keepalived check_dns.c): send one query for `name`/`type` over UDP to the real server
 * and expect a response with the same id, NOERROR and at least one answer.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import type { DnsCheck } from '../config/model.js';
import { type CheckResult, type CheckTarget, fmtTarget, type HealthChecker } from './types.js';

const TYPES: Record<DnsCheck['queryType'], number> = { A: 1, NS: 2, CNAME: 5, SOA: 6, MX: 15, TXT: 16, AAAA: 28 };

/** RFC 1035 §4.1: header, one question, recursion desired. */
export function encodeQuery(id: number, name: string, type: DnsCheck['queryType']): Buffer {
  const labels = name === '.' ? [] : name.replace(/\.$/, '').split('.');
  const qname = Buffer.concat([
    ...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'ascii')])),
    Buffer.from([0]),
  ]);
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(0x0100, 2);
  header.writeUInt16BE(1, 4);
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(TYPES[type], 0);
  tail.writeUInt16BE(1, 2);
  return Buffer.concat([header, qname, tail]);
}

/** Checks the response header (RFC 1035 §4.1.1): same id, QR set, RCODE 0, ANCOUNT > 0. */
export function answerOk(id: number, msg: Buffer): string | undefined {
  if (msg.length < 12) return 'short response';
  if (msg.readUInt16BE(0) !== id) return 'wrong id';
  const flags = msg.readUInt16BE(2);
  if (!(flags & 0x8000)) return 'not a response';
  if ((flags & 0xf) !== 0) return `rcode ${flags & 0xf}`;
  if (msg.readUInt16BE(6) === 0) return 'no answer';
  return undefined;
}

export function createDnsCheck(config: DnsCheck): HealthChecker {
  return {
    type: 'DNS_CHECK',
    run(target: CheckTarget, signal: AbortSignal): Promise<CheckResult> {
      const address = config.connectIp ?? target.address;
      const port = config.connectPort ?? target.port;
      const where = fmtTarget(address, port, 'udp');
      const id = Math.floor(Math.random() * 0x10000);
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
          () => finish({ ok: false, reason: `DNS check of ${where}: timeout` }),
          config.connectTimeout * 1000,
        );
        const abort = () => finish({ ok: false, reason: 'aborted' });
        signal.addEventListener('abort', abort);
        sock.on('error', (e: NodeJS.ErrnoException) =>
          finish({ ok: false, reason: `DNS check of ${where} failed (${e.code ?? e.message})` }),
        );
        sock.on('message', (msg) => {
          const bad = answerOk(id, msg);
          finish(
            bad
              ? { ok: false, reason: `DNS check of ${where}: ${bad}` }
              : { ok: true, reason: `DNS check of ${where} succeeded` },
          );
        });
        sock.connect(port, address, () => sock.send(encodeQuery(id, config.name, config.queryType)));
      });
    },
  };
}
