import assert from 'node:assert/strict';
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { constants } from 'node:os';
import { test } from 'node:test';
import { processPoller } from '../../src/dataplane/proxy/poller.js';
import { ProxyDataPlane } from '../../src/dataplane/proxy/proxy-plane.js';
import { decodeSockaddr, encodeSockaddr, errnoName, loadLibc } from '../../src/os/libc.js';
import { FakeTable } from './fake-table.js';
import { addOps, tcpKey, waitFor } from './helpers.js';

test('sockaddr encoding round-trips IPv4 and IPv6 (compact form, as Node prints it), with scope ids', () => {
  for (const [address, port] of [
    ['127.0.0.1', 80],
    ['10.1.2.3', 65535],
    ['::1', 443],
    ['2001:db8::8:1', 8080],
  ] as const) {
    const b = encodeSockaddr(address, port);
    assert.equal(b.length, address.includes(':') ? 28 : 16);
    assert.deepEqual(decodeSockaddr(b), { address, port });
  }
  // a link-local real server carries its interface as sin6_scope_id
  const zoned = encodeSockaddr('fe80::1%7', 80);
  assert.equal(zoned.readUInt32LE(24), 7);
  assert.deepEqual(decodeSockaddr(zoned), { address: 'fe80::1', port: 80 });
  assert.equal(errnoName(constants.errno.EADDRINUSE), 'EADDRINUSE');
});

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

test("Node's own sockets and timers are not held back while the data plane waits in epoll", async () => {
  const libc = loadLibc();
  assert.ok(libc, 'libc through koffi');
  const dp = new ProxyDataPlane(new FakeTable(), {});
  const echo = net.createServer((s) => s.pipe(s));
  try {
    await dp.apply(addOps(tcpKey(), []));
    const poller = processPoller(libc);
    await waitFor(() => poller.nested && poller.watching > 0, 2000, "libuv's epoll fd in the set");
    // an echo served by libuv in this process: each round trip needs libuv's loop twice; were
    // libuv's fd not in the set, each would wait for the poller's timeout (10 ms)
    echo.listen(0, '127.0.0.1');
    await once(echo, 'listening');
    const c = net.connect((echo.address() as AddressInfo).port, '127.0.0.1');
    await once(c, 'connect');
    c.setNoDelay(true);
    const rtts: number[] = [];
    for (let i = 0; i < 30; i++) {
      const t0 = performance.now();
      c.write('x');
      await once(c, 'data');
      rtts.push(performance.now() - t0);
    }
    c.destroy();
    assert.ok(median(rtts) < 3, `median echo round trip ${median(rtts).toFixed(2)} ms`);
    // timers are late by at most the poller's timeout
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, 30));
    const late = performance.now() - t0 - 30;
    assert.ok(late < 25, `timer ${late.toFixed(1)} ms late`);
  } finally {
    await dp.stop(0);
    echo.close();
  }
  // nothing registered: the poller stops driving and the process idles in libuv alone
  assert.equal(processPoller(libc).watching, 0);
});
