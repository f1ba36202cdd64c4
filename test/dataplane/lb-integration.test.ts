/** The proxy with lb's real table: wlc/lc under load, Active/InAct as the table reports them. */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net, { type Socket } from 'node:net';
import { test } from 'node:test';
import { ClusterDataPlane } from '../../src/dataplane/proxy/cluster.js';
import { LB_REPLICA_MODULE } from '../../src/dataplane/proxy/lb-replica.js';
import { ProxyDataPlane } from '../../src/dataplane/proxy/proxy-plane.js';
import { LbTable } from '../../src/lb/table.js';
import { serviceId, type TableOp } from '../../src/lb/types.js';
import { SystemClock } from '../../src/util/clock.js';
import { connect, DEST_PARAMS, freePort, readAll, realServer, SVC_PARAMS, tcpKey, waitFor } from './helpers.js';

const closeOnFin = (s: Socket) => s.on('end', () => s.end());

test('wlc with weights 1:3 under 40 concurrent connections: the table counts them, the proxy keeps no copy', async () => {
  const a = await realServer(closeOnFin);
  const b = await realServer(closeOnFin);
  const table = new LbTable({ clock: new SystemClock() });
  const dp = new ProxyDataPlane(table, { sweepMs: 50 });
  const key = tcpKey(await freePort());
  const ops: TableOp[] = [
    { op: 'add-service', key, params: { ...SVC_PARAMS, scheduler: 'wlc' } },
    { op: 'add-dest', key, dest: { address: '127.0.0.1', port: a.port }, params: { ...DEST_PARAMS, weight: 1 } },
    { op: 'add-dest', key, dest: { address: '127.0.0.1', port: b.port }, params: { ...DEST_PARAMS, weight: 3 } },
  ];
  assert.deepEqual(table.applyAll(ops), []);
  await dp.apply(ops);
  const clients: Socket[] = [];
  try {
    await waitFor(() => dp.snapshot().services[0]?.listener === 'listening', 2000, 'listening');
    const port = dp.snapshot().services[0]!.boundPort;
    const active = () => table.snapshot().services[0]!.dests.reduce((n, d) => n + d.activeConns, 0);
    // each connection active before the next is scheduled, as the exact 10/30 split assumes
    // (under Node 24 the next connect can be scheduled while the previous one still connects to its real server)
    for (let i = 0; i < 40; i++) {
      clients.push(await connect(port));
      await waitFor(() => active() === i + 1, 3000, `connection ${i + 1} active`);
    }
    await waitFor(() => a.sockets.size + b.sockets.size === 40, 3000, 'all connected');
    await waitFor(
      () => table.snapshot().services[0]!.dests.reduce((n, d) => n + d.activeConns, 0) === 40,
      3000,
      'active',
    );
    const byPort = (p: number) => table.snapshot().services[0]!.dests.find((d) => d.port === p)!;
    // wlc: overhead/weight equalised -> 10 and 30
    assert.equal(byPort(a.port).activeConns, 10);
    assert.equal(byPort(b.port).activeConns, 30);
    assert.equal(a.sockets.size, 10);
    // the table is the one owner of the counts: the proxy's view of the real server has no copy
    const proxyView = dp.snapshot().services[0]!.dests.find((d) => d.port === b.port)!;
    assert.equal(proxyView.activeConns, undefined);
    assert.equal(proxyView.conns, undefined);
    // half-close 10 of them: those become InAct in the table (FIN_WAIT)
    for (const c of clients.slice(0, 10)) c.end();
    // the real server answers FIN with FIN: the proxy lets go, and the entries stay in the table
    // as TIME_WAIT (InActConn) for that state's timeout, as IPVS keeps them
    await waitFor(() => dp.snapshot().services[0]!.open === 30, 3000, 'ten closed');
    await waitFor(
      () => table.snapshot().services[0]!.dests.reduce((n, d) => n + d.inactConns, 0) === 10,
      3000,
      'ten in TIME_WAIT',
    );
    const snap = table.snapshot().services[0]!.dests;
    assert.equal(
      snap.reduce((n, d) => n + d.activeConns, 0),
      30,
    );
    assert.equal(table.connections().filter((c) => c.state === 'TIME_WAIT').length, 10);
    assert.equal(
      snap.reduce((n, d) => n + d.stats.conns, 0),
      40,
    );
  } finally {
    for (const c of clients) c.destroy();
    await dp.stop(0);
    table.dispose();
    await a.close();
    await b.close();
  }
});

test('wlc with 40 sequential short requests (weights 1/1/2): closed connections stay InActConn, so the spread is 10/10/20 as in IPVS', async () => {
  const servers = [
    await realServer((s) => s.end('ok')),
    await realServer((s) => s.end('ok')),
    await realServer((s) => s.end('ok')),
  ];
  const table = new LbTable({ clock: new SystemClock() });
  const dp = new ProxyDataPlane(table, { sweepMs: 50 });
  const key = tcpKey(await freePort());
  const ops: TableOp[] = [
    { op: 'add-service', key, params: { ...SVC_PARAMS, scheduler: 'wlc' } },
    ...servers.map(
      (rs, i): TableOp => ({
        op: 'add-dest',
        key,
        dest: { address: '127.0.0.1', port: rs.port },
        params: { ...DEST_PARAMS, weight: i === 2 ? 2 : 1 },
      }),
    ),
  ];
  assert.deepEqual(table.applyAll(ops), []);
  await dp.apply(ops);
  try {
    await waitFor(() => dp.snapshot().services[0]?.listener === 'listening', 2000, 'listening');
    const port = dp.snapshot().services[0]!.boundPort;
    for (let i = 0; i < 40; i++) {
      const c = await connect(port);
      c.resume();
      c.on('end', () => c.end());
      await once(c, 'close');
      // the proxy has let go of this connection before the next one is scheduled
      await waitFor(() => dp.snapshot().services[0]!.open === 0, 2000, 'closed');
    }
    const dests = table.snapshot().services[0]!.dests;
    assert.deepEqual(
      servers.map((rs) => dests.find((d) => d.port === rs.port)!.stats.conns),
      [10, 10, 20],
    );
    assert.deepEqual(
      servers.map((rs) => dests.find((d) => d.port === rs.port)!.inactConns),
      [10, 10, 20],
    );
    assert.ok(table.connections().every((c) => c.state === 'TIME_WAIT' && c.expiresInMs > 100_000));
  } finally {
    await dp.stop(0);
    table.dispose();
    for (const rs of servers) await rs.close();
  }
});

test('half-closed connections count as InActConn in the real table', async () => {
  const a = await realServer(() => {});
  const table = new LbTable({ clock: new SystemClock() });
  const dp = new ProxyDataPlane(table, { sweepMs: 50 });
  const key = tcpKey(await freePort());
  const ops: TableOp[] = [
    { op: 'add-service', key, params: { ...SVC_PARAMS, scheduler: 'lc' } },
    { op: 'add-dest', key, dest: { address: '127.0.0.1', port: a.port }, params: DEST_PARAMS },
  ];
  table.applyAll(ops);
  await dp.apply(ops);
  try {
    await waitFor(() => dp.snapshot().services[0]?.listener === 'listening', 2000, 'listening');
    const port = dp.snapshot().services[0]!.boundPort;
    const c1 = await connect(port);
    const c2 = await connect(port);
    const d = () => table.snapshot().services[0]!.dests[0]!;
    await waitFor(() => d().activeConns === 2, 2000, 'two active');
    c1.end();
    await waitFor(() => d().activeConns === 1 && d().inactConns === 1, 2000, 'one active, one inactive');
    c1.destroy();
    c2.destroy();
  } finally {
    await dp.stop(0);
    table.dispose();
    await a.close();
  }
});

test('cluster of 2 workers with lb replicas forwards, and counts reach the primary', async () => {
  const a = await realServer((s) => s.end('ok'));
  const dp = await ClusterDataPlane.start({ workers: 2, tableModule: LB_REPLICA_MODULE, statsIntervalMs: 50 });
  const key = tcpKey(await freePort());
  try {
    await dp.apply([
      { op: 'add-service', key, params: { ...SVC_PARAMS, scheduler: 'wlc' } },
      { op: 'add-dest', key, dest: { address: '127.0.0.1', port: a.port }, params: DEST_PARAMS },
    ]);
    await waitFor(
      () => dp.snapshot().services.find((s) => s.id === serviceId(key))?.listener === 'listening',
      3000,
      'listening',
    );
    const port = dp.snapshot().services[0]!.boundPort;
    for (let i = 0; i < 10; i++) {
      const c = await connect(port);
      c.resume();
      await once(c, 'end');
      c.destroy();
    }
    // workers report every 50 ms: wait for a report that includes the last reply's bytes
    // the replicas' counts, summed once (lb/merge does the same for keepvsadm and the API)
    const total = (f: 'conns' | 'outBytes') =>
      dp.tableSnapshots().reduce((n, t) => n + (t.services[0]?.dests[0]?.stats[f] ?? 0), 0);
    await waitFor(() => total('outBytes') === 20, 3000, 'bytes counted');
    assert.equal(total('conns'), 10);
  } finally {
    await dp.stop(0);
    await a.close();
  }
});

test('cluster of 2 workers: closed connections waiting in TIME_WAIT are InActConn for every worker (u_threshold holds director-wide)', async () => {
  // one real server with u_threshold 2: two connections closed by both sides stay in the table as
  // TIME_WAIT, InActConn, and keep it OVERLOADED (ip_vs_dest_totalconns counts InAct) in whatever
  // worker forwarded them; every other worker learns them as peer load from that worker's replica
  let accepted = 0;
  const a = await realServer((s) => {
    accepted++;
    closeOnFin(s);
  });
  const dp = await ClusterDataPlane.start({ workers: 2, tableModule: LB_REPLICA_MODULE, statsIntervalMs: 50 });
  const key = tcpKey(await freePort());
  try {
    await dp.apply([
      { op: 'add-service', key, params: SVC_PARAMS },
      {
        op: 'add-dest',
        key,
        dest: { address: '127.0.0.1', port: a.port },
        params: { ...DEST_PARAMS, uThreshold: 2 },
      },
    ]);
    await waitFor(() => dp.snapshot().services[0]?.listener === 'listening', 3000, 'listening');
    for (let i = 0; i < 2; i++) {
      const c = await connect(key.port);
      c.end();
      await readAll(c);
      c.destroy();
    }
    await waitFor(() => dp.snapshot().services[0]!.open === 0, 3000, 'both closed');
    const dests = () => dp.tableSnapshots().map((t) => t.services[0]!.dests[0]!);
    await waitFor(
      () => dests().reduce((n, d) => n + d.inactConns, 0) === 2,
      3000,
      `two entries in TIME_WAIT: ${JSON.stringify(dests())}`,
    );
    await waitFor(
      () => dests().length === 2 && dests().every((d) => d.overloaded),
      3000,
      `every worker sees the server overloaded: ${JSON.stringify(dests())}`,
    );
    // whichever worker takes the next client finds no destination below its threshold (IPVS refuses it)
    const c = await connect(key.port);
    const got = await readAll(c);
    c.destroy();
    assert.equal(got.length, 0);
    assert.equal(accepted, 2);
    await waitFor(
      () => dp.tableSnapshots().reduce((n, t) => n + (t.services[0]!.noDest ?? 0), 0) === 1,
      3000,
      'refused as no destination',
    );
  } finally {
    await dp.stop(0);
    await a.close();
  }
});

for (const [scheduler, weights, expected] of [
  ['lc', [1, 1], [4, 4]],
  ['wlc', [1, 3], [2, 6]],
] as const) {
  test(`cluster of 2 workers with lb replicas: ${scheduler} balances over the whole director`, async () => {
    const servers = [await realServer(closeOnFin), await realServer(closeOnFin)];
    const dp = await ClusterDataPlane.start({ workers: 2, tableModule: LB_REPLICA_MODULE, statsIntervalMs: 50 });
    const key = tcpKey(await freePort());
    const clients: Socket[] = [];
    try {
      await dp.apply([
        { op: 'add-service', key, params: { ...SVC_PARAMS, scheduler } },
        ...servers.map(
          (s, i): TableOp => ({
            op: 'add-dest',
            key,
            dest: { address: '127.0.0.1', port: s.port },
            params: { ...DEST_PARAMS, weight: weights[i]! },
          }),
        ),
      ]);
      await waitFor(() => dp.snapshot().services[0]?.listener === 'listening', 3000, 'listening');
      assert.equal(dp.snapshot().workers, 2);
      // one at a time, with time for the counts to travel: whichever worker accepts, its replica
      // sees the other worker's connections (setPeerLoad); with local counts alone both would
      // start on the same server and the shares would skew
      for (let i = 0; i < 8; i++) {
        clients.push(await connect(key.port));
        await new Promise((r) => setTimeout(r, 200));
      }
      assert.deepEqual(
        servers.map((s) => s.sockets.size),
        expected,
      );
      // the replicas' own counts, summed, are the director's (peer load is not counted twice)
      const tables = dp.tableSnapshots();
      assert.equal(tables.length, 2);
      const active = servers.map((s) =>
        tables.reduce((n, t) => n + (t.services[0]?.dests.find((d) => d.port === s.port)?.activeConns ?? 0), 0),
      );
      assert.deepEqual(active, expected);
      assert.equal((await dp.connections()).length, 8);
    } finally {
      for (const c of clients) c.destroy();
      await dp.stop(0);
      for (const s of servers) await s.close();
    }
  });
}

test('cluster of 3 workers: a persistent service steers each client to one worker by its address (one template); other services spread one client over the workers and still make one rr/wrr sequence', async () => {
  const servers = [0, 1, 2].map(async (i) => realServer((s) => s.end(String(i))));
  const rs = await Promise.all(servers);
  const dp = await ClusterDataPlane.start({
    workers: 3,
    tableModule: LB_REPLICA_MODULE,
    statsIntervalMs: 50,
    // three Node processes to fork: a loaded CI machine can take more than the default 10 s
    connectTimeoutMs: 30_000,
  });
  const rrKey = tcpKey(await freePort());
  const persistKey = tcpKey(await freePort());
  const wrrKey = tcpKey(await freePort());
  const ops = (key: typeof rrKey, persistent: boolean, scheduler = 'rr'): TableOp[] => [
    {
      op: 'add-service',
      key,
      params: { ...SVC_PARAMS, scheduler, ...(persistent ? { persistentTimeout: 300 } : {}) },
    },
    ...rs.map(
      (s, i): TableOp => ({
        op: 'add-dest',
        key,
        dest: { address: '127.0.0.1', port: s.port },
        params: { ...DEST_PARAMS, weight: scheduler === 'wrr' ? i + 1 : 1 },
      }),
    ),
  ];
  const ask = async (port: number, from: string) => {
    const c = net.connect({ port, host: '127.0.0.1', localAddress: from });
    return String(await readAll(c));
  };
  /** connections each worker's replica counted for the service */
  const perWorker = (key: typeof rrKey) =>
    dp
      .tableSnapshots()
      .map((t) => t.services.find((s) => s.id === serviceId(key))?.dests.reduce((n, d) => n + d.stats.conns, 0) ?? 0);
  try {
    await dp.apply([...ops(rrKey, false), ...ops(persistKey, true), ...ops(wrrKey, false, 'wrr')]);
    // every worker holds the three services (the summed snapshot counts only workers that reported:
    // a worker still starting is not in it, and a client steered to its index would be hashed)
    await waitFor(
      () =>
        dp.snapshot().services.every((s) => s.listener === 'listening') &&
        dp.snapshot().services.length === 3 &&
        dp.tableSnapshots().length === 3 &&
        dp.tableSnapshots().every((t) => t.services.length === 3),
      30000,
      `listening: ${JSON.stringify(dp.snapshot())}`,
    );
    const port = (key: typeof rrKey) => dp.snapshot().services.find((s) => s.id === serviceId(key))!.boundPort;
    for (const from of ['127.0.0.2', '127.0.0.3', '127.0.0.4']) {
      // persistence: one template per client for the whole director
      const p: string[] = [];
      for (let i = 0; i < 6; i++) p.push(await ask(port(persistKey), from));
      assert.equal(new Set(p).size, 1, `${from} persistent: ${p}`);
    }
    // all of a persistent client's connections met one worker
    await waitFor(() => perWorker(persistKey).reduce((a, b) => a + b, 0) === 18, 5000, 'persistent counts');
    assert.ok(
      perWorker(persistKey).every((n) => n % 6 === 0),
      `persistent per worker: ${perWorker(persistKey)}`,
    );
    // no persistence: one client's connections use every worker (the kernel's 4-tuple hash), and
    // the workers share the rr/wrr position, so the client sees the sequence of one table
    const one = new LbTable({ clock: new SystemClock() });
    for (const op of [...ops(rrKey, false), ...ops(wrrKey, false, 'wrr')]) one.apply(op);
    const server = (p: number) => String(rs.findIndex((s) => s.port === p));
    for (const key of [rrKey, wrrKey]) {
      const expected = Array.from({ length: 12 }, (_, i) =>
        server(one.open(key, { address: '127.0.0.2', port: i })!.dest.port),
      );
      const seen: string[] = [];
      for (let i = 0; i < 12; i++) seen.push(await ask(port(key), '127.0.0.2'));
      assert.deepEqual(seen, expected, `${key.port === rrKey.port ? 'rr' : 'wrr'} sequence`);
    }
    one.dispose();
    await waitFor(() => perWorker(rrKey).reduce((a, b) => a + b, 0) === 12, 5000, 'rr counts');
    assert.ok(perWorker(rrKey).filter((n) => n > 0).length >= 2, `rr per worker: ${perWorker(rrKey)}`);
    // edit-service: persistence on steers the client to one worker again (one template), off spreads it
    const rrParams = { ...SVC_PARAMS, scheduler: 'rr' };
    await dp.apply([{ op: 'edit-service', key: rrKey, params: { ...rrParams, persistentTimeout: 300 } }]);
    const sticky: string[] = [];
    for (let i = 0; i < 9; i++) sticky.push(await ask(port(rrKey), '127.0.0.3'));
    assert.equal(new Set(sticky).size, 1, `persistent after edit: ${sticky}`);
    await dp.apply([{ op: 'edit-service', key: rrKey, params: rrParams }]);
    const before = perWorker(rrKey);
    for (let i = 0; i < 12; i++) await ask(port(rrKey), '127.0.0.3');
    await waitFor(() => perWorker(rrKey).reduce((a, b) => a + b, 0) === 33, 5000, 'rr counts after edit');
    const grew = perWorker(rrKey).filter((n, i) => n > (before[i] ?? 0)).length;
    assert.ok(grew >= 2, `spread after edit: ${before} -> ${perWorker(rrKey)}`);
    assert.ok(!dp.snapshot().diagnostics.some((d) => d.code === 'DP_STEERING_FAILED'));
  } finally {
    await dp.stop(0);
    for (const s of rs) await s.close();
  }
});

test('cluster of 2 workers: without persistence the workers take turns, so 64 connections of one client split 32/32 (not by the 4-tuple hash)', async () => {
  const rs = await realServer((s) => s.end('x'));
  const dp = await ClusterDataPlane.start({
    workers: 2,
    tableModule: LB_REPLICA_MODULE,
    statsIntervalMs: 50,
    connectTimeoutMs: 30_000,
  });
  const key = tcpKey(await freePort());
  const perWorker = () =>
    dp
      .tableSnapshots()
      .map((t) => t.services.find((s) => s.id === serviceId(key))?.dests.reduce((n, d) => n + d.stats.conns, 0) ?? 0);
  try {
    await dp.apply([
      { op: 'add-service', key, params: SVC_PARAMS },
      { op: 'add-dest', key, dest: { address: '127.0.0.1', port: rs.port }, params: DEST_PARAMS },
    ]);
    await waitFor(() => dp.snapshot().services[0]?.listener === 'listening', 30000, 'listening');
    const port = dp.snapshot().services[0]!.boundPort;
    for (let i = 0; i < 64; i++) await readAll(net.connect(port, '127.0.0.1'));
    await waitFor(() => perWorker().reduce((a, b) => a + b, 0) === 64, 5000, 'counts');
    assert.deepEqual(perWorker(), [32, 32]);
    assert.ok(!dp.snapshot().diagnostics.some((d) => d.code === 'DP_STEERING_FAILED'));
  } finally {
    await dp.stop(0);
    await rs.close();
  }
});
