import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { test } from 'node:test';
import koffi from 'koffi';
import { loadFreebind } from '../../src/dataplane/proxy/freebind.js';
import { ProxyDataPlane } from '../../src/dataplane/proxy/proxy-plane.js';
import { LIBC } from '../../src/dataplane/proxy/tcp-conn.js';
import type { TcpService } from '../../src/dataplane/proxy/tcp-service.js';
import { serviceId, type TableOp } from '../../src/lb/types.js';
import {
  AF_INET,
  encodeSockaddr,
  IPPROTO_TCP,
  MSG_MORE,
  NONBLOCK_CLOEXEC,
  SHUT_WR,
  SOCK_STREAM,
  TCP_INFO,
  TCP_NODELAY,
  TCP_QUICKACK,
} from '../../src/os/libc.js';
import { FakeTable } from './fake-table.js';
import { addOps, connect, DEST_PARAMS, outcome, readAll, realServer, SVC_PARAMS, tcpKey, waitFor } from './helpers.js';

async function setup(destPorts: number[], opts: ConstructorParameters<typeof ProxyDataPlane>[1] = {}, key = tcpKey()) {
  const table = new FakeTable();
  const dp = new ProxyDataPlane(table, { sweepMs: 20, ...opts });
  const ops = addOps(key, destPorts, 'rr', key.family === 6 ? '::1' : '127.0.0.1');
  for (const op of ops) table.apply(op);
  await dp.apply(ops);
  const id = serviceId(key);
  await waitFor(() => dp.snapshot().services.find((s) => s.id === id)?.listener === 'listening', 2000, 'listening');
  const port = dp.snapshot().services.find((s) => s.id === id)!.boundPort;
  const apply = async (op: TableOp) => {
    table.apply(op);
    await dp.apply([op]);
  };
  return { table, dp, key, port, id, apply, svc: () => dp.services.get(id) as TcpService };
}

test('forwards both ways, round-robins, and accounts states, packets and bytes', async () => {
  const a = await realServer((s) => s.end('from-a'));
  const b = await realServer((s) => s.end('from-b'));
  const { table, dp, key, port } = await setup([a.port, b.port]);
  try {
    const replies: string[] = [];
    for (let i = 0; i < 4; i++) {
      const c = await connect(port);
      c.write('hello');
      replies.push(String(await readAll(c)));
      c.end();
    }
    assert.deepEqual(replies.sort(), ['from-a', 'from-a', 'from-b', 'from-b']);
    await waitFor(() => table.closed === 4, 2000, 'all closed');
    const da = table.dest(key, a.port)!;
    assert.equal(da.conns, 2);
    assert.equal(da.active + da.inact, 0);
    assert.equal(da.outBytes, 12);
    assert.ok(table.states.includes('SYN_RECV') && table.states.includes('ESTABLISHED'));
    const dests = table.snapshot().services[0]!.dests;
    assert.equal(
      dests.reduce((n, d) => n + d.stats.conns, 0),
      4,
    );
    assert.equal(
      dests.reduce((n, d) => n + d.stats.outBytes, 0),
      24,
    );
    assert.equal(dp.snapshot().services[0]!.open, 0);
  } finally {
    await dp.stop(0);
    await a.close();
    await b.close();
  }
});

test('ActiveConn/InActConn follow the connection: ESTABLISHED is active, half-closed is inactive', async () => {
  const a = await realServer(() => {});
  const { table, dp, key, port } = await setup([a.port]);
  try {
    const c = await connect(port);
    await waitFor(() => table.dest(key, a.port)!.active === 1, 2000, 'active');
    assert.equal(table.snapshot().services[0]!.dests[0]!.activeConns, 1);
    c.end();
    await waitFor(() => table.dest(key, a.port)!.inact === 1, 2000, 'inactive after FIN');
    assert.equal(table.dest(key, a.port)!.active, 0);
    assert.equal(table.snapshot().services[0]!.dests[0]!.inactConns, 1);
  } finally {
    await dp.stop(0);
    await a.close();
  }
});

test('half-close passes through: the client half-closes after its request and still gets the reply', async () => {
  const a = await realServer((s) => {
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('end', () => setTimeout(() => s.end(`got:${Buffer.concat(chunks)}`), 30));
  });
  const { dp, port } = await setup([a.port]);
  try {
    const c = await connect(port);
    c.end('request');
    assert.equal(String(await readAll(c)), 'got:request');
  } finally {
    await dp.stop(0);
    await a.close();
  }
});

test('bulk both ways arrives intact, in order, when reads move to a reused buffer', async () => {
  // 24 MiB each way through the echo server: large reads switch the handles to their own buffer
  const size = 24 * 1024 * 1024;
  const payload = Buffer.alloc(size);
  for (let i = 0; i < size; i += 4) payload.writeUInt32LE((i * 2654435761) >>> 0, i);
  const a = await realServer();
  const { dp, port } = await setup([a.port]);
  try {
    const c = await connect(port);
    const got = readAll(c);
    c.end(payload);
    const echoed = await got;
    assert.equal(echoed.length, size);
    assert.ok(echoed.equals(payload), 'every byte in order');
  } finally {
    await dp.stop(0);
    await a.close();
  }
});

test('reads that end exactly at a full buffer are not taken for errors', async () => {
  // 64 KiB at a time with a pause: the proxy's read fills its buffer, and the next read finds nothing
  const chunk = Buffer.alloc(64 * 1024, 7);
  const a = await realServer((s) => {
    let left = 64;
    const next = () => {
      if (left-- === 0) s.end();
      else s.write(chunk, () => setTimeout(next, 2));
    };
    next();
  });
  const { dp, port } = await setup([a.port]);
  try {
    const c = await connect(port);
    const [got, how] = await Promise.all([readAll(c), outcome(c)]);
    assert.equal(how, 'end');
    assert.equal(got.length, 64 * chunk.length);
  } finally {
    await dp.stop(0);
    await a.close();
  }
});

test('the server half-closes first and the client can still send', async () => {
  let received = '';
  const a = await realServer((s) => {
    s.end('bye');
    s.on('data', (d: Buffer) => {
      received += d;
    });
  });
  const { dp, port } = await setup([a.port]);
  try {
    const c = await connect(port);
    assert.equal(String(await readAll(c)), 'bye');
    c.end('late data');
    await waitFor(() => received === 'late data', 2000, 'late data');
  } finally {
    await dp.stop(0);
    await a.close();
  }
});

test('a refused real server is counted and the client is closed promptly', async () => {
  const probe = net.createServer();
  probe.listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const deadPort = (probe.address() as net.AddressInfo).port;
  await new Promise((r) => probe.close(r));
  const { dp, port, table } = await setup([deadPort]);
  try {
    const c = await connect(port);
    const t0 = Date.now();
    const how = await outcome(c);
    assert.ok(how === 'reset' || how === 'end' || how === 'close');
    assert.ok(Date.now() - t0 < 1000);
    const s = dp.snapshot().services[0]!;
    assert.equal(s.connectFailures, 1);
    assert.equal(s.dests[0]!.connectFailures, 1);
    await waitFor(() => table.closed === 1, 2000, 'entry closed');
  } finally {
    await dp.stop(0);
  }
});

test('a real server that never answers the SYN times out, is counted, and the client is closed', async (t) => {
  // a listener that never accepts, with a full queue, drops further SYNs: connect hangs as to a dead host
  const fb = loadFreebind();
  if (!fb) return t.skip('needs libc through koffi');
  const bound = fb.bind('tcp', '127.0.0.1', 0);
  const listen = koffi.load('libc.so.6').func('int listen(int, int)');
  assert.equal(listen(bound.fd, 0), 0);
  const fullPort = bound.port;
  const fillers: net.Socket[] = [];
  for (let i = 0; i < 3; i++) {
    const f = net.connect(fullPort, '127.0.0.1');
    f.on('error', () => {});
    fillers.push(f);
  }
  await new Promise((r) => setTimeout(r, 100));
  const { dp, port } = await setup([fullPort], { connectTimeoutMs: 300 });
  try {
    const c = await connect(port);
    const t0 = Date.now();
    await outcome(c);
    const took = Date.now() - t0;
    assert.ok(took >= 250 && took < 2000, `closed after ${took} ms`);
    assert.equal(dp.snapshot().services[0]!.connectFailures, 1);
  } finally {
    await dp.stop(0);
    for (const f of fillers) f.destroy();
    fb.close(bound.fd);
  }
});

test('no destination: the client is closed at once and the refusal is counted', async () => {
  const { dp, port } = await setup([]);
  try {
    const c = await connect(port);
    const how = await outcome(c);
    assert.ok(how === 'end' || how === 'close' || how === 'reset');
    assert.equal(dp.snapshot().services[0]!.noDest, 1);
  } finally {
    await dp.stop(0);
  }
});

test('a table that throws on one connection costs that client only: reset, reported, next one served', async () => {
  const a = await realServer((s) => s.end('ok'));
  const { dp, port, table } = await setup([a.port]);
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(w.message);
  process.on('warning', onWarning);
  const open = table.open.bind(table);
  let failures = 1;
  table.open = (key, client) => {
    if (failures-- > 0) throw new Error('table bug');
    return open(key, client);
  };
  try {
    // the reset may arrive before Node reports the connect
    assert.equal(await outcome(net.connect(port, '127.0.0.1')), 'reset');
    const good = await connect(port);
    assert.equal(String(await readAll(good)), 'ok');
    await waitFor(() => warnings.some((m) => m.includes('table bug')), 2000, 'warning');
  } finally {
    process.off('warning', onWarning);
    await dp.stop(0);
    await a.close();
  }
});

test('weight 0 keeps established connections and sends new ones elsewhere (table decides)', async () => {
  const a = await realServer();
  const b = await realServer((s) => s.end('b'));
  const { dp, port, apply, key, table } = await setup([a.port]);
  try {
    const c = await connect(port);
    c.write('x');
    await once(c, 'data');
    await apply({ op: 'add-dest', key, dest: { address: '127.0.0.1', port: b.port }, params: DEST_PARAMS });
    await apply({
      op: 'edit-dest',
      key,
      dest: { address: '127.0.0.1', port: a.port },
      params: { ...DEST_PARAMS, weight: 0 },
    });
    const c2 = await connect(port);
    assert.equal(String(await readAll(c2)), 'b');
    c.write('still-here');
    const [d] = await once(c, 'data');
    assert.equal(String(d), 'still-here');
    assert.equal(table.dest(key, a.port)!.active, 1);
    c.destroy();
  } finally {
    await dp.stop(0);
    await a.close();
    await b.close();
  }
});

test('reset mid-stream by the real server reaches the client as a reset', async () => {
  const a = await realServer((s) => {
    s.write('partial');
    setTimeout(() => s.resetAndDestroy(), 30);
  });
  const { dp, port, table } = await setup([a.port]);
  try {
    const c = await connect(port);
    assert.equal(await outcome(c), 'reset');
    await waitFor(() => table.closed === 1, 2000, 'entry closed');
  } finally {
    await dp.stop(0);
    await a.close();
  }
});

test('reset by the client reaches the real server as a reset', async () => {
  let serverSaw = '';
  const a = await realServer((s) => {
    s.removeAllListeners('error');
    s.on('error', (e: NodeJS.ErrnoException) => {
      serverSaw = e.code ?? 'error';
    });
    s.write('stream');
  });
  const { dp, port } = await setup([a.port]);
  try {
    const c = await connect(port);
    await once(c, 'data');
    c.resetAndDestroy();
    await waitFor(() => serverSaw === 'ECONNRESET', 2000, 'server ECONNRESET');
  } finally {
    await dp.stop(0);
    await a.close();
  }
});

test('slow reader: back-pressure pauses the real server, proxy buffering stays bounded', async () => {
  let written = 0;
  const chunk = Buffer.alloc(64 * 1024, 1);
  const a = await realServer((s) => {
    const pump = () => {
      while (written < 256 * 1024 * 1024) {
        written += chunk.length;
        if (!s.write(chunk)) {
          s.once('drain', pump);
          return;
        }
      }
    };
    pump();
  });
  const { dp, port, svc } = await setup([a.port]);
  try {
    const c = await connect(port);
    c.pause(); // never reads
    await new Promise((r) => setTimeout(r, 600));
    const stalledAt = written;
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(written, stalledAt, 'the real server is stalled by back-pressure');
    assert.ok(written < 64 * 1024 * 1024, `only kernel buffers hold data (${written} bytes)`);
    const conn = [...svc().conns][0]!;
    assert.ok(conn.pendingToClient > 0, 'a write to the client is in flight, so the real server is not read');
    assert.ok(conn.pendingToClient < 1024 * 1024, `proxy holds ${conn.pendingToClient} bytes`);
    c.destroy();
  } finally {
    await dp.stop(0);
    await a.close();
  }
});

test('slow reader of small writes: what the client cannot take at once waits in the proxy, and every byte arrives in order', async () => {
  // request-sized writes (each read below the bulk threshold, so uring batches them): the client's
  // socket fills, sends come back short, the rest must be kept and the real server paused
  const CHUNK = 4096;
  const TOTAL = 8 * 1024 * 1024;
  const pattern = (i: number) => Buffer.alloc(CHUNK, i % 251);
  const a = await realServer((s) => {
    let i = 0;
    const pump = (): void => {
      if (i * CHUNK >= TOTAL) {
        s.end();
        return;
      }
      if (!s.write(pattern(i++))) s.once('drain', () => setImmediate(pump));
      else setImmediate(pump);
    };
    pump();
  });
  const { dp, port, svc } = await setup([a.port]);
  try {
    const c = await connect(port);
    c.pause();
    let maxPending = 0;
    await waitFor(
      () => {
        const conn = [...svc().conns][0];
        maxPending = Math.max(maxPending, conn?.pendingToClient ?? 0);
        return maxPending > 0;
      },
      5000,
      'a short send to the client, kept in the proxy',
    );
    assert.ok(maxPending <= 256 * 1024, `the proxy holds at most one read (${maxPending} bytes)`);
    const got = readAll(c);
    c.resume();
    const all = await got;
    assert.equal(all.length, TOTAL);
    for (let i = 0; i < TOTAL / CHUNK; i++)
      if (all[i * CHUNK] !== i % 251 || all[i * CHUNK + CHUNK - 1] !== i % 251) assert.fail(`chunk ${i} out of place`);
  } finally {
    await dp.stop(0);
    await a.close();
  }
});

test('idle connections expire after the table idle timeout', async () => {
  const a = await realServer(() => {});
  const { dp, port, table } = await setup([a.port]);
  table.timeouts.tcp = 150;
  try {
    const c = await connect(port);
    const t0 = Date.now();
    await outcome(c);
    assert.ok(Date.now() - t0 >= 100);
    await waitFor(() => table.closed === 1, 2000, 'entry closed');
  } finally {
    await dp.stop(0);
    await a.close();
  }
});

for (const policy of ['close', 'keep'] as const) {
  test(`real server removed under load, expire_nodest_conn=${policy}`, async () => {
    // each real server answers every chunk with its name
    const named = (n: string) => (s: net.Socket) => s.on('data', (d) => s.write(`${n}:${d}`));
    const a = await realServer(named('a'));
    const b = await realServer(named('b'));
    const { dp, port, apply, key, table } = await setup([a.port, b.port], { expireNodestConn: policy });
    try {
      const clients = await Promise.all(Array.from({ length: 10 }, () => connect(port)));
      for (const c of clients) c.write('ping');
      const first = await Promise.all(clients.map((c) => once(c, 'data').then(([d]) => String(d))));
      const onA = first.map((d, i) => (d.startsWith('a:') ? i : -1)).filter((i) => i >= 0);
      assert.equal(onA.length, 5);
      const got = clients.map(() => '');
      clients.forEach((c, i) => {
        c.on('data', (d) => {
          got[i] += d;
        });
      });
      let ended = 0;
      for (const c of clients) void outcome(c).then(() => ended++);
      await apply({ op: 'del-dest', key, dest: { address: '127.0.0.1', port: a.port } });
      if (policy === 'close') {
        // the five connections to the removed server are closed, the other five live on
        await waitFor(() => ended === 5, 2000, 'connections to the removed server closed');
        await new Promise((r) => setTimeout(r, 100));
        assert.equal(ended, 5);
        assert.equal(dp.snapshot().services[0]!.open, 5);
      } else {
        // IPVS (ip_vs_in_hook) drops what the clients of a removed real server send, without a
        // reset, until the entry expires; the other clients go on
        for (const x of clients) x.write('more');
        await waitFor(() => got.every((g, i) => onA.includes(i) || g === 'b:more'), 2000, "b's clients answered");
        await new Promise((r) => setTimeout(r, 200));
        assert.deepEqual(
          onA.map((i) => got[i]),
          onA.map(() => ''),
          "nothing a's clients sent reached a",
        );
        assert.equal(dp.snapshot().services[0]!.open, 10);
        assert.equal(ended, 0);
      }
      // new connections all go to b
      const c = await connect(port);
      c.write('q');
      await once(c, 'data');
      assert.equal(table.dest(key, b.port)!.conns, 6);
      if (policy === 'keep') {
        // a back in the service (IPVS restores it from the trash): what its clients sent reaches it
        await apply({ op: 'add-dest', key, dest: { address: '127.0.0.1', port: a.port }, params: DEST_PARAMS });
        await waitFor(() => onA.every((i) => got[i] === 'a:more'), 2000, "a's clients answered again");
      }
      for (const x of [...clients, c]) x.destroy();
    } finally {
      await dp.stop(0);
      await a.close();
      await b.close();
    }
  });
}

test('deleting the service closes its listener and drains within the bound', async () => {
  const a = await realServer();
  const { dp, port, id } = await setup([a.port], { drainMs: 300 });
  try {
    const c = await connect(port);
    c.write('x');
    await once(c, 'data');
    const closed = outcome(c);
    const t0 = Date.now();
    const del = dp.apply([{ op: 'del-service', key: tcpKey(0) }]);
    await new Promise((r) => setTimeout(r, 50));
    // the listener is gone, the old connection still works during the drain
    await assert.rejects(connect(port));
    assert.equal(dp.snapshot().services.find((s) => s.id === id)?.listener, 'draining');
    c.write('y');
    await once(c, 'data');
    await del;
    await closed;
    const took = Date.now() - t0;
    assert.ok(took >= 250 && took < 1500, `drained in ${took} ms`);
    assert.equal(dp.snapshot().services.length, 0);
  } finally {
    await dp.stop(0);
    await a.close();
  }
});

test('PROXY protocol v1 and v2 headers reach the real server before the client bytes', async () => {
  for (const version of ['v1', 'v2'] as const) {
    let got = Buffer.alloc(0);
    const a = await realServer((s) => {
      s.on('data', (d: Buffer) => {
        got = Buffer.concat([got, d]);
      });
    });
    const { dp, port, id } = await setup([a.port], { proxyProtocol: { '*': version } });
    try {
      assert.ok(id);
      const c = await connect(port);
      c.write('DATA');
      await waitFor(() => got.includes('DATA'), 2000, 'data');
      const cp = c.localPort!;
      if (version === 'v1')
        assert.equal(got.toString('latin1'), `PROXY TCP4 127.0.0.1 127.0.0.1 ${cp} ${port}\r\nDATA`);
      else {
        const hdr = Buffer.from(`0d0a0d0a000d0a515549540a2111000c7f0000017f000001`, 'hex');
        const ports = Buffer.alloc(4);
        ports.writeUInt16BE(cp, 0);
        ports.writeUInt16BE(port, 2);
        assert.deepEqual(got, Buffer.concat([hdr, ports, Buffer.from('DATA')]));
      }
      c.destroy();
    } finally {
      await dp.stop(0);
      await a.close();
    }
  }
});

test("a service's own proxy_protocol (from the config, in its params) wins over the default, and follows edit-service", async () => {
  const got: string[] = [];
  const a = await realServer((s) => {
    let first = true;
    s.on('data', (d: Buffer) => {
      if (first) got.push(d.toString('latin1'));
      first = false;
    });
  });
  const { dp, port, key, apply } = await setup([a.port], { proxyProtocol: { '*': 'v2' } });
  const send = async () => {
    const before = got.length;
    const c = await connect(port);
    c.write('DATA');
    await waitFor(() => got.length > before, 2000, 'data');
    c.destroy();
  };
  try {
    await apply({ op: 'edit-service', key, params: { ...SVC_PARAMS, proxyProtocol: 'v1' } });
    await send();
    assert.match(got.at(-1)!, /^PROXY TCP4 127\.0\.0\.1 127\.0\.0\.1 \d+ \d+\r\n/);
    await apply({ op: 'edit-service', key, params: { ...SVC_PARAMS, proxyProtocol: 'off' } });
    await send();
    assert.equal(got.at(-1), 'DATA');
    await apply({ op: 'edit-service', key, params: SVC_PARAMS });
    await send();
    assert.ok(got.at(-1)!.startsWith('\r\n\r\n\0\r\nQUIT\n'), 'back to the v2 default');
  } finally {
    await dp.stop(0);
    await a.close();
  }
});

test('IPv6 services forward to IPv6 real servers', async () => {
  const a = await realServer((s) => s.end('six'), '::1');
  const { dp, port } = await setup([a.port], {}, tcpKey(0, '::1'));
  try {
    const c = await connect(port, '::1');
    assert.equal(String(await readAll(c)), 'six');
  } finally {
    await dp.stop(0);
    await a.close();
  }
});

test('a BACKUP director listens on a VIP it does not hold yet (IP_FREEBIND)', async () => {
  const table = new FakeTable();
  const dp = new ProxyDataPlane(table, { sweepMs: 50 });
  try {
    // 198.18.0.0/15 (RFC 2544 benchmarking) is not assigned here; nothing is sent to it
    const key4 = tcpKey(0, '198.18.0.100');
    const key6 = tcpKey(0, '2001:db8::100');
    await dp.apply(addOps(key4, []));
    await dp.apply(addOps(key6, []));
    await waitFor(() => dp.snapshot().services.every((s) => s.listener === 'listening'), 2000, 'freebind listen');
    for (const s of dp.snapshot().services) assert.ok(s.boundPort > 0);
    // without freebind the same bind waits for the address (and says why)
    const plain = new ProxyDataPlane(table, { freebind: false, bindRetryMs: 50 });
    await plain.apply(addOps(key4, []));
    await waitFor(() => plain.snapshot().services[0]?.error !== undefined, 2000, 'bind error');
    assert.equal(plain.snapshot().services[0]?.listener, 'waiting-for-address');
    assert.match(plain.snapshot().services[0]!.error ?? '', /EADDRNOTAVAIL/);
    await plain.stop(0);
  } finally {
    await dp.stop(0);
  }
});

test('unsupported services are reported, not silently accepted', async () => {
  const dp = new ProxyDataPlane(new FakeTable());
  try {
    await dp.apply([
      {
        op: 'add-service',
        key: { kind: 'fwmark', family: 4, fwmark: 7 },
        params: { scheduler: 'rr', schedFlags: [], ops: false },
      },
      {
        op: 'add-service',
        key: { kind: 'addr', protocol: 'sctp', family: 4, address: '127.0.0.1', port: 9 },
        params: { scheduler: 'rr', schedFlags: [], ops: false },
      },
      // port 0 + persistence: every port (IPVS); never a listener on a random port
      {
        op: 'add-service',
        key: { kind: 'addr', protocol: 'tcp', family: 4, address: '127.0.0.1', port: 0 },
        params: { scheduler: 'rr', schedFlags: [], ops: false, persistentTimeout: 300 },
      },
    ]);
    assert.deepEqual(
      dp.snapshot().diagnostics.map((d) => d.code),
      ['DP_UNSUPPORTED_FWMARK', 'DP_UNSUPPORTED_PROTOCOL', 'DP_UNSUPPORTED_ALL_PORTS'],
    );
    assert.deepEqual(
      dp.snapshot().services.map((s) => s.id),
      [],
      'nothing listens',
    );
  } finally {
    await dp.stop(0);
  }
});

test('both sockets of a proxied connection have TCP_NODELAY (the client side inherits it from the listener)', async (t) => {
  const libc = LIBC;
  if (!libc) return t.skip('needs libc through koffi');
  const held: net.Socket[] = [];
  const a = await realServer((s) => {
    held.push(s);
    s.write('hi');
  });
  const { dp, port, svc } = await setup([a.port]);
  const c = await connect(port);
  try {
    await once(c, 'data');
    const conn = [...svc().conns][0]!;
    const nodelay = (fd: number) => {
      const v = Buffer.alloc(4);
      const len = Buffer.alloc(4);
      len.writeUInt32LE(4);
      assert.equal(libc.getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, v, len), 0);
      return v.readInt32LE();
    };
    assert.notEqual(nodelay(conn.client), 0, 'client side');
    assert.notEqual(nodelay(conn.upstream), 0, 'real server side');
  } finally {
    c.destroy();
    for (const s of held) s.destroy();
    await dp.stop(0);
    await a.close();
  }
});

/** segments the socket received (tcpi_segs_in) and those of them that carried data (tcpi_data_segs_in) */
function segmentsIn(libc: NonNullable<typeof LIBC>, fd: number): { all: number; data: number } {
  const info = Buffer.alloc(232);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(info.length);
  assert.equal(libc.getsockopt(fd, IPPROTO_TCP, TCP_INFO, info, len), 0);
  // struct tcp_info (linux/tcp.h): tcpi_segs_in at 140, tcpi_data_segs_in at 152
  return { all: info.readUInt32LE(140), data: info.readUInt32LE(152) };
}

test("a real server's last bytes and its FIN reach the client in one segment, as they came", async (t) => {
  const libc = LIBC;
  if (!libc) return t.skip('needs libc through koffi');
  const fdOf = (s: net.Socket) => (s as unknown as { _handle: { fd: number } })._handle.fd;
  // a server-first real server whose greeting and FIN leave in one segment (MSG_MORE, then shutdown)
  const greeting = Buffer.from('220 hello\r\n');
  const a = await realServer((s) => {
    assert.equal(libc.send(fdOf(s), greeting, greeting.length, MSG_MORE), greeting.length);
    libc.shutdown(fdOf(s), SHUT_WR);
  });
  const { dp, port } = await setup([a.port]);
  try {
    for (let i = 0; i < 3; i++) {
      const c = await connect(port);
      assert.deepEqual(await readAll(c), greeting);
      const segs = segmentsIn(libc, fdOf(c));
      // the SYN-ACK is the only segment without data: no FIN of its own after the greeting
      assert.equal(segs.all - segs.data, 1, `segments in ${JSON.stringify(segs)}`);
      c.destroy();
    }
  } finally {
    await dp.stop(0);
    await a.close();
  }
});

test("the client's side starts in delayed-ACK mode (inherited from the listener): a request's ACK rides on the reply", async (t) => {
  const libc = LIBC;
  if (!libc) return t.skip('needs libc through koffi');
  const held: net.Socket[] = [];
  const a = await realServer((s) => {
    held.push(s);
    s.write('hi');
  });
  const { dp, port, svc } = await setup([a.port]);
  const c = await connect(port);
  try {
    await once(c, 'data');
    const conn = [...svc().conns][0]!;
    const v = Buffer.alloc(4);
    const len = Buffer.alloc(4);
    len.writeUInt32LE(4);
    // getsockopt(TCP_QUICKACK) answers 0 in delayed-ACK (pingpong) mode
    assert.equal(libc.getsockopt(conn.client, IPPROTO_TCP, TCP_QUICKACK, v, len), 0);
    assert.equal(v.readInt32LE(), 0);
  } finally {
    c.destroy();
    for (const s of held) s.destroy();
    await dp.stop(0);
    await a.close();
  }
});

test("a client that spoke first: its request rides on the real server's handshake (no ACK of its own), and is answered", async (t) => {
  const libc = LIBC;
  if (!libc) return t.skip('needs libc through koffi');
  const fdOf = (s: net.Socket) => (s as unknown as { _handle: { fd: number } })._handle.fd;
  const seen: { all: number; data: number }[] = [];
  const a = await realServer((s) => {
    s.once('data', () => {
      seen.push(segmentsIn(libc, fdOf(s)));
      s.end('pong');
    });
  });
  const { dp, port } = await setup([a.port]);
  try {
    for (let i = 0; i < 3; i++) {
      // connect and send before the proxy runs again: the request waits in its accepted socket
      const fd = libc.socket(AF_INET, SOCK_STREAM | NONBLOCK_CLOEXEC, 0);
      const sa = encodeSockaddr('127.0.0.1', port);
      libc.connect(fd, sa, sa.length);
      const ping = Buffer.from('ping');
      assert.equal(libc.send(fd, ping, ping.length, 0), ping.length);
      const c = new net.Socket({ fd, readable: true, writable: true, allowHalfOpen: true });
      assert.equal(String(await readAll(c)), 'pong');
      c.destroy();
    }
    // before its reply the server's socket had the SYN and the request, which carried the handshake's
    // last ACK (a bare ACK would be one more segment without data)
    assert.equal(seen.length, 3);
    for (const segs of seen) assert.equal(segs.all - segs.data, 1, `segments in ${JSON.stringify(segs)}`);
  } finally {
    await dp.stop(0);
    await a.close();
  }
});

test("a client that waits for the server's greeting gets it without a held-back handshake (no delayed ACK on the real server's side)", async () => {
  const a = await realServer((s) => s.end('220 ready\r\n'));
  const { dp, port } = await setup([a.port]);
  try {
    const took: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      const c = await connect(port);
      assert.equal(String(await readAll(c)), '220 ready\r\n');
      took.push(performance.now() - t0);
      c.destroy();
    }
    // a handshake ACK held back for data that never comes waits 200 ms (TCP_DELACK_MAX): every one would
    assert.ok(Math.min(...took) < 150, `greetings took ${took.map((x) => x.toFixed(1)).join(', ')} ms`);
  } finally {
    await dp.stop(0);
    await a.close();
  }
});

test('a client that sent much before its real server accepted has only a request-sized first read held by the proxy', async (t) => {
  const libc = LIBC;
  const fb = loadFreebind();
  if (!libc || !fb) return t.skip('needs libc through koffi');
  // a listener that never accepts, with a full queue: the connect to it hangs
  const bound = fb.bind('tcp', '127.0.0.1', 0);
  assert.equal(libc.listen(bound.fd, 0), 0);
  const fillers: net.Socket[] = [];
  for (let i = 0; i < 3; i++) fillers.push(net.connect(bound.port, '127.0.0.1').on('error', () => {}));
  await new Promise((r) => setTimeout(r, 100));
  const { dp, port, svc } = await setup([bound.port], { connectTimeoutMs: 5000 });
  const fd = libc.socket(AF_INET, SOCK_STREAM | NONBLOCK_CLOEXEC, 0);
  try {
    // connect and send before the proxy runs again: all of it waits in the accepted socket
    const sa = encodeSockaddr('127.0.0.1', port);
    libc.connect(fd, sa, sa.length);
    const big = Buffer.alloc(1 << 20, 1);
    const sent = libc.send(fd, big, big.length, 0);
    assert.ok(sent > 64 * 1024, `sent ${sent}`);
    await waitFor(() => svc().conns.size === 1, 2000, 'accepted');
    const conn = [...svc().conns][0]!;
    assert.equal(conn.connected, false);
    assert.ok(
      conn.pendingToUpstream > 0 && conn.pendingToUpstream <= 16 * 1024,
      `held ${conn.pendingToUpstream} bytes`,
    );
  } finally {
    libc.close(fd);
    await dp.stop(0);
    for (const f of fillers) f.destroy();
    fb.close(bound.fd);
  }
});
