/**
 * HTTP_GET / SSL_GET (keepalived check_http.c): for each url, one connection, a GET as
 * keepalived sends it, the status code checked against the url's ranges, the body streamed into
 * an MD5 (never buffered whole) and compared with `digest`, optional regex on the body.
 * Every url must pass.
 */
import { createHash } from 'node:crypto';
import type { HttpCheck, HttpUrl } from '../config/model.js';
import { destId, formatTrio } from '../lb/ids.js';
import { connectionIdentity, identityText } from './identity.js';
import { readUntil } from './stream-io.js';
import type { Checker, CheckPorts, CheckResult, CheckTarget } from './types.js';

const MAX_HEADER_BYTES = 64 * 1024;
/** bytes of the previous chunk kept so a regex can match across chunk boundaries */
const REGEX_WINDOW = 4096;

/**
 * The request keepalived's http_request_thread writes (check_http.c request_template):
 * `Connection: close` for 1.0C and 1.1, before `Host:`; Host is the virtualhost (url, checker,
 * real server, virtual server, in that order) or `addr:port` (`[addr]:port` for IPv6).
 */
export function buildRequest(cfg: HttpCheck, url: HttpUrl, t: CheckTarget): string {
  const vhost = url.virtualhost ?? cfg.virtualhost ?? t.rs.virtualhost ?? t.vs.virtualhost;
  const host = vhost ?? destId(t, t.family);
  const version = cfg.httpProtocol === '1.1' ? '1.1' : '1.0';
  const connection = cfg.httpProtocol === '1.0' ? '' : 'Connection: close\r\n';
  return `GET ${url.path} HTTP/${version}\r\nUser-Agent: KeepAliveClient\r\n${connection}Host: ${host}\r\n\r\n`;
}

interface ParsedHead {
  status: number;
  contentLength?: number;
  chunked: boolean;
}

export function parseHead(text: string): ParsedHead | undefined {
  const lines = text.split('\r\n');
  const m = /^HTTP\/\d\.\d (\d{3})(?: .*)?$/.exec(lines[0] ?? '');
  if (!m) return undefined;
  let contentLength: number | undefined;
  let chunked = false;
  for (const line of lines.slice(1)) {
    const i = line.indexOf(':');
    if (i < 0) continue;
    const name = line.slice(0, i).trim().toLowerCase();
    const value = line.slice(i + 1).trim();
    if (name === 'content-length' && /^\d+$/.test(value)) contentLength = Number(value);
    if (name === 'transfer-encoding' && /chunked/i.test(value)) chunked = true;
  }
  return { status: Number(m[1]), contentLength, chunked };
}

/**
 * Incremental chunked-transfer framing reader (RFC 9112 §7.1): only tells when the last chunk
 * has been seen. The digest covers the raw body bytes, framing included, as keepalived and its
 * genhash compute it, so existing digests keep matching.
 */
class ChunkDecoder {
  private buf: Buffer = Buffer.alloc(0);
  private remaining = -1; // -1: size line; -2: CRLF after data; -3: trailer; >0: data left
  done = false;
  bad = false;
  constructor(private readonly sink: (b: Buffer) => void = () => {}) {}
  push(chunk: Buffer): boolean {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    for (;;) {
      if (this.done || this.bad) return true;
      if (this.remaining === -1) {
        const nl = this.buf.indexOf('\r\n');
        if (nl < 0) {
          if (this.buf.length > 1024) this.bad = true;
          return this.bad;
        }
        const size = Number.parseInt(this.buf.subarray(0, nl).toString('latin1').split(';')[0].trim(), 16);
        if (!Number.isFinite(size) || size < 0) {
          this.bad = true;
          return true;
        }
        this.buf = this.buf.subarray(nl + 2);
        this.remaining = size === 0 ? -3 : size;
      } else if (this.remaining === -3) {
        // trailer section, ended by an empty line
        const nl = this.buf.indexOf('\r\n');
        if (nl < 0) return false;
        this.buf = this.buf.subarray(nl + 2);
        if (nl === 0) {
          this.done = true;
          return true;
        }
      } else if (this.remaining === -2) {
        if (this.buf.length < 2) return false;
        this.buf = this.buf.subarray(2);
        this.remaining = -1;
      } else {
        if (this.buf.length === 0) return false;
        const n = Math.min(this.remaining, this.buf.length);
        this.sink(this.buf.subarray(0, n));
        this.buf = this.buf.subarray(n);
        this.remaining -= n;
        if (this.remaining === 0) this.remaining = -2;
      }
    }
  }
}

function statusOk(url: HttpUrl, status: number): boolean {
  return url.statusCodes.some(([lo, hi]) => status >= lo && status <= hi);
}

async function checkUrl(
  cfg: HttpCheck,
  url: HttpUrl,
  index: number,
  t: CheckTarget,
  ports: CheckPorts,
  signal: AbortSignal,
): Promise<CheckResult> {
  const where = formatTrio(t.address, 'tcp', t.port);
  const tlsOn = cfg.type === 'SSL_GET';
  const vhost = url.virtualhost ?? cfg.virtualhost ?? t.rs.virtualhost ?? t.vs.virtualhost;
  let sock: Awaited<ReturnType<CheckPorts['dialer']['connectTcp']>>;
  try {
    sock = await ports.dialer.connectTcp({
      host: t.address,
      port: t.port,
      family: t.family,
      localAddress: cfg.bindTo,
      localPort: cfg.bindPort,
      tls: tlsOn ? { servername: cfg.enableSni ? vhost : undefined } : undefined,
      signal,
    });
  } catch (e) {
    const code = (e as { code?: string }).code ?? 'error';
    return { up: false, reason: `Error connecting server ${where} (${code}).` };
  }
  try {
    sock.write(buildRequest(cfg, url, t));
    let head: Buffer = Buffer.alloc(0);
    let parsed: ParsedHead | undefined;
    let headBad = false;
    const md5 = url.digest ? createHash('md5') : undefined;
    const regex = url.regex !== undefined ? new RegExp(url.regex) : undefined;
    let regexHit = false;
    let tail = '';
    let bodyBytes = 0;
    const onBody = (b: Buffer) => {
      bodyBytes += b.length;
      md5?.update(b);
      if (regex && !regexHit) {
        const text = tail + b.toString('latin1');
        if (regex.test(text)) regexHit = true;
        tail = text.slice(-REGEX_WINDOW);
      }
    };
    const chunks = new ChunkDecoder();
    const outcome = await readUntil(sock, signal, (chunk) => {
      if (!parsed) {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) {
          if (head.length > MAX_HEADER_BYTES) headBad = true;
          return headBad;
        }
        parsed = parseHead(head.subarray(0, end).toString('latin1'));
        if (!parsed) {
          headBad = true;
          return true;
        }
        // status is all we need when there is neither digest nor regex
        if (!md5 && !regex) return true;
        chunk = head.subarray(end + 4);
        head = Buffer.alloc(0);
      }
      if (parsed.chunked) {
        onBody(chunk);
        return chunks.push(chunk);
      }
      if (parsed.contentLength !== undefined) {
        const left = parsed.contentLength - bodyBytes;
        if (chunk.length >= left) {
          onBody(chunk.subarray(0, left));
          return true;
        }
      }
      onBody(chunk);
      return false;
    });
    if (outcome === 'aborted') return { up: false, reason: `Timeout reading data to server ${where}.` };
    if (headBad || !parsed) return { up: false, reason: `Invalid HTTP response from server ${where} url(${index}).` };
    if (!statusOk(url, parsed.status))
      return {
        up: false,
        reason: `HTTP status code error to ${where} url(${url.path}), status_code [${parsed.status}].`,
      };
    if (md5 || regex) {
      const complete =
        outcome === 'done' ||
        (outcome === 'end' &&
          !parsed.chunked &&
          (parsed.contentLength === undefined || parsed.contentLength === bodyBytes));
      if (!complete || chunks.bad) return { up: false, reason: `Error reading data from ${where} url(${url.path}).` };
    }
    if (md5) {
      const sum = md5.digest('hex');
      if (sum !== url.digest!.toLowerCase())
        return { up: false, reason: `MD5 digest error to ${where} url(${url.path}), MD5SUM [${sum}].` };
    }
    if (regex && regexHit === url.regexNoMatch)
      return { up: false, reason: `Regex match failed ${where} url(${url.path}).` };
    const what = regex ? 'Regex match' : md5 ? 'MD5 digest' : 'HTTP status code';
    return { up: true, reason: `${what} success to ${where} url(${url.path}).` };
  } finally {
    sock.destroy();
  }
}

export function createHttpCheck(cfg: HttpCheck, ports: CheckPorts): Checker {
  return {
    type: cfg.type,
    async run(t: CheckTarget, signal: AbortSignal): Promise<CheckResult> {
      if (cfg.urls.length === 0) return { up: false, reason: `${cfg.type}: no url configured` };
      let last: CheckResult = { up: false, reason: '' };
      for (let i = 0; i < cfg.urls.length; i++) {
        last = await checkUrl(cfg, cfg.urls[i], i, t, ports, signal);
        if (!last.up) return last;
      }
      return last;
    },
  };
}

/**
 * check_http.c compare_http_check: the connection options, the virtualhost, SNI, and each url's
 * path, digest, status codes, virtualhost and regex (http_protocol and fast_recovery are not).
 */
export function httpCheckIdentity(cfg: HttpCheck): string {
  return identityText([
    connectionIdentity(cfg),
    cfg.virtualhost,
    cfg.enableSni,
    cfg.urls.map((u) => [u.path, u.digest, u.statusCodes, u.virtualhost, u.regex, u.regexNoMatch]),
  ]);
}
