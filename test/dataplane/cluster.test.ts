import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { FrameChannel } from '../../src/dataplane/proxy/channel.js';
import { ClusterDataPlane, type PrimaryToWorker, type WorkerToPrimary } from '../../src/dataplane/proxy/cluster.js';
import { ProxyProcesses } from '../../src/dataplane/proxy/processes.js';
import { type DestSnapshot, serviceId } from '../../src/lb/types.js';
import { addOps, connect, realServer, tcpKey, waitFor } from './helpers.js';

test('two workers share one listener and one view of connection counts (lc balances globally)', async () => {
  const closeOnFin = (s: import('node:net').Socket) => s.on('end', () => s.end());
  const a = await realServer(closeOnFin);
  const b = await realServer(closeOnFin);
  const dp = await ClusterDataPlane.start({
    workers: 2,
    tableModule: new URL('./fake-table.js', import.meta.url).href,
    statsIntervalMs: 50,
    sweepMs: 50,
  });
  const key = tcpKey(0);
  const id = serviceId(key);
  const clients = [];
  try {
    await dp.apply(addOps(key, [a.port, b.port], 'lc'));
    await waitFor(
      () => dp.snapshot().services.find((s) => s.id === id)?.listener === 'listening',
      3000,
      'cluster listening',
    );
    const port = dp.snapshot().services[0]!.boundPort;
    assert.ok(port > 0);
    assert.equal(dp.snapshot().workers, 2);
    // one at a time, with time for the counts to travel: whatever worker accepts, lc sees the
    // whole director and alternates a/b; with only local counts two odd-sized shares would skew
    for (let i = 0; i < 8; i++) {
      clients.push(await connect(port));
      await new Promise((r) => setTimeout(r, 200));
    }
    await waitFor(() => (dp.snapshot().services[0]?.open ?? 0) === 8, 3000, 'all 8 counted');
    // the counts are the replicas': each worker's own connections, summed here once
    const sum = (port: number, f: (d: DestSnapshot) => number) =>
      dp.tableSnapshots().reduce((n, t) => n + f(t.services[0]!.dests.find((d) => d.port === port)!), 0);
    await waitFor(() => sum(a.port, (d) => d.activeConns) + sum(b.port, (d) => d.activeConns) === 8, 3000, 'reported');
    assert.deepEqual(
      { [a.port]: sum(a.port, (d) => d.activeConns), [b.port]: sum(b.port, (d) => d.activeConns) },
      { [a.port]: 4, [b.port]: 4 },
    );
    assert.equal(a.sockets.size, 4);
    assert.equal(b.sockets.size, 4);
    for (const c of clients) c.destroy();
    await waitFor(() => (dp.snapshot().services[0]?.open ?? 1) === 0, 3000, 'all closed');
    const both = (f: (d: DestSnapshot) => number) => sum(a.port, f) + sum(b.port, f);
    await waitFor(() => both((d) => d.activeConns + d.inactConns) === 0, 3000, 'closes reported');
    assert.equal(
      both((d) => d.stats.conns),
      8,
    );
  } finally {
    await dp.stop(0);
    await a.close();
    await b.close();
  }
});

test('cluster forwards data and applies del-service in every worker', async () => {
  const a = await realServer((s) => s.end('hi'));
  const dp = await ClusterDataPlane.start({
    workers: 2,
    tableModule: new URL('./fake-table.js', import.meta.url).href,
    statsIntervalMs: 50,
  });
  const key = tcpKey(0);
  try {
    await dp.apply(addOps(key, [a.port]));
    await waitFor(() => dp.snapshot().services[0]?.listener === 'listening', 3000, 'listening');
    const port = dp.snapshot().services[0]!.boundPort;
    for (let i = 0; i < 6; i++) {
      const c = await connect(port);
      const chunks: Buffer[] = [];
      c.on('data', (d: Buffer) => chunks.push(d));
      await once(c, 'end');
      assert.equal(String(Buffer.concat(chunks)), 'hi');
      c.destroy();
    }
    await dp.apply([{ op: 'del-service', key }]);
    await assert.rejects(connect(port));
  } finally {
    await dp.stop(0);
    await a.close();
  }
});

test("a new controller's options reach workers an earlier one configured (the PROXY default), and setOptions reaches them all", async () => {
  const got: string[] = [];
  const a = await realServer((s) => {
    let first = true;
    s.on('data', (d: Buffer) => {
      if (first) got.push(d.toString('latin1'));
      first = false;
    });
  });
  const procs = new ProxyProcesses({ count: 1 });
  const tableModule = new URL('./fake-table.js', import.meta.url).href;
  const key = tcpKey(0);
  let dp = await ClusterDataPlane.start({ workers: 1, sockets: procs.sockets, tableModule, statsIntervalMs: 50 });
  const send = async (port: number) => {
    const before = got.length;
    const c = await connect(port);
    c.write('DATA');
    await waitFor(() => got.length > before, 2000, 'data');
    c.destroy();
    return got.at(-1)!;
  };
  try {
    await dp.apply(addOps(key, [a.port]));
    await waitFor(() => dp.snapshot().services[0]?.listener === 'listening', 3000, 'listening');
    const port = dp.snapshot().services[0]!.boundPort;
    assert.equal(await send(port), 'DATA');
    // the LVS worker (or keepvs) is replaced by one started with --proxy-protocol v1
    await dp.stop(0);
    dp = await ClusterDataPlane.start({
      workers: 1,
      sockets: procs.sockets,
      tableModule,
      statsIntervalMs: 50,
      proxyProtocol: { '*': 'v1' },
    });
    // start() resolved once the kept worker took the configure sent at its hello: the first connection has it
    assert.match(await send(port), /^PROXY TCP4 /, 'the new controller’s PROXY default was not applied');
    dp.setOptions({ proxyProtocol: {} });
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(await send(port), 'DATA');
  } finally {
    await dp.stop(0);
    await procs.stop(0);
    await a.close();
  }
});

test('start() waits until each worker has taken its configure, not only said hello', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kv-cluster-'));
  const path = join(dir, 'worker.sock');
  let ch: FrameChannel<PrimaryToWorker, WorkerToPrimary> | undefined;
  const configures: PrimaryToWorker[] = [];
  // a worker configured by an earlier controller: it says hello at once, takes its time over the configure
  const worker = net.createServer((socket) => {
    ch = new FrameChannel(
      socket,
      (m) => configures.push(m),
      () => {},
    );
    ch.send({ type: 'hello', pid: process.pid, configured: true, held: null, bindPorts: [] });
  });
  await new Promise<void>((r) => worker.listen(path, r));
  let started: ClusterDataPlane | undefined;
  const starting = ClusterDataPlane.start({ workers: 1, sockets: [path], tableModule: 'unused' }).then(
    (dp) => (started = dp),
  );
  try {
    await waitFor(() => configures.some((m) => m.type === 'configure'), 3000, 'the configure');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(started, undefined, 'start() resolved before the worker took its configure');
    ch?.send({ type: 'configured' });
    const dp = await starting;
    await dp.stop(0).catch(() => {});
  } finally {
    ch?.socket.destroy();
    worker.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
