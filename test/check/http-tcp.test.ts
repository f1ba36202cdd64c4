import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import tls from 'node:tls';
import { targetOf } from '../../src/check/check-manager.js';
import { buildRequest, createHttpCheck } from '../../src/check/http.js';
import { createTcpCheck } from '../../src/check/tcp.js';
import type { CheckPorts } from '../../src/check/types.js';
import type { Checker, HttpCheck, HttpUrl } from '../../src/config/model.js';
import { NodeDialer } from '../../src/os/dialer.js';
import { httpCheck, loc, realServer, tcpCheck, virtualServer } from './fixtures.js';
import { close, deadPort, listen, md5, rawServer } from './servers.js';

const ports: CheckPorts = {
  dialer: new NodeDialer(),
  runner: { run: async () => ({ exitCode: 0, signal: null, timedOut: false, stdout: '' }) },
  files: { readText: async () => undefined },
};
const servers: net.Server[] = [];
after(async () => {
  for (const s of servers) await close(s).catch(() => {});
});

function targetFor(port: number, cfg: Checker = tcpCheck()) {
  const rs = realServer(port, [cfg]);
  return targetOf(virtualServer([rs]), rs, cfg);
}

async function serve(handler: (sock: net.Socket, req: string) => void, waitRequest = true) {
  const srv = rawServer(handler, waitRequest);
  servers.push(srv);
  return listen(srv);
}

const url = (over: Partial<HttpUrl> = {}): HttpUrl => ({
  path: '/health',
  statusCodes: [[200, 299]],
  regexNoMatch: false,
  loc,
  ...over,
});

async function runHttp(port: number, cfg: HttpCheck, ms = 2000) {
  const t = targetFor(port, cfg);
  return createHttpCheck(cfg, ports).run(t, AbortSignal.timeout(ms));
}

describe('TCP_CHECK', () => {
  it('is up when the port accepts', async () => {
    const port = await serve((s) => s.end(), false);
    const r = await createTcpCheck(tcpCheck(), ports).run(targetFor(port), AbortSignal.timeout(2000));
    assert.equal(r.up, true);
    assert.match(r.reason, /TCP connection to \[127\.0\.0\.1\]:tcp:\d+ success/);
  });
  it('is down when refused', async () => {
    const port = await deadPort();
    const r = await createTcpCheck(tcpCheck(), ports).run(targetFor(port), AbortSignal.timeout(2000));
    assert.equal(r.up, false);
    assert.match(r.reason, /failed \(ECONNREFUSED\)/);
  });
  it('honours connect_port and a pre-aborted signal', async () => {
    const port = await serve((s) => s.end(), false);
    const cfg = tcpCheck({ connectPort: port });
    const rs = realServer(1, [cfg]);
    const t = targetOf(virtualServer([rs]), rs, cfg);
    assert.equal(t.port, port);
    assert.equal((await createTcpCheck(cfg, ports).run(t, AbortSignal.timeout(2000))).up, true);
    const ac = new AbortController();
    ac.abort();
    assert.equal((await createTcpCheck(cfg, ports).run(t, ac.signal)).up, false);
  });
});

describe('HTTP_GET', () => {
  const body = 'hello keepvs\n';
  const okReply = (status = '200 OK', b = body) =>
    `HTTP/1.0 ${status}\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(b)}\r\n\r\n${b}`;

  it('sends the request as keepalived does for 1.0, 1.0C and 1.1', () => {
    const t = targetFor(8080);
    const u = url();
    assert.equal(
      buildRequest(httpCheck({ httpProtocol: '1.0' }), u, t),
      'GET /health HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: 127.0.0.1:8080\r\n\r\n',
    );
    assert.equal(
      buildRequest(httpCheck({ httpProtocol: '1.0C' }), u, targetFor(80)),
      'GET /health HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: 127.0.0.1:80\r\n\r\n',
    );
    assert.equal(
      buildRequest(httpCheck({ httpProtocol: '1.1' }), url({ virtualhost: 'www.example' }), t),
      'GET /health HTTP/1.1\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: www.example\r\n\r\n',
    );
    const rs6 = realServer(8080, [httpCheck()], { address: '::1', family: 6 });
    assert.match(
      buildRequest(httpCheck(), u, targetOf(virtualServer([rs6]), rs6, httpCheck())),
      /Host: \[::1\]:8080\r\n/,
    );
  });

  it('passes on status 200 with the right digest', async () => {
    let seen = '';
    const port = await serve((s, req) => {
      seen = req;
      s.end(okReply());
    });
    const r = await runHttp(port, httpCheck({ urls: [url({ digest: md5(body) })] }));
    assert.equal(r.up, true, r.reason);
    assert.match(seen, /^GET \/health HTTP\/1\.0\r\n/);
  });

  it('fails on a wrong status, accepts it when listed as a single code or a range', async () => {
    const port = await serve((s) => s.end(okReply('503 Service Unavailable')));
    const r = await runHttp(port, httpCheck({ urls: [url()] }));
    assert.equal(r.up, false);
    assert.match(r.reason, /HTTP status code error .*status_code \[503\]/);
    const r2 = await runHttp(
      port,
      httpCheck({
        urls: [
          url({
            statusCodes: [
              [200, 200],
              [500, 503],
            ],
          }),
        ],
      }),
    );
    assert.equal(r2.up, true, r2.reason);
  });

  it('fails on a wrong digest', async () => {
    const port = await serve((s) => s.end(okReply()));
    const r = await runHttp(port, httpCheck({ urls: [url({ digest: md5('other') })] }));
    assert.equal(r.up, false);
    assert.match(r.reason, new RegExp(`MD5 digest error .*MD5SUM \\[${md5(body)}\\]`));
  });

  it('streams a large body into the MD5 (8 MiB, no Content-Length)', async () => {
    const chunk = Buffer.alloc(64 * 1024, 'a');
    const total = Buffer.concat(Array(128).fill(chunk));
    const port = await serve((s) => {
      s.write('HTTP/1.0 200 OK\r\n\r\n');
      let i = 0;
      const pump = () => {
        while (i < 128) {
          i++;
          if (!s.write(chunk)) return s.once('drain', pump);
        }
        s.end();
      };
      pump();
    });
    const r = await runHttp(port, httpCheck({ urls: [url({ digest: md5(total) })] }), 10000);
    assert.equal(r.up, true, r.reason);
  });

  it('hashes a chunked 1.1 body with its framing, as keepalived/genhash do, and stops at the last chunk', async () => {
    const raw = '6\r\nhello \r\n7\r\nkeepvs\n\r\n0\r\n\r\n';
    // the server keeps the connection open: the last-chunk marker must end the read
    const port = await serve((s) => s.write(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${raw}`));
    const r = await runHttp(port, httpCheck({ httpProtocol: '1.1', urls: [url({ digest: md5(raw) })] }));
    assert.equal(r.up, true, r.reason);
  });

  it('fails when the body is too slow (deadline) and when the server never answers', async () => {
    const slow = await serve((s) => s.write('HTTP/1.0 200 OK\r\nContent-Length: 100\r\n\r\nabc'));
    const r = await runHttp(slow, httpCheck({ urls: [url({ digest: md5('x') })] }), 300);
    assert.equal(r.up, false);
    assert.match(r.reason, /Timeout/);
    const mute = await serve(() => {});
    const r2 = await runHttp(mute, httpCheck({ urls: [url()] }), 300);
    assert.equal(r2.up, false);
  });

  it('fails on garbage, truncated bodies and refused connections', async () => {
    const garbage = await serve((s) => s.end('SSH-2.0-OpenSSH_9.0\r\n\r\n'));
    assert.match((await runHttp(garbage, httpCheck({ urls: [url()] }))).reason, /Invalid HTTP response/);
    const truncated = await serve((s) => s.end('HTTP/1.0 200 OK\r\nContent-Length: 100\r\n\r\nabc'));
    assert.equal((await runHttp(truncated, httpCheck({ urls: [url({ digest: md5('abc') })] }))).up, false);
    const early = await serve((s) => s.end('HTTP/1.0 20'));
    assert.equal((await runHttp(early, httpCheck({ urls: [url()] }))).up, false);
    assert.match((await runHttp(await deadPort(), httpCheck())).reason, /Error connecting/);
  });

  it('requires every url to pass, and applies regex / regex_no_match', async () => {
    const port = await serve((s, req) => s.end(req.startsWith('GET /bad') ? okReply('404 Not Found') : okReply()));
    assert.equal((await runHttp(port, httpCheck({ urls: [url(), url({ path: '/bad' })] }))).up, false);
    assert.equal((await runHttp(port, httpCheck({ urls: [url({ regex: 'keep[a-z]+' })] }))).up, true);
    assert.equal(
      (await runHttp(port, httpCheck({ urls: [url({ regex: 'keep[a-z]+', regexNoMatch: true })] }))).up,
      false,
    );
  });
});

describe('SSL_GET', () => {
  let dir: string | undefined;
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  it('speaks TLS with SNI and checks the digest', async (t) => {
    dir = mkdtempSync(join(tmpdir(), 'kv-ssl-'));
    try {
      execFileSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'rsa:2048',
          '-nodes',
          '-days',
          '1',
          '-subj',
          '/CN=test',
          '-keyout',
          join(dir, 'k.pem'),
          '-out',
          join(dir, 'c.pem'),
        ],
        { stdio: 'ignore' },
      );
    } catch {
      t.skip('openssl not available');
      return;
    }
    let sni: string | undefined;
    const srv = tls.createServer(
      { key: readFileSync(join(dir, 'k.pem')), cert: readFileSync(join(dir, 'c.pem')) },
      (s) => {
        sni = (s as tls.TLSSocket & { servername?: string }).servername;
        s.on('error', () => {});
        s.once('data', () => s.end('HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok'));
      },
    );
    servers.push(srv);
    const port = await listen(srv);
    const cfg = httpCheck({ type: 'SSL_GET', urls: [url({ digest: md5('ok'), virtualhost: 'www.example' })] });
    const r = await runHttp(port, cfg);
    assert.equal(r.up, true, r.reason);
    assert.equal(sni, 'www.example');
    const plain = await serve((s) => s.end('HTTP/1.0 200 OK\r\n\r\n'), false);
    assert.equal((await runHttp(plain, cfg, 1000)).up, false);
  });
});

describe('IPv6', () => {
  it('TCP_CHECK and HTTP_GET reach ::1', async (t) => {
    const srv = rawServer((s) => s.end('HTTP/1.0 200 OK\r\n\r\n'));
    servers.push(srv);
    let port: number;
    try {
      port = await listen(srv, '::1');
    } catch {
      t.skip('no IPv6 loopback');
      return;
    }
    const cfg = httpCheck();
    const rs = realServer(port, [cfg], { address: '::1', family: 6 });
    const tgt = targetOf(virtualServer([rs]), rs, cfg);
    const r = await createHttpCheck(cfg, ports).run(tgt, AbortSignal.timeout(2000));
    assert.equal(r.up, true, r.reason);
    const r2 = await createTcpCheck(tcpCheck(), ports).run(tgt, AbortSignal.timeout(2000));
    assert.match(r2.reason, /\[::1\]:tcp:\d+ success/);
  });
});

describe('deadlines release sockets', () => {
  it('a hung server sees its connection closed when the probe is aborted', async () => {
    let closedAt = 0;
    const port = await serve((s) => {
      s.on('close', () => {
        closedAt = performance.now();
      });
    });
    const t0 = performance.now();
    const r = await runHttp(port, httpCheck({ urls: [url()] }), 200);
    assert.equal(r.up, false);
    await new Promise((res) => setTimeout(res, 100));
    assert.ok(closedAt > 0, 'server-side socket closed');
    assert.ok(closedAt - t0 < 1000);
  });
});
