/** SMTP_CHECK (keepalived check_smtp.c): banner 220, `HELO helo_name` answered 250, then QUIT (RFC 5321 §4.1). */
import type { SmtpCheck } from '../config/model.js';
import { fmtTrio } from './format.js';
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
      const where = fmtTrio(t.address, 'tcp', t.port);
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
          return { up: false, reason: `SMTP banner from ${where} was ${banner ?? 'invalid'}, expected 220.` };
        sock.write(`HELO ${cfg.heloName}\r\n`);
        const helo = await readReply(sock, signal, pending);
        if (helo !== 250)
          return { up: false, reason: `SMTP HELO to ${where} answered ${helo ?? 'invalid'}, expected 250.` };
        sock.write('QUIT\r\n');
        return { up: true, reason: `SMTP connection to ${where} success.` };
      } finally {
        sock.end();
        sock.destroy();
      }
    },
  };
}
