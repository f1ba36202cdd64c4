/**
 * HTTP_GET / SSL_GET (keepalived check_http.c): for each url, send a GET, check the status code
 * against the configured codes/ranges and, when set, the MD5 digest of the body (streamed: bodies
 * of any size are hashed without being kept) or a regex. All urls must pass.
 */
import { createHash } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import type { HttpCheck, HttpUrl } from '../config/model.js';
import { type CheckResult, type CheckTarget, fmtTarget, type HealthChecker } from './types.js';

/** Upper bound on what a regex check looks at (the body is otherwise only hashed). */
const REGEX_WINDOW = 64 * 1024;

interface Response {
  status: number;
  digest: string;
  head: string;
}

function request(
  config: HttpCheck,
  url: HttpUrl,
  address: string,
  port: number,
  signal: AbortSignal,
): Promise<Response | { error: string }> {
  return new Promise((resolve) => {
    const host = url.virtualhost ?? config.virtualhost ?? (net.isIPv6(address) ? `[${address}]` : address);
    const ssl = config.type === 'SSL_GET';
    const opts = {
      host: address,
      port,
      ...(config.bindTo ? { localAddress: config.bindTo } : {}),
    };
    const socket: net.Socket = ssl
      ? tls.connect({
          ...opts,
          rejectUnauthorized: false,
          ...(config.enableSni && !net.isIP(host.replace(/^\[|\]$/g, '')) ? { servername: host } : {}),
        })
      : net.connect(opts);
    const md5 = createHash('md5');
    let headerBuf = Buffer.alloc(0);
    let status = 0;
    let inBody = false;
    let head = '';
    let done = false;
    const finish = (r: Response | { error: string }) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', abort);
      socket.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => finish({ error: 'timeout' }), config.connectTimeout * 1000);
    const abort = () => finish({ error: 'aborted' });
    signal.addEventListener('abort', abort);
    socket.once(ssl ? 'secureConnect' : 'connect', () => {
      // keepalived sends HTTP/1.0 by default (http_protocol), closing after the response
      const version = config.httpProtocol === '1.1' ? 'HTTP/1.1' : 'HTTP/1.0';
      const conn = config.httpProtocol === '1.0' ? '' : 'Connection: close\r\n';
      socket.write(`GET ${url.path} ${version}\r\nUser-Agent: KeepAliveClient\r\nHost: ${host}\r\n${conn}\r\n`);
    });
    socket.on('data', (chunk: Buffer) => {
      clearTimeout(timer);
      timerReset();
      if (inBody) {
        md5.update(chunk);
        if (head.length < REGEX_WINDOW && url.regex) head += chunk.toString('latin1');
        return;
      }
      headerBuf = Buffer.concat([headerBuf, chunk]);
      const end = headerBuf.indexOf('\r\n\r\n');
      if (end < 0) {
        if (headerBuf.length > 64 * 1024) finish({ error: 'response header too large' });
        return;
      }
      const statusLine = headerBuf.subarray(0, headerBuf.indexOf('\r\n')).toString('latin1');
      const m = /^HTTP\/\d\.\d (\d{3})/.exec(statusLine);
      if (!m) {
        finish({ error: `bad status line '${statusLine.slice(0, 40)}'` });
        return;
      }
      status = Number(m[1]);
      inBody = true;
      const body = headerBuf.subarray(end + 4);
      md5.update(body);
      if (url.regex) head = body.toString('latin1');
    });
    let timer2: NodeJS.Timeout | undefined;
    function timerReset() {
      if (timer2) clearTimeout(timer2);
      // the connect timeout also bounds each read, as keepalived's read timeout does
      timer2 = setTimeout(() => finish({ error: 'timeout' }), config.connectTimeout * 1000);
    }
    socket.on('end', () => {
      if (timer2) clearTimeout(timer2);
      if (!inBody) finish({ error: 'connection closed before a complete response' });
      else finish({ status, digest: md5.digest('hex'), head });
    });
    socket.on('close', () => {
      if (timer2) clearTimeout(timer2);
      if (!done) finish(inBody ? { status, digest: md5.digest('hex'), head } : { error: 'connection closed' });
    });
    socket.on('error', (e: NodeJS.ErrnoException) => {
      if (timer2) clearTimeout(timer2);
      finish({ error: e.code ?? e.message });
    });
  });
}

export function createHttpCheck(config: HttpCheck): HealthChecker {
  return {
    type: config.type,
    async run(target: CheckTarget, signal: AbortSignal): Promise<CheckResult> {
      const address = config.connectIp ?? target.address;
      const port = config.connectPort ?? target.port;
      const where = fmtTarget(address, port);
      for (const url of config.urls) {
        const r = await request(config, url, address, port, signal);
        if ('error' in r) return { ok: false, reason: `HTTP request to ${where}${url.path} failed (${r.error})` };
        const codes = url.statusCodes;
        if (codes.length && !codes.some(([lo, hi]) => r.status >= lo && r.status <= hi)) {
          return {
            ok: false,
            reason: `HTTP status code error to ${where} url(${url.path}), status_code [${r.status}]`,
          };
        }
        if (url.digest && url.digest !== r.digest) {
          return {
            ok: false,
            reason: `MD5 digest error to ${where} url(${url.path}), expecting ${url.digest} got ${r.digest}`,
          };
        }
        if (url.regex !== undefined && new RegExp(url.regex).test(r.head) === url.regexNoMatch) {
          return {
            ok: false,
            reason: `Regex ${url.regexNoMatch ? 'matched' : 'did not match'} for ${where} url(${url.path})`,
          };
        }
      }
      return { ok: true, reason: `HTTP check of ${where} succeeded` };
    },
  };
}
