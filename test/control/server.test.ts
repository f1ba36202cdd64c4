import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { controlRequest, startControlServer } from '../../src/control/server.js';
import type { TableSnapshot } from '../../src/lb/types.js';

// ~200 KB per response: a client that never reads would pile these up in the daemon
const big = { services: [], timeouts: { tcp: 900, tcpfin: 120, udp: 300 }, pad: 'x'.repeat(200_000) };

test('a keepvsadm client that never reads is not answered without bound, and is dropped', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kv-ctl-'));
  const path = join(dir, 'c.sock');
  let answered = 0;
  const server = await startControlServer(
    path,
    {
      snapshot: () => {
        answered++;
        return big as unknown as TableSnapshot;
      },
      connections: () => [],
      apply: async () => [],
    },
    { maxPendingBytes: 4 << 20, stallMs: 400, maxClients: 2 },
  );
  try {
    const hog = net.connect(path);
    hog.on('error', () => {});
    await new Promise<void>((r) => hog.once('connect', () => r()));
    hog.pause(); // never reads
    const line = `${JSON.stringify({ v: 1, cmd: 'snapshot' })}\n`;
    hog.write(line.repeat(2000)); // 2000 requests = 400 MB of answers if all were queued
    // (a paused client does not see its end of the socket close: watch the server's counter)
    for (let i = 0; i < 50 && server.stats.slowClientsDropped === 0; i++) await new Promise((r) => setTimeout(r, 100));
    hog.destroy();
    assert.ok(answered < 100, `answered ${answered} of 2000 requests from a client that never reads`);
    assert.equal(server.stats.slowClientsDropped, 1);
    // others are still served
    const r = await controlRequest(path, { v: 1, cmd: 'snapshot' });
    assert.equal(r.ok, true);
    assert.equal(server.stats.clients <= 1, true);
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('clients beyond the limit are refused with an error, and counted', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kv-ctl-'));
  const path = join(dir, 'c.sock');
  const server = await startControlServer(
    path,
    { snapshot: () => ({ services: [] }) as unknown as TableSnapshot, connections: () => [], apply: async () => [] },
    { maxPendingBytes: 1 << 20, stallMs: 5000, maxClients: 1 },
  );
  const idle = net.connect(path);
  try {
    await new Promise<void>((r) => idle.once('connect', () => r()));
    await new Promise((r) => setTimeout(r, 50));
    const r = await controlRequest(path, { v: 1, cmd: 'snapshot' });
    assert.deepEqual(r, { ok: false, error: 'too many keepvsadm clients connected' });
    assert.equal(server.stats.clientsRefused, 1);
  } finally {
    idle.destroy();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
