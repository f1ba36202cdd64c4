/**
 * The proxy's TCP tests (tcp.test.ts, lb-integration.test.ts, poller.test.ts) on the uring backend
 * (KEEPVS_PROXY_IO=uring), whatever the default is; tcp.test.ts alone runs on the default.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

process.env.KEEPVS_PROXY_IO = 'uring';
const { processPoller } = await import('../../src/dataplane/proxy/poller.js');
const { loadLibc } = await import('../../src/os/libc.js');
await import('./tcp.test.js');
await import('./lb-integration.test.js');
await import('./poller.test.js');

test('these tests ran on the uring backend', () => {
  const libc = loadLibc();
  assert.ok(libc);
  const p = processPoller(libc);
  assert.equal(p.backend, 'uring');
  // its reads and sends went through the ring
  assert.ok(p.enters > 100, `${p.enters} io_uring_enter calls`);
});

test('a ring that breaks under traffic: the batch fails without losing bytes, the process goes on on epoll, said once', async () => {
  const { ProxyDataPlane } = await import('../../src/dataplane/proxy/proxy-plane.js');
  const { FakeTable } = await import('./fake-table.js');
  const { addOps, connect, readAll, realServer, tcpKey, waitFor } = await import('./helpers.js');
  const libc = loadLibc()!;
  const p = processPoller(libc);
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(w.message);
  process.on('warning', onWarning);
  const a = await realServer((s) => s.pipe(s));
  const table = new FakeTable();
  const dp = new ProxyDataPlane(table, { sweepMs: 20 });
  try {
    const ops = addOps(tcpKey(), [a.port]);
    for (const op of ops) table.apply(op);
    await dp.apply(ops);
    await waitFor(() => dp.snapshot().services[0]?.listener === 'listening', 2000, 'listening');
    const port = dp.snapshot().services[0]!.boundPort;
    const c = await connect(port);
    c.write('before');
    await new Promise((r) => c.once('data', r));
    assert.equal(p.backend, 'uring');
    // the ring's fd goes away under the poller (its mapping stays): the next submit fails
    libc.close((p as unknown as { io: { ringFd: number } }).io.ringFd);
    c.write('after');
    c.end();
    assert.equal(String(await readAll(c)), 'after');
    await waitFor(() => p.backend === 'epoll', 2000, 'epoll after the failure');
    const said = warnings.filter((w) => /io_uring batch failed .*: this process goes on on epoll/.test(w));
    assert.equal(said.length, 1, warnings.join('\n'));
    const c2 = await connect(port);
    c2.end('again');
    assert.equal(String(await readAll(c2)), 'again');
  } finally {
    process.off('warning', onWarning);
    await dp.stop(0);
    await a.close();
  }
});
