import assert from 'node:assert/strict';
import http from 'node:http';
import type net from 'node:net';
import { after, describe, it } from 'node:test';
import { CheckManager } from '../../src/check/check-manager.js';
import type { HealthView } from '../../src/check/types.js';
import { NodeDialer } from '../../src/os/dialer.js';
import { ChildProcessRunner } from '../../src/os/process-runner.js';
import { SystemClock } from '../../src/util/clock.js';
import { EventBus } from '../../src/util/events.js';
import { MemoryLogger } from '../../src/util/logger.js';
import { config, httpCheck, loc, realServer, tcpCheck, virtualServer } from './fixtures.js';

const VS = 'tcp:198.18.0.100:80';

function startHttp(port = 0): Promise<{ server: http.Server; port: number }> {
  const server = http.createServer((_req, res) => res.end('ok'));
  return new Promise((resolve) =>
    server.listen(port, '127.0.0.1', () => resolve({ server, port: (server.address() as net.AddressInfo).port })),
  );
}

async function waitFor(m: CheckManager, pred: (v: HealthView) => boolean, ms = 5000): Promise<void> {
  if (pred(m.health())) return;
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => {
      off();
      reject(new Error(`timed out waiting; view ${JSON.stringify(m.health())}`));
    }, ms);
    const off = m.onChange((v) => {
      if (pred(v)) {
        clearTimeout(t);
        off();
        resolve();
      }
    });
  });
}

describe('CheckManager end to end (three local real servers)', () => {
  const servers: http.Server[] = [];
  after(() => {
    for (const s of servers) s.close();
  });

  it('takes a stopped server out (quorum lost), then back in', async () => {
    const rs = await Promise.all([startHttp(), startHttp(), startHttp()]);
    servers.push(...rs.map((r) => r.server));
    const timing = { delayLoop: 0.2, connectTimeout: 0.5, retry: 1, delayBeforeRetry: 0.1 };
    const cfg = config([
      virtualServer(
        rs.map((r) =>
          realServer(r.port, [
            tcpCheck(timing),
            httpCheck({ ...timing, urls: [{ path: '/', statusCodes: [[200, 200]], regexNoMatch: false, loc }] }),
          ]),
        ),
        { quorum: 3, delayLoop: 0.2 },
      ),
    ]);
    const logger = new MemoryLogger();
    const bus = new EventBus();
    const m = new CheckManager({
      config: cfg,
      clock: new SystemClock(),
      dialer: new NodeDialer(),
      runner: new ChildProcessRunner(),
      logger,
      events: bus,
    });
    m.start();
    try {
      const id = `127.0.0.1:${rs[1].port}`;
      assert.equal(m.health().services[VS].quorumUp, true);
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(m.health().services[VS].dests[id].up, true);
      rs[1].server.closeAllConnections();
      await new Promise<void>((r) => rs[1].server.close(() => r()));
      await waitFor(m, (v) => !v.services[VS].dests[id].up);
      const v = m.health().services[VS];
      assert.equal(v.quorumUp, false);
      assert.equal(v.dests[`127.0.0.1:${rs[0].port}`].up, true);
      assert.match(logger.text(), new RegExp(`Removing service \\[127\\.0\\.0\\.1\\]:tcp:${rs[1].port} from VS`));
      assert.match(logger.text(), /Lost quorum 3-0=3 > 2/);
      // probe statistics for the dashboard: the stopped server failed (retry 1: at least 2 in a row)
      const snap = m.snapshot();
      const rsOf = (port: number) =>
        snap.services[0].realServers.find((r) => r.id === `127.0.0.1:${port}`)?.checkers.map((c) => snap.probes[c.key]);
      // one failed checker takes the server out; the other may not have probed since
      const failed = (rsOf(rs[1].port) ?? []).filter((p) => p?.lastUp === false);
      assert.ok(failed.length >= 1, JSON.stringify(rsOf(rs[1].port)));
      // the one that took it out failed 1 + retry (1) times in a row; the other may be retrying
      assert.ok(
        failed.some((p) => (p?.consecutiveFailures ?? 0) >= 2),
        JSON.stringify(failed),
      );
      for (const p of failed) {
        assert.ok((p?.consecutiveFailures ?? 0) >= 1);
        assert.ok((p?.lastMs ?? -1) >= 0);
      }
      for (const p of rsOf(rs[0].port) ?? []) {
        assert.equal(p?.lastUp, true);
        assert.equal(p?.consecutiveFailures, 0);
        assert.ok((p?.probes ?? 0) >= 2);
      }
      assert.equal(rsOf(rs[1].port)?.length, 2);
      const again = await startHttp(rs[1].port);
      servers.push(again.server);
      await waitFor(m, (x) => x.services[VS].dests[id].up && x.services[VS].quorumUp);
      const ev = bus.recent().filter((e) => e.type === 'rs-health' && e.dest === id);
      assert.deepEqual(
        ev.map((e) => (e as { up: boolean }).up),
        [false, true],
      );
    } finally {
      m.stop();
    }
    assert.equal(m.snapshot().scheduler.loops, 0);
  });
});
