/** SMTP_CHECK (keepalived check_smtp.c): expect a 220 banner, HELO helo_name -> 250, QUIT. */
import type { SmtpCheck } from '../config/model.js';
import { connectTcp } from './tcp.js';
import { type CheckResult, type CheckTarget, fmtTarget, type HealthChecker } from './types.js';

export function createSmtpCheck(config: SmtpCheck): HealthChecker {
  return {
    type: 'SMTP_CHECK',
    async run(target: CheckTarget, signal: AbortSignal): Promise<CheckResult> {
      const address = config.connectIp ?? target.address;
      const port = config.connectPort ?? target.port;
      const where = fmtTarget(address, port);
      const timeoutMs = config.connectTimeout * 1000;
      const c = await connectTcp({
        address,
        port,
        timeoutMs,
        signal,
        ...(config.bindTo ? { bindTo: config.bindTo } : {}),
      });
      if ('error' in c) return { ok: false, reason: `SMTP connection to ${where} failed (${c.error})` };
      const sock = c.socket;
      let buf = '';
      const reply = () =>
        new Promise<string>((resolve) => {
          const t = setTimeout(() => resolve('timeout'), timeoutMs);
          const onData = (d: Buffer) => {
            buf += d.toString('latin1');
            // a complete reply ends with a line whose 4th character is a space ("250 ok")
            const lines = buf.split('\r\n');
            const last = lines.findIndex((l) => /^\d{3} /.test(l) || /^\d{3}$/.test(l));
            if (last >= 0) {
              clearTimeout(t);
              sock.off('data', onData);
              const code = lines[last].slice(0, 3);
              buf = lines.slice(last + 1).join('\r\n');
              resolve(code);
            } else if (buf.length > 8192) {
              clearTimeout(t);
              resolve('garbage');
            }
          };
          sock.on('data', onData);
          sock.once('close', () => resolve('closed'));
        });
      sock.on('error', () => {});
      try {
        const banner = await reply();
        if (banner !== '220') return { ok: false, reason: `SMTP banner from ${where} was ${banner}, expected 220` };
        sock.write(`HELO ${config.heloName}\r\n`);
        const helo = await reply();
        if (helo !== '250') return { ok: false, reason: `SMTP HELO to ${where} answered ${helo}, expected 250` };
        sock.write('QUIT\r\n');
        return { ok: true, reason: `SMTP check of ${where} succeeded` };
      } finally {
        sock.destroy();
      }
    },
  };
}
