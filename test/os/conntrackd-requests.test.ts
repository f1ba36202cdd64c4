/**
 * conntrackd's client commands sent straight to its UNIX socket (src/os/conntrackd.ts): a
 * takeover's commit no longer costs a process. The request numbers are read off the installed
 * binary (they changed between conntrack-tools releases); no daemon is needed for either test.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { endianness, tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { CONNTRACKD, conntrackdRequest, learnRequestCodes } from '../../src/os/conntrackd.js';
import { ChildProcessRunner } from '../../src/os/process-runner.js';

const conf = (socket: string, dir: string) => `Sync {
  Mode FTFW {
  }
  Multicast {
    IPv4_address 225.0.0.50
    Group 3780
    IPv4_interface 127.0.0.1
    Interface lo
  }
}
General {
  LockFile ${join(dir, 'conntrackd.lock')}
  UNIX {
    Path ${socket}
  }
}
`;

test('a request is one native int on the socket, done when conntrackd closes it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kv-ctd-'));
  try {
    const socket = join(dir, 'ctl');
    const got: Buffer[] = [];
    const server = createServer((c) => {
      c.on('data', (d) => {
        got.push(d);
        c.end('Committed 3 new entries\n');
      });
    });
    await new Promise<void>((r) => server.listen(socket, () => r()));
    assert.equal(await conntrackdRequest(socket, 46), undefined);
    server.close();
    const b = Buffer.concat(got);
    assert.equal(b.length, 4);
    assert.equal(endianness() === 'LE' ? b.readInt32LE(0) : b.readInt32BE(0), 46);
    // no daemon there: the reason, not a hang
    assert.match((await conntrackdRequest(join(dir, 'none'), 46, 2000)) ?? '', /ENOENT|ECONNREFUSED/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the request numbers are learnt from the installed conntrackd, and the probe leaves nothing behind', {
  skip: !existsSync(CONNTRACKD) && 'needs Debian conntrackd',
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kv-ctd-'));
  try {
    const socket = join(dir, 'conntrackd.ctl');
    const codes = await learnRequestCodes(CONNTRACKD, new ChildProcessRunner(), dir, conf(socket, dir), socket);
    const flags = ['-c', '-f', '-R', '-B', '-t', '-n'] as const;
    for (const f of flags) assert.ok(Number.isInteger(codes[f]), `${f}: ${JSON.stringify(codes)}`);
    assert.equal(new Set(flags.map((f) => codes[f])).size, flags.length, 'one number per command');
    assert.deepEqual(readdirSync(dir), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
