/**
 * Type=notify: a daemon started with $NOTIFY_SOCKET sends READY=1 once its workers run, RELOADING=1
 * then READY=1 around a SIGHUP reload, and STOPPING=1 when stopped (sd_notify(3)); the receiver here
 * is a Unix datagram socket bound as systemd binds its own.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import type http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadLibc, NONBLOCK_CLOEXEC, SOCK_DGRAM, watchReadable } from '../../src/os/libc.js';
import { systemdNotifier, unixSockaddr } from '../../src/os/sd-notify.js';
import { freePort, httpRealServer, startDaemon, until } from '../e2e/harness.js';

const libc = loadLibc();
const skip = !libc && 'needs libc through koffi';
const dir = mkdtempSync(join(tmpdir(), 'kv-sdnotify-'));
const cleanups: (() => void)[] = [];
after(() => {
  for (const c of cleanups.reverse()) c();
  rmSync(dir, { recursive: true, force: true });
});

/** a bound AF_UNIX datagram socket and the messages it received */
function receiver(name: string): string[] {
  const l = libc!;
  const fd = l.socket(1, SOCK_DGRAM | NONBLOCK_CLOEXEC, 0);
  assert.ok(fd >= 0);
  const a = unixSockaddr(name)!;
  assert.equal(l.bind(fd, a.addr, a.len), 0, `bind ${name}`);
  const got: string[] = [];
  const buf = Buffer.alloc(4096);
  const w = watchReadable(fd, () => {
    for (;;) {
      const n = l.recv(fd, buf, buf.length, 0);
      if (n < 0) break;
      got.push(buf.subarray(0, n).toString());
    }
  });
  cleanups.push(() => {
    w.close();
    l.close(fd);
  });
  return got;
}

test('sockaddr_un for a path and for an abstract @name; bad names refused', () => {
  const p = unixSockaddr('/run/systemd/notify')!;
  assert.equal(p.len, 2 + '/run/systemd/notify'.length + 1);
  assert.equal(p.addr.readUInt16LE(0), 1);
  const a = unixSockaddr('@kv/notify')!;
  assert.equal(a.len, 2 + 1 + 'kv/notify'.length, 'abstract: leading NUL, no trailing one');
  assert.equal(a.addr[2], 0);
  assert.equal(unixSockaddr('relative/path'), undefined);
  assert.equal(unixSockaddr(`/${'x'.repeat(200)}`), undefined);
  assert.equal(systemdNotifier({}), undefined, 'no NOTIFY_SOCKET: nothing to do');
});

test('an abstract NOTIFY_SOCKET gets the datagram', { skip }, async () => {
  const name = `@keepvs-test-${process.pid}`;
  const got = receiver(name);
  assert.equal(systemdNotifier({ NOTIFY_SOCKET: name })!.notify('READY=1'), undefined);
  await until('datagram', async () => got.includes('READY=1'), 3000);
  assert.match(systemdNotifier({ NOTIFY_SOCKET: '@keepvs-nobody-listens' })!.notify('READY=1') ?? '', /ECONNREFUSED/);
});

test('the daemon: READY=1 after its workers start, RELOADING=1 + READY=1 on SIGHUP, STOPPING=1 on SIGTERM', {
  skip,
  timeout: 60000,
}, async () => {
  const sock = join(dir, 'notify.sock');
  const got = receiver(sock);
  const rsPort = await freePort();
  const rs: http.Server = await httpRealServer(rsPort, 'rs');
  cleanups.push(() => rs.close());
  process.env.NOTIFY_SOCKET = sock;
  const conf = `virtual_server 127.0.0.1 ${await freePort()} {\n  delay_loop 1\n  lvs_sched rr\n  protocol TCP\n  real_server 127.0.0.1 ${rsPort} {\n    TCP_CHECK {\n      connect_timeout 1\n    }\n  }\n}\n`;
  const d = await startDaemon(conf, [], (s) => Boolean(s.workers.find((w) => w.role === 'lvs')?.state === 'running'));
  delete process.env.NOTIFY_SOCKET;
  try {
    await until(
      'READY=1',
      async () => got.some((m) => m.split('\n').includes('READY=1')),
      15000,
      () => d.output,
    );
    const log = d.output;
    // keepalived's words and console timestamps (local time, strftime %c)
    const ts = '[A-Z][a-z]{2} [A-Z][a-z]{2} [ \\d]\\d \\d\\d:\\d\\d:\\d\\d \\d{4}: ';
    assert.match(log, new RegExp(`^${ts}Starting Keepvs v\\S+$`, 'm'));
    assert.match(log, new RegExp(`^${ts}Starting Healthcheck child process, pid=\\d+$`, 'm'));
    assert.match(log, new RegExp(`^${ts}Startup complete$`, 'm'));
    assert.ok(
      log.indexOf('lvs worker started') < log.indexOf('Startup complete'),
      `READY only once the workers run:\n${log}`,
    );
    const before = got.length;
    process.kill(d.proc.pid!, 'SIGHUP');
    await until('reload notifications', async () => got.length >= before + 2, 10000);
    const reload = got.slice(before);
    assert.match(reload[0], /^RELOADING=1\nMONOTONIC_USEC=\d+$/);
    assert.match(reload[1], /^READY=1\nSTATUS=Reloading configuration$/);
    const n = got.length;
    await d.stop();
    await until('STOPPING=1', async () => got.slice(n).includes('STOPPING=1'), 5000);
  } finally {
    await d.stop();
  }
});
