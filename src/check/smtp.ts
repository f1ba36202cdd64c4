/** SMTP_CHECK (keepalived check_smtp.c): banner 220, `HELO helo_name` answered 250, QUIT answered (RFC 5321 §4.1). */
import type { SmtpCheck } from '../config/model.js';
import { formatTrio } from '../lb/ids.js';
import { connectionIdentity, identityText } from './identity.js';
import { readUntil } from './stream-io.js';
import type { Checker, CheckPorts, CheckResult, CheckTarget } from './types.js';

const MAX_REPLY = 8192;

/** Reads one (possibly multi-line, RFC 5321 §4.2.1) reply; returns its code or undefined. */
async function readReply(
  sock: import('node:stream').Duplex,
  signal: AbortSignal,
  pending: { buf: string },
): Promise<number | undefined> {
  let code: number | undefined;
  let bad = false;
  const scan = (): boolean => {
    for (;;) {
      const nl = pending.buf.indexOf('\n');
      if (nl < 0) {
        if (pending.buf.length > MAX_REPLY) bad = true;
        return bad;
      }
      const line = pending.buf.slice(0, nl).replace(/\r$/, '');
      pending.buf = pending.buf.slice(nl + 1);
      const m = /^(\d{3})([ -]|$)/.exec(line);
      if (!m) {
        bad = true;
        return true;
      }
      if (m[2] !== '-') {
        code = Number(m[1]);
        return true;
      }
    }
  };
  if (scan()) return bad ? undefined : code;
  const r = await readUntil(sock, signal, (chunk) => {
    pending.buf += chunk.toString('latin1');
    return scan();
  });
  return r === 'done' && !bad ? code : undefined;
}

export function createSmtpCheck(cfg: SmtpCheck, ports: CheckPorts): Checker {
  return {
    type: 'SMTP_CHECK',
    async run(t: CheckTarget, signal: AbortSignal): Promise<CheckResult> {
      const where = formatTrio(t.address, 'tcp', t.port);
      let sock: import('node:stream').Duplex;
      try {
        sock = await ports.dialer.connectTcp({
          host: t.address,
          port: t.port,
          family: t.family,
          localAddress: cfg.bindTo,
          localPort: cfg.bindPort,
          signal,
        });
      } catch (e) {
        return {
          up: false,
          reason: `SMTP connection to ${where} failed (${(e as { code?: string }).code ?? 'error'}).`,
        };
      }
      try {
        const pending = { buf: '' };
        const banner = await readReply(sock, signal, pending);
        if (banner !== 220)
          return { up: false, reason: `Bad greeting banner from server ${where} (${banner ?? 'unreadable'}).` };
        sock.write(`HELO ${cfg.heloName}\r\n`);
        const helo = await readReply(sock, signal, pending);
        if (helo !== 250)
          return { up: false, reason: `Bad HELO response from server ${where} (${helo ?? 'unreadable'}).` };
        sock.write('QUIT\r\n');
        // check_smtp.c waits for the QUIT reply (any code) before declaring success
        const quit = await readReply(sock, signal, pending);
        if (quit === undefined) return { up: false, reason: `No QUIT response from server ${where}.` };
        return { up: true, reason: `Remote SMTP server ${where} succeed on service.` };
      } finally {
        sock.end();
        sock.destroy();
      }
    },
  };
}

/** check_smtp.c compare_smtp_check: helo_name and the connection options. */
export function smtpCheckIdentity(cfg: SmtpCheck): string {
  return identityText([cfg.heloName, connectionIdentity(cfg)]);
}
