/**
 * A proxy I/O backend keepvs cannot use (KEEPVS_PROXY_IO with an unknown value) stops it at start
 * with the reason and exit status 70, before it writes its pid file: nothing is left behind.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

test('KEEPVS_PROXY_IO that cannot be used: exit 70 with the reason, no pid file left', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kv-proxy-io-'));
  try {
    const conf = join(dir, 'keepalived.conf');
    writeFileSync(conf, 'virtual_server 127.0.0.1 18080 {\n  protocol TCP\n  real_server 127.0.0.1 18081 {\n  }\n}\n');
    const pid = join(dir, 'keepvs.pid');
    const r = spawnSync(
      process.execPath,
      [
        join(process.cwd(), 'bin', 'keepvs.js'),
        ...['-n', '-l', '-f', conf, '--dataplane=proxy', '--socket', join(dir, 'keepvs.sock')],
        ...['-p', pid, '-c', join(dir, 'c.pid'), '-r', join(dir, 'r.pid')],
      ],
      { env: { ...process.env, KEEPVS_PROXY_IO: 'bogus' }, encoding: 'utf8', timeout: 20000 },
    );
    assert.equal(r.status, 70, `${r.stdout}${r.stderr}`);
    assert.match(`${r.stdout}${r.stderr}`, /KEEPVS_PROXY_IO=bogus: expected epoll, uring or auto/);
    assert.equal(existsSync(pid), false, 'the pid file was left behind');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
