import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import dgram from 'node:dgram';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createChecker } from '../../src/check/index.js';
import type { CheckIo } from '../../src/check/types.js';
import type { Checker } from '../../src/config/model.js';
import { ChildProcessRunner } from '../../src/os/process-runner.js';
import { parse } from '../config/helpers.js';

const io: CheckIo = { runner: new ChildProcessRunner(), readFile: (p) => readFile(p, 'utf8') };

/** Parses one checker block the way a real config would give it. */
function checker(block: string): Checker {
  const r = parse(`virtual_server 127.0.0.1 80 {\n real_server 127.0.0.1 80 {\n${block}\n }\n}`);
  assert.equal(r.usable, true, JSON.stringify(r.diagnostics));
  return r.config!.virtualServers[0].realServers[0].checkers[0];
}

async function listen(server: net.Server | http.Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as net.AddressInfo).port;
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  const p = await listen(s);
  await new Promise((r) => s.close(r));
  return p;
}

const run = (c: Checker, port: number, weight = 1) =>
  createChecker(c, io).run({ address: '127.0.0.1', port, weight }, new AbortController().signal);

test('TCP_CHECK: up when a connection is accepted, down when refused or timing out', async () => {
  const s = net.createServer((c) => c.destroy());
  const port = await listen(s);
  assert.equal((await run(checker('TCP_CHECK {\n connect_timeout 1\n}'), port)).ok, true);
  s.close();
  const refused = await run(checker('TCP_CHECK {\n connect_timeout 1\n}'), await freePort());
  assert.equal(refused.ok, false);
  assert.match(refused.reason, /TCP connection to \[127\.0\.0\.1\]:tcp:\d+ failed \(ECONNREFUSED\)/);
  // 198.18.255.1 is in the lab's benchmarking range but routed nowhere here: a SYN gets no answer
  const t0 = Date.now();
  const timeout = await run(checker('TCP_CHECK {\n connect_timeout 0.3\n connect_ip 127.0.0.1\n}'), await freePort());
  assert.equal(timeout.ok, false);
  assert.ok(Date.now() - t0 < 2000);
});

test('HTTP_GET: status codes and ranges, MD5 digest of the body, slow bodies, garbage', async () => {
  const body = 'x'.repeat(300_000);
  const digest = createHash('md5').update(body).digest('hex');
  const server = http.createServer((req, res) => {
    if (req.url === '/ok') res.end(body);
    else if (req.url === '/slow') {
      res.write('a');
      setTimeout(() => res.end('b'), 2000);
    } else if (req.url === '/503') {
      res.statusCode = 503;
      res.end('busy');
    } else res.end('other');
  });
  const port = await listen(server);
  const url = (path: string, extra = '') =>
    checker(`HTTP_GET {\n url {\n  path ${path}\n${extra}\n }\n connect_timeout 1\n}`);
  assert.equal((await run(url('/ok', `  digest ${digest}`), port)).ok, true);
  const wrong = await run(url('/other', `  digest ${digest}`), port);
  assert.equal(wrong.ok, false);
  assert.match(wrong.reason, /MD5 digest error/);
  assert.equal((await run(url('/503'), port)).ok, false);
  assert.equal((await run(url('/503', '  status_code 500-599'), port)).ok, true);
  const slow = await run(url('/slow'), port);
  assert.equal(slow.ok, false);
  assert.match(slow.reason, /timeout/);
  server.close();
  server.closeAllConnections();
  const garbage = net.createServer((c) => c.end('SSH-2.0-OpenSSH\r\n\r\n'));
  const gport = await listen(garbage);
  const g = await run(url('/'), gport);
  assert.equal(g.ok, false);
  assert.match(g.reason, /bad status line/);
  garbage.close();
});

test('MISC_CHECK: exit codes, misc_dynamic weights, timeout kills the child', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kv-misc-'));
  const script = join(dir, 'check.sh');
  writeFileSync(script, '#!/bin/sh\nexit "$1"\n', { mode: 0o755 });
  const misc = (code: number, dyn = '') =>
    checker(`MISC_CHECK {\n misc_path "${script} ${code}"\n misc_timeout 2\n${dyn}\n}`);
  assert.equal((await run(misc(0), 0)).ok, true);
  assert.equal((await run(misc(1), 0)).ok, false);
  const d = await run(misc(7, ' misc_dynamic'), 0);
  assert.deepEqual([d.ok, d.weight], [true, 5]);
  const t0 = Date.now();
  const slow = await run(checker('MISC_CHECK {\n misc_path "/bin/sleep 10"\n misc_timeout 0.2\n}'), 0);
  assert.equal(slow.ok, false);
  assert.match(slow.reason, /timed out/);
  assert.ok(Date.now() - t0 < 3000);
});

test('SMTP_CHECK: banner 220 and HELO 250, else down', async () => {
  const good = net.createServer((c) => {
    c.write('220 mail ESMTP\r\n');
    c.on('data', (d) => {
      if (String(d).startsWith('HELO keepvs.test')) c.write('250 hello\r\n');
    });
  });
  const port = await listen(good);
  assert.equal((await run(checker('SMTP_CHECK {\n helo_name keepvs.test\n connect_timeout 1\n}'), port)).ok, true);
  good.close();
  const bad = net.createServer((c) => c.write('554 go away\r\n'));
  const bport = await listen(bad);
  assert.equal((await run(checker('SMTP_CHECK {\n connect_timeout 1\n}'), bport)).ok, false);
  bad.close();
});

test('UDP_CHECK: reply matching with X wildcards; ICMP port unreachable is a failure', async () => {
  const srv = dgram.createSocket('udp4');
  srv.on('message', (m, r) => srv.send(Buffer.from([0xab, 0xcd, m[0]]), r.port, r.address));
  await new Promise<void>((r) => srv.bind(0, '127.0.0.1', () => r()));
  const port = srv.address().port;
  assert.equal(
    (await run(checker('UDP_CHECK {\n payload 01\n require_reply abXd01\n connect_timeout 1\n}'), port)).ok,
    true,
  );
  assert.equal(
    (await run(checker('UDP_CHECK {\n payload 01\n require_reply ffff\n connect_timeout 1\n}'), port)).ok,
    false,
  );
  srv.close();
  const closed = await freePort();
  const r = await run(checker('UDP_CHECK {\n payload 01\n connect_timeout 1\n}'), closed);
  assert.equal(r.ok, false);
});

test('DNS_CHECK: answer with the query id and at least one record', async () => {
  const srv = dgram.createSocket('udp4');
  srv.on('message', (q, r) => {
    const resp = Buffer.from(q);
    resp.writeUInt16BE(0x8180, 2);
    resp.writeUInt16BE(1, 6);
    srv.send(resp, r.port, r.address);
  });
  await new Promise<void>((r) => srv.bind(0, '127.0.0.1', () => r()));
  assert.equal(
    (await run(checker('DNS_CHECK {\n type A\n name example.test\n connect_timeout 1\n}'), srv.address().port)).ok,
    true,
  );
  srv.removeAllListeners('message');
  srv.on('message', (q, r) => {
    const resp = Buffer.from(q);
    resp.writeUInt16BE(0x8183, 2); // NXDOMAIN
    srv.send(resp, r.port, r.address);
  });
  const nx = await run(checker('DNS_CHECK {\n name example.test\n connect_timeout 1\n}'), srv.address().port);
  assert.equal(nx.ok, false);
  assert.match(nx.reason, /rcode 3/);
  srv.close();
});

test('FILE_CHECK: weight from a file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kv-file-'));
  const f = join(dir, 'w');
  writeFileSync(f, '3\n');
  const r = parse(
    `track_file tf {\n file ${f}\n}\nvirtual_server 127.0.0.1 80 {\n real_server 127.0.0.1 80 {\n  weight 10\n  FILE_CHECK {\n   track_file tf\n   weight 2\n   dynamic\n  }\n }\n}`,
  );
  assert.equal(r.usable, true, JSON.stringify(r.diagnostics));
  const c = createChecker(r.config!.virtualServers[0].realServers[0].checkers[0], io, r.config!);
  const res = await c.run({ address: '127.0.0.1', port: 80, weight: 10 }, new AbortController().signal);
  assert.deepEqual([res.ok, res.weight], [true, 16]);
});
