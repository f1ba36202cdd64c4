import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { test } from 'node:test';
import { ProxyDataPlane } from '../../src/dataplane/proxy/proxy.js';
import { proxyV1, proxyV2 } from '../../src/dataplane/proxy/proxy-protocol.js';
import { VirtualServerTable } from '../../src/lb/table.js';
import type { ServiceKey } from '../../src/lb/types.js';
import { SystemClock } from '../../src/util/clock.js';

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return p;
}

/** A TCP echo server that prefixes replies with its name. */
async function echo(name: string): Promise<{ server: net.Server; port: number; sockets: Set<net.Socket> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('data', (d) => s.write(`${name}:${d}`));
    s.on('end', () => s.end(`${name}:bye`));
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as net.AddressInfo).port, sockets };
}

async function setup(scheduler = 'rr', protocol: 'tcp' | 'udp' = 'tcp', ops = false) {
  const table = new VirtualServerTable(new SystemClock(), { expireNodestConn: true });
  const dp = new ProxyDataPlane(table, { connectTimeoutMs: 500 });
  const port = await freePort();
  const key: ServiceKey = { kind: 'addr', protocol, family: 4, address: '127.0.0.1', port };
  const op = { op: 'add-service' as const, key, params: { scheduler, schedFlags: [], ops } };
  assert.ok(table.apply(op).ok);
  await dp.apply([op]);
  await new Promise((r) => setTimeout(r, 50));
  return { table, dp, key, port };
}

function exchange(port: number, payload: string, halfClose = true): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    let got = '';
    c.on('data', (d) => (got += d));
    c.on('end', () => {
      c.end();
      resolve(got);
    });
    c.on('error', reject);
    c.write(payload, () => {
      if (halfClose) c.end();
    });
  });
}

test('TCP: forwards round robin, passes half-close both ways, accounts bytes', async () => {
  const { table, dp, key, port } = await setup();
  const a = await echo('A');
  const b = await echo('B');
  for (const s of [a, b]) {
    const op = {
      op: 'add-dest' as const,
      key,
      dest: { address: '127.0.0.1', port: s.port },
      params: { forward: 'masq' as const, weight: 1, uThreshold: 0, lThreshold: 0 },
    };
    table.apply(op);
  }
  // the client half-closes after its request and must still get the whole reply
  const r1 = await exchange(port, 'hi');
  const r2 = await exchange(port, 'yo');
  assert.deepEqual([r1, r2].sort(), ['A:hiA:bye', 'B:yoB:bye']);
  await new Promise((r) => setTimeout(r, 50));
  const st = table.snapshot().services[0];
  assert.equal(st.stats.conns, 2);
  assert.equal(st.stats.inBytes, 4);
  assert.equal(st.stats.outBytes, 'A:hiA:byeB:yoB:bye'.length);
  assert.ok(st.dests.every((d) => d.activeConns === 0 && d.inactConns === 0));
  await dp.stop(100);
  a.server.close();
  b.server.close();
});

test('TCP: no destination closes the client cleanly and is counted', async () => {
  const { dp, port } = await setup();
  const r = await exchange(port, 'x', false);
  assert.equal(r, '');
  assert.equal(dp.snapshot().noDestination, 1);
  await dp.stop(100);
});

test('TCP: a refusing real server gives the client a prompt close and counts a connect failure', async () => {
  const { table, dp, key, port } = await setup();
  const dead = await freePort();
  table.apply({
    op: 'add-dest',
    key,
    dest: { address: '127.0.0.1', port: dead },
    params: { forward: 'masq', weight: 1, uThreshold: 0, lThreshold: 0 },
  });
  const t0 = Date.now();
  const r = await exchange(port, 'x', false).catch(() => '');
  assert.equal(r, '');
  assert.ok(Date.now() - t0 < 1000);
  assert.equal(dp.snapshot().connectFailures, 1);
  await dp.stop(100);
});

test('TCP: established connections count active; removing the real server closes them (expire_nodest_conn)', async () => {
  const { table, dp, key, port } = await setup();
  const a = await echo('A');
  const dest = { address: '127.0.0.1', port: a.port };
  table.apply({ op: 'add-dest', key, dest, params: { forward: 'masq', weight: 1, uThreshold: 0, lThreshold: 0 } });
  const c = net.connect({ port, host: '127.0.0.1' });
  await new Promise((r) => c.once('connect', r));
  c.write('ping');
  await new Promise((r) => c.once('data', r));
  assert.equal(table.snapshot().services[0].dests[0].activeConns, 1);
  const closed = new Promise((r) => c.once('close', r));
  table.apply({ op: 'del-dest', key, dest });
  await closed;
  await dp.stop(100);
  a.server.close();
});

test('TCP: back-pressure: a slow reader does not make the proxy buffer without bound', async () => {
  const { table, dp, key, port } = await setup();
  const chunk = Buffer.alloc(1 << 20, 120);
  let sent = 0;
  const big = net.createServer((s) => {
    const pump = () => {
      while (sent < 256 << 20 && s.write(chunk)) sent += chunk.length;
    };
    s.on('drain', pump);
    s.on('error', () => {});
    pump();
  });
  await new Promise<void>((r) => big.listen(0, '127.0.0.1', r));
  table.apply({
    op: 'add-dest',
    key,
    dest: { address: '127.0.0.1', port: (big.address() as net.AddressInfo).port },
    params: { forward: 'masq', weight: 1, uThreshold: 0, lThreshold: 0 },
  });
  const c = net.connect({ port, host: '127.0.0.1' });
  c.pause(); // a reader that never reads
  await new Promise((r) => setTimeout(r, 700));
  // the server could only push what fits in socket buffers plus one chunk in the proxy
  assert.ok(sent < 64 << 20, `server pushed ${sent >> 20} MiB into a paused client`);
  c.destroy();
  await dp.stop(100);
  big.close();
});

test('UDP: per-client flows, replies relayed back, counted', async () => {
  const { table, dp, key, port } = await setup('rr', 'udp');
  const rs = dgram.createSocket('udp4');
  rs.on('message', (m, r) => rs.send(`pong:${m}`, r.port, r.address));
  await new Promise<void>((r) => rs.bind(0, '127.0.0.1', () => r()));
  table.apply({
    op: 'add-dest',
    key,
    dest: { address: '127.0.0.1', port: rs.address().port },
    params: { forward: 'masq', weight: 1, uThreshold: 0, lThreshold: 0 },
  });
  const cl = dgram.createSocket('udp4');
  const reply = new Promise<string>((r) => cl.once('message', (m) => r(String(m))));
  cl.send('ping', port, '127.0.0.1');
  assert.equal(await reply, 'pong:ping');
  const d = table.snapshot().services[0].dests[0];
  assert.equal(d.inactConns, 1, 'a UDP flow counts as InActConn');
  assert.equal(table.connections()[0].state, 'UDP');
  cl.close();
  rs.close();
  await dp.stop(100);
});

test('a service on an address that is not local waits for it instead of failing', async () => {
  const table = new VirtualServerTable(new SystemClock());
  const dp = new ProxyDataPlane(table, { bindRetryMs: 100 });
  const key: ServiceKey = { kind: 'addr', protocol: 'tcp', family: 4, address: '198.18.254.254', port: 8080 };
  table.apply({ op: 'add-service', key, params: { scheduler: 'rr', schedFlags: [], ops: false } });
  await dp.apply([{ op: 'add-service', key, params: { scheduler: 'rr', schedFlags: [], ops: false } }]);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(dp.snapshot().listeners[0].state, 'waiting-for-address');
  await dp.stop(50);
});

test('PROXY protocol headers are byte-exact', () => {
  const c = { address: '192.0.2.1', port: 56324 };
  const l = { address: '198.18.0.100', port: 443 };
  assert.equal(proxyV1(c, l).toString(), 'PROXY TCP4 192.0.2.1 198.18.0.100 56324 443\r\n');
  assert.equal(
    proxyV2(c, l).toString('hex'),
    `0d0a0d0a000d0a515549540a2111000c${'c0000201'}${'c6120064'}${(56324).toString(16).padStart(4, '0')}01bb`,
  );
  assert.equal(proxyV2({ address: '2001:db8::1', port: 1 }, { address: '2001:db8::2', port: 2 }).length, 16 + 36);
});
