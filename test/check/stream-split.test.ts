/** Stream parsers (HTTP, SMTP) fed the same bytes re-split at random offsets must give the same verdict. */
import assert from 'node:assert/strict';
import { Duplex } from 'node:stream';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { targetOf } from '../../src/check/check-manager.js';
import { createHttpCheck } from '../../src/check/http.js';
import { createSmtpCheck } from '../../src/check/smtp.js';
import type { CheckPorts, Dialer } from '../../src/check/types.js';
import type { Checker, SmtpCheck } from '../../src/config/model.js';
import { httpCheck, loc, realServer, timing, virtualServer } from './fixtures.js';
import { md5 } from './servers.js';

/**
 * A Dialer whose connection replays `chunks` after the first write (a server answering a request),
 * or, with `answers`, pushes `chunks` at once (a greeting) and answers[n] on the n-th write.
 */
function replayDialer(chunks: Buffer[], answers?: Buffer[]): Dialer {
  return {
    connectTcp: async () => {
      let writes = 0;
      const d = new Duplex({
        read() {},
        write(_c, _e, cb) {
          const n = writes++;
          setImmediate(() => {
            if (answers) {
              if (answers[n]) d.push(answers[n]);
            } else if (n === 0) {
              for (const c of chunks) d.push(c);
              d.push(null);
            }
          });
          cb();
        },
      });
      if (answers)
        chunks.forEach((c, i) => {
          setTimeout(() => d.push(c), i);
        });
      return d;
    },
    udpExchange: async () => ({ kind: 'silence' }),
    ping: async () => false,
  };
}

function split(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of [...points, bytes.length]) {
    if (p > prev) out.push(bytes.subarray(prev, p));
    prev = p;
  }
  return out;
}

async function verdict(cfg: Checker, dialer: Dialer) {
  const ports: CheckPorts = {
    dialer,
    runner: { run: async () => ({ exitCode: 0, signal: null, timedOut: false, stdout: '' }) },
    files: { readText: async () => undefined },
  };
  const rs = realServer(80, [cfg]);
  const vs = virtualServer([rs]);
  const check = cfg.type === 'SMTP_CHECK' ? createSmtpCheck(cfg, ports) : createHttpCheck(cfg as never, ports);
  return check.run(targetOf(vs, rs, cfg), AbortSignal.timeout(2000));
}

describe('re-split stream input', () => {
  const body = 'hello keepvs\n';
  const chunked = '6\r\nhello \r\n7;x=1\r\nkeepvs\n\r\n0\r\n\r\n';
  const cases: [string, string, boolean, string][] = [
    ['content-length', `HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n${body}`, true, body],
    ['chunked', `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${chunked}`, true, chunked],
    ['close-delimited', `HTTP/1.0 200 OK\r\n\r\n${body}`, true, body],
    ['wrong body', 'HTTP/1.0 200 OK\r\n\r\nhello other\n', false, body],
    ['bad chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n', false, 'x'],
  ];
  for (const [name, text, expected, hashed] of cases) {
    it(`HTTP ${name}: same verdict at any split`, async () => {
      const bytes = Buffer.from(text, 'latin1');
      const cfg = httpCheck({
        urls: [{ path: '/', statusCodes: [[200, 299]], digest: md5(hashed), regexNoMatch: false, loc }],
      });
      await fc.assert(
        fc.asyncProperty(fc.array(fc.nat(), { maxLength: 8 }), async (cuts) => {
          const r = await verdict(cfg, replayDialer(split(bytes, cuts)));
          assert.equal(r.up, expected, `${r.reason} cuts=${cuts}`);
        }),
        { numRuns: 60 },
      );
    });
  }

  it('SMTP multi-line banner: same verdict at any split', async () => {
    const smtp: SmtpCheck = { type: 'SMTP_CHECK', loc, alpha: false, logAllFailures: false, ...timing, heloName: 'h' };
    const banner = Buffer.from('220-mx.example ESMTP\r\n220-more\r\n220 ready\r\n');
    await fc.assert(
      fc.asyncProperty(fc.array(fc.nat(), { maxLength: 6 }), async (cuts) => {
        const r = await verdict(
          smtp,
          replayDialer(split(banner, cuts), [Buffer.from('250 hi\r\n'), Buffer.from('221 bye\r\n')]),
        );
        assert.equal(r.up, true, r.reason);
      }),
      { numRuns: 60 },
    );
  });
});
