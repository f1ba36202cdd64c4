import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { test } from 'node:test';
import { ProxyDataPlane } from '../../src/dataplane/proxy/proxy-plane.js';
import { type ServiceKey, serviceId } from '../../src/lb/types.js';
import { FakeTable } from './fake-table.js';
import { DEST_PARAMS, waitFor } from './helpers.js';

async function udpEcho(tag: string) {
  const s = dgram.createSocket('udp4');
  const seen: string[] = [];
  s.on('message', (m, r) => {
    seen.push(`${r.port}:${m}`);
    s.send(`${tag}:${m}`, r.port, r.address);
  });
  s.bind(0, '127.0.0.1');
  await once(s, 'listening');
  return { s, port: s.address().port, seen, close: () => s.close() };
}

async function client() {
  const c = dgram.createSocket('udp4');
  c.bind(0, '127.0.0.1');
  await once(c, 'listening');
  const got: string[] = [];
  c.on('message', (m) => got.push(String(m)));
  return { c, got };
}

async function setup(ports: number[], ops = false) {
  const key: ServiceKey = { kind: 'addr', protocol: 'udp', family: 4, address: '127.0.0.1', port: 0 };
  const table = new FakeTable();
  const dp = new ProxyDataPlane(table, { sweepMs: 20 });
  const tableOps = [
    { op: 'add-service' as const, key, params: { scheduler: 'rr', schedFlags: [], ops } },
    ...ports.map((port) => ({
      op: 'add-dest' as const,
      key,
      dest: { address: '127.0.0.1', port },
      params: DEST_PARAMS,
    })),
  ];
  for (const op of tableOps) table.apply(op);
  await dp.apply(tableOps);
  await waitFor(() => dp.snapshot().services[0]?.listener === 'listening', 2000, 'udp listening');
  return { key, table, dp, port: dp.snapshot().services[0]!.boundPort, id: serviceId(key) };
}

test('UDP: one flow per client, replies relayed back, counted, InAct as IPVS shows UDP', async () => {
  const a = await udpEcho('a');
  const b = await udpEcho('b');
  const { dp, port, table, key } = await setup([a.port, b.port]);
  const c1 = await client();
  const c2 = await client();
  try {
    for (let i = 0; i < 3; i++) {
      c1.c.send(`x${i}`, port, '127.0.0.1');
      c2.c.send(`y${i}`, port, '127.0.0.1');
    }
    await waitFor(() => c1.got.length === 3 && c2.got.length === 3, 2000, 'replies');
    // each client's datagrams stick to one real server
    assert.equal(new Set(c1.got.map((g) => g[0])).size, 1);
    assert.equal(new Set(c2.got.map((g) => g[0])).size, 1);
    assert.notEqual(c1.got[0]![0], c2.got[0]![0]);
    assert.equal(dp.snapshot().services[0]!.open, 2);
    // the counts are the table's: the proxy reported them through its handles
    const dests = table.snapshot().services[0]!.dests;
    assert.equal(
      dests.reduce((n, d) => n + d.stats.inPkts, 0),
      6,
    );
    assert.equal(
      dests.reduce((n, d) => n + d.stats.outPkts, 0),
      6,
    );
    assert.equal(
      dests.reduce((n, d) => n + d.inactConns, 0),
      2,
    );
    assert.equal(table.dest(key, a.port)!.inact + table.dest(key, b.port)!.inact, 2);
  } finally {
    await dp.stop(0);
    a.close();
    b.close();
    c1.c.close();
    c2.c.close();
  }
});

test("UDP, expire_nodest_conn off: a removed real server's flow is dropped (not moved) until it is back", async () => {
  const a = await udpEcho('a');
  const { dp, port, table, key } = await setup([a.port]);
  const c1 = await client();
  const apply = async (op: Parameters<typeof table.apply>[0]) => {
    table.apply(op);
    await dp.apply([op]);
  };
  try {
    c1.c.send('x', port, '127.0.0.1');
    await waitFor(() => c1.got.length === 1, 2000, 'reply');
    await apply({ op: 'del-dest', key, dest: { address: '127.0.0.1', port: a.port } });
    // IPVS (ip_vs_in_hook) drops the flow's datagrams while its real server is not available
    c1.c.send('y', port, '127.0.0.1');
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(
      a.seen.map((x) => x.split(':')[1]),
      ['x'],
    );
    assert.equal(dp.snapshot().services[0]!.open, 1, 'the flow is kept (until it expires)');
    await apply({ op: 'add-dest', key, dest: { address: '127.0.0.1', port: a.port }, params: DEST_PARAMS });
    c1.c.send('z', port, '127.0.0.1');
    await waitFor(() => c1.got.length === 2, 2000, 'reply once back');
    assert.deepEqual(
      a.seen.map((x) => x.split(':')[1]),
      ['x', 'z'],
    );
  } finally {
    await dp.stop(0);
    a.close();
    c1.c.close();
  }
});

test('UDP flows expire after the table UDP timeout', async () => {
  const a = await udpEcho('a');
  const { dp, port, table } = await setup([a.port]);
  table.timeouts.udp = 150;
  const c1 = await client();
  try {
    c1.c.send('x', port, '127.0.0.1');
    await waitFor(() => c1.got.length === 1, 2000, 'reply');
    assert.equal(dp.snapshot().services[0]!.open, 1);
    await waitFor(() => dp.snapshot().services[0]!.open === 0, 2000, 'flow expired');
    assert.equal(table.closed, 1);
    // a new datagram opens a new flow (a new entry in the table)
    c1.c.send('y', port, '127.0.0.1');
    await waitFor(() => c1.got.length === 2, 2000, 'second reply');
    assert.equal(table.snapshot().services[0]!.dests[0]!.stats.conns, 2);
  } finally {
    await dp.stop(0);
    a.close();
    c1.c.close();
  }
});

test('UDP ops: every datagram is scheduled on its own, replies still come back', async () => {
  const a = await udpEcho('a');
  const b = await udpEcho('b');
  const { dp, port, table } = await setup([a.port, b.port], true);
  const c1 = await client();
  try {
    for (let i = 0; i < 4; i++) c1.c.send(`p${i}`, port, '127.0.0.1');
    await waitFor(() => c1.got.length === 4, 2000, 'replies');
    assert.deepEqual(c1.got.map((g) => g[0]).sort(), ['a', 'a', 'b', 'b']);
    assert.equal(a.seen.length, 2);
    assert.equal(b.seen.length, 2);
    // each packet's entry is closed at once
    assert.equal(table.closed, 4);
    assert.equal(
      table.snapshot().services[0]!.dests.reduce((n, d) => n + d.stats.conns, 0),
      4,
    );
  } finally {
    await dp.stop(0);
    a.close();
    b.close();
    c1.c.close();
  }
});

test('UDP with no destination drops and counts', async () => {
  const { dp, port } = await setup([]);
  const c1 = await client();
  try {
    c1.c.send('x', port, '127.0.0.1');
    await waitFor(() => dp.snapshot().services[0]!.noDest === 1, 2000, 'noDest');
    assert.equal(dp.snapshot().services[0]!.open, 0);
  } finally {
    await dp.stop(0);
    c1.c.close();
  }
});
