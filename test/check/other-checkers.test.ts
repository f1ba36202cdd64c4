import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { targetOf } from '../../src/check/check-manager.js';
import { parseTrackValue } from '../../src/check/file.js';
import { createChecker } from '../../src/check/index.js';
import type { CheckPorts } from '../../src/check/types.js';
import { matchesReply } from '../../src/check/udp.js';
import { decodeQuestion } from '../../src/codec/dns.js';
import type {
  Checker,
  DnsCheck,
  FileCheck,
  MiscCheck,
  PingCheck,
  SmtpCheck,
  UdpCheck,
} from '../../src/config/model.js';
import { NodeDialer } from '../../src/os/dialer.js';
import { NodeFileReader } from '../../src/os/file-reader.js';
import { ChildProcessRunner } from '../../src/os/process-runner.js';
import { config, loc, realServer, timing, virtualServer } from './fixtures.js';
import { close, deadPort, listen, rawServer } from './servers.js';

const ports: CheckPorts = { dialer: new NodeDialer(), runner: new ChildProcessRunner(), files: new NodeFileReader() };
const base = { loc, alpha: false, logAllFailures: false, ...timing };
const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanups) await c();
});

async function run(cfg: Checker, port: number, ms = 2000, address = '127.0.0.1', family: 4 | 6 = 4, rsWeight = 1) {
  const rs = realServer(port, [cfg], { address, family, weight: rsWeight });
  const vs = virtualServer([rs]);
  const conf = config([vs], {
    trackFiles: [
      { name: 'tf', file: fileDir ? join(fileDir, 'w') : '/nonexistent', weight: 1, weightReverse: false, loc },
    ],
  });
  return createChecker(cfg, ports, conf).run(targetOf(vs, rs, cfg), AbortSignal.timeout(ms));
}
let fileDir: string | undefined;

describe('MISC_CHECK', () => {
  const misc = (argv: string[], over: Partial<MiscCheck> = {}): MiscCheck => ({
    type: 'MISC_CHECK',
    ...base,
    miscPath: { command: argv.join(' '), argv, loc },
    miscTimeout: 2,
    miscDynamic: false,
    ...over,
  });
  it('exit 0 is up, non-zero is down', async () => {
    assert.equal((await run(misc(['/bin/true']), 80)).up, true);
    const r = await run(misc(['/bin/sh', '-c', 'exit 3']), 80);
    assert.equal(r.up, false);
    assert.match(r.reason, /exit status 3/);
  });
  it('misc_dynamic: 1 down, 2..255 up with weight code-2, 0 up with the weight unchanged', async () => {
    const dyn = (code: number) => misc(['/bin/sh', '-c', `exit ${code}`], { miscDynamic: true });
    assert.equal((await run(dyn(1), 80)).up, false);
    assert.deepEqual(
      { up: (await run(dyn(12), 80)).up, weight: (await run(dyn(12), 80)).weight },
      { up: true, weight: 10 },
    );
    const zero = await run(dyn(0), 80, 2000, '127.0.0.1', 4, 7);
    assert.deepEqual([zero.up, zero.weight], [true, undefined]);
  });
  it('kills a hung script at misc_timeout and does not run arguments through a shell', async () => {
    const t0 = performance.now();
    const r = await run(misc(['/bin/sleep', '30'], { miscTimeout: 0.3 }), 80, 5000);
    assert.equal(r.up, false);
    assert.match(r.reason, /timed out/);
    assert.ok(performance.now() - t0 < 3000);
    const dir = mkdtempSync(join(tmpdir(), 'kv-misc-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const r2 = await run(misc(['/bin/echo', `$(touch ${dir}/pwned)`]), 80);
    assert.equal(r2.up, true);
    assert.equal(existsSync(join(dir, 'pwned')), false, 'no shell expansion');
  });
  it('reports a missing program', async () => {
    const r = await run(misc(['/nonexistent/check']), 80);
    assert.equal(r.up, false);
    assert.match(r.reason, /could not start/);
  });
});

describe('SMTP_CHECK', () => {
  const smtp: SmtpCheck = { type: 'SMTP_CHECK', ...base, heloName: 'keepvs.test' };
  async function smtpServer(banner: string, heloReply = '250 ok\r\n', quitReply = '221 bye\r\n') {
    const lines: string[] = [];
    const srv = rawServer((s) => {
      s.write(banner);
      let buf = '';
      s.on('data', (d) => {
        buf += d.toString();
        while (buf.includes('\r\n')) {
          const line = buf.slice(0, buf.indexOf('\r\n'));
          buf = buf.slice(buf.indexOf('\r\n') + 2);
          lines.push(line);
          if (line.startsWith('HELO')) s.write(heloReply);
          if (line === 'QUIT' && quitReply) s.end(quitReply);
        }
      });
    }, false);
    cleanups.push(() => close(srv));
    return { port: await listen(srv as net.Server), lines };
  }
  it('banner 220 (multi-line too), HELO helo_name answered 250, QUIT', async () => {
    const { port, lines } = await smtpServer('220-first\r\n220 mx ready\r\n');
    const r = await run(smtp, port);
    assert.equal(r.up, true, r.reason);
    await new Promise((res) => setTimeout(res, 50));
    assert.deepEqual(lines, ['HELO keepvs.test', 'QUIT']);
  });
  it('fails on a 554 banner, a refused HELO, garbage, silence and refusal', async () => {
    assert.equal((await run(smtp, (await smtpServer('554 go away\r\n')).port)).up, false);
    assert.equal((await run(smtp, (await smtpServer('220 ok\r\n', '500 no\r\n')).port)).up, false);
    assert.equal((await run(smtp, (await smtpServer('HTTP/1.0 200 OK\r\n')).port)).up, false);
    assert.equal((await run(smtp, (await smtpServer('')).port, 300)).up, false);
    assert.equal((await run(smtp, (await smtpServer('220 ok\r\n', '250 ok\r\n', '')).port, 300)).up, false);
    assert.equal((await run(smtp, await deadPort())).up, false);
  });
});

/**
 * A tiny DNS responder (RFC 1035 §4.1): `good.test` gets an A answer, `empty.test` NOERROR with
 * no answer, anything else NXDOMAIN. `garbage` first sends junk and a reply with a wrong id.
 */
async function dnsServer(mode: 'answer' | 'garbage' | 'silent'): Promise<number> {
  const sock = dgram.createSocket('udp4');
  sock.on('message', (q, rinfo) => {
    if (mode === 'silent') return;
    const parsed = decodeQuestion(q);
    if (!parsed.ok) return;
    const name = parsed.value.question.name;
    const good = name === 'good.test';
    const rcode = good || name === 'empty.test' ? 0 : 3;
    const question = q.subarray(12);
    const head = Buffer.alloc(12);
    q.copy(head, 0, 0, 2);
    head.writeUInt16BE(0x8180 | rcode, 2);
    head.writeUInt16BE(1, 4);
    head.writeUInt16BE(good ? 1 : 0, 6);
    const answer = Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1]);
    const reply = Buffer.concat(good ? [head, question, answer] : [head, question]);
    if (mode === 'garbage') {
      sock.send(Buffer.from('not dns'), rinfo.port, rinfo.address);
      const wrongId = Buffer.from(reply);
      wrongId.writeUInt16BE((q.readUInt16BE(0) + 1) & 0xffff, 0);
      sock.send(wrongId, rinfo.port, rinfo.address);
      const query = Buffer.from(q); // QR clear: a query, not a reply
      sock.send(query, rinfo.port, rinfo.address);
      setTimeout(() => sock.send(reply, rinfo.port, rinfo.address), 20);
      return;
    }
    sock.send(reply, rinfo.port, rinfo.address);
  });
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
  cleanups.push(() => {
    sock.close();
  });
  return sock.address().port;
}

describe('DNS_CHECK', () => {
  const dns = (name: string, over: Partial<DnsCheck> = {}): DnsCheck => ({
    type: 'DNS_CHECK',
    ...base,
    queryType: 'A',
    name,
    ...over,
  });
  it('passes on RCODE 0 (with or without answers), fails on NXDOMAIN and silence', async () => {
    const port = await dnsServer('answer');
    const r = await run(dns('good.test'), port);
    assert.equal(r.up, true, r.reason);
    assert.match(r.reason, /1 answers/);
    assert.equal((await run(dns('empty.test', { queryType: 'SOA' }), port)).up, true);
    const nx = await run(dns('bad.test'), port);
    assert.equal(nx.up, false);
    assert.match(nx.reason, /rcode = 3 NXDOMAIN/);
    const r2 = await run(dns('good.test', { connectTimeout: 0.3 }), await dnsServer('silent'));
    assert.equal(r2.up, false);
    assert.match(r2.reason, /timeout/);
  });
  it('ignores junk, wrong ids and queries, and takes the real reply', async () => {
    const r = await run(dns('good.test'), await dnsServer('garbage'));
    assert.equal(r.up, true, r.reason);
  });
  it('fails on ICMP port unreachable and on an unencodable name', async () => {
    assert.match((await run(dns('good.test'), await deadPort())).reason, /ECONNREFUSED/);
    assert.match((await run(dns('a..b'), 53)).reason, /cannot encode/);
  });
});

describe('UDP_CHECK', () => {
  const udp = (over: Partial<UdpCheck> = {}): UdpCheck => ({
    type: 'UDP_CHECK',
    ...base,
    connectTimeout: 0.3,
    payload: 'cafe',
    minReplyLength: 0,
    maxReplyLength: 255,
    ...over,
  });
  async function echo(prefix: string): Promise<number> {
    const sock = dgram.createSocket('udp4');
    sock.on('message', (m, r) => sock.send(Buffer.concat([Buffer.from(prefix, 'hex'), m]), r.port, r.address));
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
    cleanups.push(() => {
      sock.close();
    });
    return sock.address().port;
  }
  it('matches require_reply with X wildcards and length bounds', async () => {
    const port = await echo('beef');
    assert.equal((await run(udp({ requireReply: 'beefcafe' }), port)).up, true);
    assert.equal((await run(udp({ requireReply: 'bXXfcXfe' }), port)).up, true);
    assert.equal((await run(udp({ requireReply: 'dead' }), port)).up, false);
    assert.equal((await run(udp({ requireReply: 'beef', maxReplyLength: 3 }), port)).up, false);
    assert.equal((await run(udp({ requireReply: 'beef', minReplyLength: 5 }), port)).up, false);
    // as check_udp_reply: only the shorter of reply and pattern is compared
    assert.equal(matchesReply(Buffer.from([0xab]), 'abcd'), true);
    assert.equal(matchesReply(Buffer.from([0xac]), 'abcd'), false);
  });
  it('fails on ICMP port unreachable; without require_reply silence is up', async () => {
    const r = await run(udp(), await deadPort());
    assert.equal(r.up, false);
    assert.match(r.reason, /ECONNREFUSED/);
    const quiet = dgram.createSocket('udp4');
    await new Promise<void>((res) => quiet.bind(0, '127.0.0.1', res));
    cleanups.push(() => {
      quiet.close();
    });
    assert.equal((await run(udp(), quiet.address().port)).up, true);
    assert.equal((await run(udp({ requireReply: 'XX' }), quiet.address().port)).up, false);
  });
});

describe('PING_CHECK', () => {
  const ping: PingCheck = { type: 'PING_CHECK', ...base };
  it('echoes 127.0.0.1 and ::1', async (t) => {
    const r = await run(ping, 0);
    if (!r.up && /KV_PING_UNAVAILABLE/.test(r.reason)) {
      t.skip('no ICMP socket (not root, ping_group_range)');
      return;
    }
    assert.equal(r.up, true, r.reason);
    const r6 = await run(ping, 0, 2000, '::1', 6);
    assert.equal(r6.up, true, r6.reason);
    const ac = new AbortController();
    ac.abort();
    const rs = realServer(0, [ping]);
    const vs = virtualServer([rs]);
    assert.equal((await createChecker(ping, ports, config([vs])).run(targetOf(vs, rs, ping), ac.signal)).up, false);
  });
});

describe('FILE_CHECK', () => {
  it('reads a weight from the tracked file', async () => {
    fileDir = mkdtempSync(join(tmpdir(), 'kv-file-'));
    const dir = fileDir;
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const fc = (over: Partial<FileCheck> = {}): FileCheck => ({
      type: 'FILE_CHECK',
      ...base,
      trackFile: 'tf',
      dynamic: true,
      weight: 0,
      weightReverse: false,
      ...over,
    });
    writeFileSync(join(dir, 'w'), '0\n');
    assert.equal((await run(fc(), 80)).up, true);
    writeFileSync(join(dir, 'w'), '3\n');
    assert.equal((await run(fc(), 80)).up, false);
    const r = await run(fc({ weight: 2 }), 80, 2000, '127.0.0.1', 4, 5);
    assert.deepEqual([r.up, r.weight], [true, 11]);
    writeFileSync(join(dir, 'w'), '-200\n');
    const neg = await run(fc({ weight: 2 }), 80);
    assert.deepEqual([neg.up, neg.weight], [true, -399], 'negative weights drain, they do not fault');
    writeFileSync(join(dir, 'w'), '0x10 trailing text');
    assert.equal((await run(fc({ weight: 1 }), 80)).weight, 17);
    writeFileSync(join(dir, 'w'), '0\n');
    assert.equal((await run(fc({ weightReverse: true }), 80)).up, false, 'weight 0 reverse: zero is down');
    rmSync(join(dir, 'w'));
    assert.equal((await run(fc(), 80)).up, true, 'a missing file reads as 0');
    assert.equal(parseTrackValue('99999999999'), undefined);
    assert.equal(parseTrackValue('017'), 15);
    assert.equal(parseTrackValue('abc'), 0);
  });
});
