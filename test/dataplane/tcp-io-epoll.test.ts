/**
 * The proxy's TCP tests (tcp.test.ts, lb-integration.test.ts, poller.test.ts) on the epoll backend
 * (KEEPVS_PROXY_IO=epoll), whatever the default is; tcp.test.ts alone runs on the default.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

process.env.KEEPVS_PROXY_IO = 'epoll';
const { processPoller } = await import('../../src/dataplane/proxy/poller.js');
const { loadLibc } = await import('../../src/os/libc.js');
await import('./tcp.test.js');
await import('./lb-integration.test.js');
await import('./poller.test.js');

test('these tests ran on the epoll backend', () => {
  const libc = loadLibc();
  assert.ok(libc);
  const p = processPoller(libc);
  assert.equal(p.backend, 'epoll');
  // no ring was ever opened
  assert.equal(p.enters, 0);
});
