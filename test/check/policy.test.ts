import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CheckManager } from '../../src/check/check-manager.js';
import { HealthPolicy, type PolicyHooks } from '../../src/check/policy.js';
import type { Dialer } from '../../src/check/types.js';
import type { ScriptSpec } from '../../src/config/model.js';
import { FakeClock } from '../../src/util/clock.js';
import { EventBus } from '../../src/util/events.js';
import { MemoryLogger } from '../../src/util/logger.js';
import type { ProcessRunner, RunOptions } from '../../src/util/ports.js';
import { config, httpCheck, loc, realServer, tcpCheck, virtualServer } from './fixtures.js';

const VS = 'tcp:198.18.0.100:80';
const script = (name: string): ScriptSpec => ({ command: name, argv: [name], loc });

function hooks() {
  const logger = new MemoryLogger();
  const bus = new EventBus();
  const notified: string[] = [];
  const h: PolicyHooks = {
    logger,
    events: bus,
    wallNow: () => 0,
    notify: (s) => notified.push(s.command),
  };
  return { h, logger, bus, notified };
}

const up = { up: true, reason: 'ok' };
const down = { up: false, reason: 'TCP connection to [127.0.0.1]:tcp:1 failed.' };

describe('HealthPolicy (pure)', () => {
  it('goes down after retry+1 failures, waits delay_before_retry, comes back on first success', () => {
    const { h, logger, notified } = hooks();
    const c = tcpCheck({ retry: 2, delayBeforeRetry: 3, delayLoop: 10 });
    const cfg = config([
      virtualServer([realServer(1, [c], { notifyUp: script('up.sh'), notifyDown: script('down.sh') })]),
    ]);
    const p = new HealthPolicy(cfg, h);
    const key = p.checkerKeys()[0];
    assert.equal(p.health().services[VS].dests['127.0.0.1:1'].up, true);
    assert.equal(p.report(key, down), 3);
    assert.equal(p.report(key, down), 3);
    assert.equal(p.health().services[VS].dests['127.0.0.1:1'].up, true);
    assert.equal(p.report(key, down), 10);
    const d = p.health().services[VS];
    assert.deepEqual(d.dests['127.0.0.1:1'], { up: false, weight: 0, inPool: false });
    assert.equal(d.quorumUp, false);
    assert.match(logger.text(), /Removing service \[127\.0\.0\.1\]:tcp:1 from VS \[198\.18\.0\.100\]:tcp:80/);
    assert.match(logger.text(), /Lost quorum 1-0=1 > 0 for VS \[198\.18\.0\.100\]:tcp:80/);
    assert.equal(p.report(key, up), 10);
    assert.equal(p.health().services[VS].dests['127.0.0.1:1'].up, true);
    assert.match(logger.text(), /Adding service \[127\.0\.0\.1\]:tcp:1 to VS/);
    assert.match(logger.text(), /Gained quorum 1\+0=1 <= 1/);
    assert.deepEqual(notified, ['down.sh', 'up.sh']);
  });

  it('retries while up only, except TCP_CHECK which keeps cycling retries (tcp_epilog)', () => {
    const { h } = hooks();
    const tcp = tcpCheck({ retry: 1, delayBeforeRetry: 2, delayLoop: 5 });
    const http = { ...httpCheck(), retry: 1, delayBeforeRetry: 7, delayLoop: 5 };
    const p = new HealthPolicy(config([virtualServer([realServer(1, [tcp]), realServer(2, [http])])]), h);
    const [kt, kh] = p.checkerKeys();
    assert.deepEqual([p.report(kt, down), p.report(kt, down)], [2, 5]);
    assert.deepEqual([p.report(kh, down), p.report(kh, down)], [7, 5]);
    // both are down now
    assert.deepEqual([p.report(kt, down), p.report(kt, down)], [2, 5]);
    assert.deepEqual([p.report(kh, down), p.report(kh, down)], [7, 7]);
  });

  it('alpha starts the server down until a check passes', () => {
    const { h } = hooks();
    const p = new HealthPolicy(config([virtualServer([realServer(1, [tcpCheck()])], { alpha: true })]), h);
    assert.equal(p.health().services[VS].dests['127.0.0.1:1'].up, false);
    p.report(p.checkerKeys()[0], up);
    assert.equal(p.health().services[VS].dests['127.0.0.1:1'].up, true);
  });

  it('needs every checker of a real server to pass', () => {
    const { h } = hooks();
    const p = new HealthPolicy(config([virtualServer([realServer(1, [tcpCheck(), tcpCheck({ connectPort: 2 })])])]), h);
    const [a, b] = p.checkerKeys();
    p.report(a, down);
    p.report(b, down);
    p.report(a, up);
    assert.equal(p.health().services[VS].dests['127.0.0.1:1'].up, false);
    p.report(b, up);
    assert.equal(p.health().services[VS].dests['127.0.0.1:1'].up, true);
  });

  it('lbHealthInput speaks the lb engine ids (configured port, group:<name>:<proto>) and dynamic weights', () => {
    const { h } = hooks();
    const vs1 = virtualServer([realServer(0, [tcpCheck()], { weight: 3 })]);
    const vs2 = virtualServer([realServer(8080, [tcpCheck()])], { key: { kind: 'group', group: 'web' } });
    const p = new HealthPolicy(config([vs1, vs2]), h);
    const [k1] = p.checkerKeys();
    assert.deepEqual(Object.keys(p.health().services[VS].dests), ['127.0.0.1:80']);
    p.report(k1, { up: true, reason: 'dyn', weight: 7 });
    assert.deepEqual(p.lbHealthInput(), {
      realServers: {
        [VS]: { '127.0.0.1:0': { up: true, weight: 7 } },
        'group:web:tcp': { '127.0.0.1:8080': { up: true } },
      },
      quorum: { [VS]: true, 'group:web:tcp': true },
    });
  });

  it('inhibit_on_failure keeps the server in the pool at weight 0', () => {
    const { h, logger } = hooks();
    const p = new HealthPolicy(
      config([virtualServer([realServer(1, [tcpCheck()], { inhibitOnFailure: true, weight: 5 })])]),
      h,
    );
    assert.deepEqual(p.health().services[VS].dests['127.0.0.1:1'], { up: true, weight: 5, inPool: true });
    p.report(p.checkerKeys()[0], down);
    assert.deepEqual(p.health().services[VS].dests['127.0.0.1:1'], { up: false, weight: 0, inPool: true });
    assert.match(logger.text(), /Disabling service \[127\.0\.0\.1\]:tcp:1 of VS/);
  });

  it('quorum with hysteresis, quorum_up/down scripts and the sorry server', () => {
    const { h, logger, notified, bus } = hooks();
    const rss = [1, 2, 3].map((port) => realServer(port, [tcpCheck()]));
    const vs = virtualServer(rss, {
      quorum: 3,
      hysteresis: 1,
      quorumUp: script('qup.sh'),
      quorumDown: script('qdown.sh'),
      sorryServer: { address: '127.0.0.9', family: 4, port: 8080 },
    });
    const p = new HealthPolicy(config([vs]), h);
    const [k1, k2, k3] = p.checkerKeys();
    let s = p.health().services[VS];
    assert.equal(s.quorumUp, false); // 3 < 3+1: starts down, sorry server in
    assert.deepEqual(s.sorry, { dest: '127.0.0.9:8080', up: true, weight: 1, inPool: true });
    assert.equal(s.dests['127.0.0.1:1'].inPool, false);
    assert.match(logger.text(), /Starting with quorum down 3-1=4 > 3/);
    p.report(k1, down); // 2
    p.report(k1, up); // 3: still below 4
    assert.equal(p.health().services[VS].quorumUp, false);
    // weight bump via dynamic weight pushes sum to 4: gained
    p.report(k1, { up: true, reason: 'dyn', weight: 2 });
    s = p.health().services[VS];
    assert.equal(s.quorumUp, true);
    assert.equal(s.sorry?.inPool, false);
    assert.equal(s.dests['127.0.0.1:1'].weight, 2);
    assert.equal(s.dests['127.0.0.1:2'].inPool, true);
    p.report(k2, down); // sum 3 >= 3-1: keeps quorum (hysteresis)
    assert.equal(p.health().services[VS].quorumUp, true);
    p.report(k3, down); // sum 2 >= 2 keeps
    assert.equal(p.health().services[VS].quorumUp, true);
    p.report(k1, { up: true, reason: 'dyn', weight: 1 }); // sum 1 < 2: lost
    s = p.health().services[VS];
    assert.equal(s.quorumUp, false);
    assert.equal(s.sorry?.inPool, true);
    assert.equal(s.dests['127.0.0.1:1'].inPool, false);
    assert.deepEqual(notified, ['qdown.sh', 'qup.sh', 'qdown.sh']);
    const q = bus
      .recent()
      .filter((e) => e.type === 'vs-quorum')
      .map((e) => (e as { up: boolean }).up);
    assert.deepEqual(q, [false, true, false]);
    assert.ok(bus.recent().some((e) => e.type === 'rs-weight'));
  });

  it('sorry_server_inhibit keeps the sorry server at weight 0 while quorum is up', () => {
    const { h } = hooks();
    const vs = virtualServer([realServer(1, [tcpCheck()])], {
      sorryServer: { address: '127.0.0.9', family: 4, port: 0 },
      sorryServerInhibit: true,
    });
    const p = new HealthPolicy(config([vs]), h);
    assert.deepEqual(p.health().services[VS].sorry, { dest: '127.0.0.9:80', up: false, weight: 0, inPool: true });
    p.report(p.checkerKeys()[0], down);
    assert.deepEqual(p.health().services[VS].sorry, { dest: '127.0.0.9:80', up: true, weight: 1, inPool: true });
  });

  it('omega runs down notifiers on stop, plain stop does not', () => {
    for (const omega of [true, false]) {
      const { h, notified } = hooks();
      const vs = virtualServer([realServer(1, [tcpCheck()], { notifyDown: script('down.sh') })], {
        omega,
        quorumDown: script('qdown.sh'),
      });
      const p = new HealthPolicy(config([vs]), h);
      p.stop();
      assert.deepEqual(notified, omega ? ['down.sh', 'qdown.sh'] : []);
      assert.equal(p.health().services[VS].dests['127.0.0.1:1'].inPool, false);
    }
  });

  it('reload keeps the state of unchanged checkers and resets changed ones', () => {
    const { h, bus } = hooks();
    const c = tcpCheck({ retry: 1 });
    const cfg1 = config([virtualServer([realServer(1, [c]), realServer(2, [c])])]);
    const p1 = new HealthPolicy(cfg1, h);
    const [k1, k2] = p1.checkerKeys();
    p1.report(k1, down);
    p1.report(k1, down);
    p1.report(k2, down); // one retry used
    assert.equal(p1.health().services[VS].dests['127.0.0.1:1'].up, false);
    const events = bus.recent().length;
    // same checkers, plus a new alpha real server
    const cfg2 = config([
      virtualServer([realServer(1, [c]), realServer(2, [c]), realServer(3, [tcpCheck({ alpha: true })])]),
    ]);
    const p2 = new HealthPolicy(cfg2, h, p1);
    const d = p2.health().services[VS].dests;
    assert.equal(d['127.0.0.1:1'].up, false, 'failed server stays down');
    assert.equal(d['127.0.0.1:2'].up, true, 'healthy server stays up');
    assert.equal(d['127.0.0.1:3'].up, false, 'new alpha server starts down');
    assert.equal(bus.recent().filter((e) => e.type === 'rs-health').length - 0 >= 0, true);
    assert.equal(
      bus
        .recent()
        .slice(events)
        .filter((e) => e.type === 'rs-health').length,
      0,
      'no flap of unchanged servers',
    );
    // the retry already used carries over: one more failure takes server 2 down
    p2.report(p2.checkerKeys()[1], down);
    assert.equal(p2.health().services[VS].dests['127.0.0.1:2'].up, false);
    // server 1 removed on the next reload: logged, no longer in the view
    const p3 = new HealthPolicy(config([virtualServer([realServer(2, [c])])]), h, p2);
    assert.deepEqual(Object.keys(p3.health().services[VS].dests), ['127.0.0.1:2']);
  });
});

/** Flushes promise callbacks between fake-clock steps. */
const settle = () => new Promise((r) => setImmediate(r));
async function advance(clock: FakeClock, ms: number, step = 100) {
  for (let t = 0; t < ms; t += step) {
    clock.advance(Math.min(step, ms - t));
    await settle();
    await settle();
  }
}

function fakeDialer(state: { up: Set<number>; hang: Set<number>; calls: number[] }): Dialer {
  return {
    connectTcp: (o) => {
      state.calls.push(o.port);
      if (state.hang.has(o.port))
        return new Promise((_res, rej) =>
          o.signal.addEventListener('abort', () => rej(Object.assign(new Error('t'), { code: 'ETIMEDOUT' }))),
        );
      if (state.up.has(o.port)) return Promise.resolve({ destroy() {} } as never);
      return Promise.reject(Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }));
    },
    udpExchange: async () => ({ kind: 'silence' }),
    ping: async () => false,
  };
}

const nullRunner: ProcessRunner = { run: async () => ({ exitCode: 0, signal: null, timedOut: false, stdout: '' }) };

describe('CheckManager with a FakeClock', () => {
  it('staggers first probes, retries after delay_before_retry, never blocks on a hung server', async () => {
    const clock = new FakeClock();
    const state = { up: new Set([1, 2, 3]), hang: new Set<number>(), calls: [] as number[] };
    const c = tcpCheck({ retry: 1, delayBeforeRetry: 2, delayLoop: 6, connectTimeout: 3 });
    const cfg = config([virtualServer([1, 2, 3].map((p) => realServer(p, [c])))]);
    const m = new CheckManager({
      config: cfg,
      clock,
      dialer: fakeDialer(state),
      runner: nullRunner,
      logger: new MemoryLogger(),
      events: new EventBus(),
    });
    const views: boolean[] = [];
    m.onChange((v) => views.push(v.services[VS].dests['127.0.0.1:2'].up));
    m.start();
    await advance(clock, 1);
    assert.deepEqual(state.calls, [1], 'first probe at 0');
    await advance(clock, 2000);
    assert.deepEqual(state.calls, [1, 2], 'second at delay_loop/3');
    await advance(clock, 2000);
    assert.deepEqual(state.calls, [1, 2, 3]);
    // server 2 hangs: its probe times out after connect_timeout(+grace); server 3 keeps its rhythm
    state.hang.add(2);
    state.calls.length = 0;
    await advance(clock, 8000);
    assert.ok(state.calls.includes(3) && state.calls.includes(1), 'others keep being probed');
    assert.equal(m.health().services[VS].dests['127.0.0.1:2'].up, true, 'one failure is retried first');
    await advance(clock, 8000);
    assert.equal(m.health().services[VS].dests['127.0.0.1:2'].up, false);
    assert.ok(m.snapshot().scheduler.timeouts >= 2);
    state.hang.delete(2);
    await advance(clock, 7000);
    assert.equal(m.health().services[VS].dests['127.0.0.1:2'].up, true);
    assert.deepEqual(views.filter((v, i) => i === 0 || v !== views[i - 1]).slice(-2), [false, true]);
    m.stop();
    assert.equal(clock.pending(), 0, 'stop cancels every timer');
    assert.equal(m.health().services[VS].dests['127.0.0.1:2'].inPool, false, 'stopped: nothing in the pool');
    m.start();
    assert.equal(m.health().services[VS].dests['127.0.0.1:2'].inPool, true, 'restart begins afresh');
    m.stop();
  });

  it('warmup delays the first probe randomly, alpha + quorum with the manager', async () => {
    const clock = new FakeClock();
    const state = { up: new Set([1]), hang: new Set<number>(), calls: [] as number[] };
    const c = tcpCheck({ warmup: 10, delayLoop: 5 });
    const cfg = config([virtualServer([realServer(1, [c])], { alpha: true })]);
    const bus = new EventBus();
    const m = new CheckManager({
      config: cfg,
      clock,
      dialer: fakeDialer(state),
      runner: nullRunner,
      logger: new MemoryLogger(),
      events: bus,
      random: () => 0.5,
    });
    m.start();
    assert.equal(m.health().services[VS].quorumUp, false);
    await advance(clock, 4900);
    assert.equal(state.calls.length, 0);
    await advance(clock, 200);
    assert.equal(state.calls.length, 1);
    assert.equal(m.health().services[VS].quorumUp, true);
    assert.ok(bus.recent().some((e) => e.type === 'vs-quorum' && e.up));
    m.stop();
  });

  it('reload keeps an unchanged failed server down and runs notify scripts through the runner', async () => {
    const clock = new FakeClock();
    const state = { up: new Set([2]), hang: new Set<number>(), calls: [] as number[] };
    const ran: string[][] = [];
    const runner: ProcessRunner = {
      run: async (argv: readonly string[], _o?: RunOptions) => {
        ran.push([...argv]);
        return { exitCode: 0, signal: null, timedOut: false, stdout: '' };
      },
    };
    const c = tcpCheck();
    const mk = (w: number) =>
      config([
        virtualServer([realServer(1, [c], { notifyDown: script('/bin/down') }), realServer(2, [c], { weight: w })]),
      ]);
    const m = new CheckManager({
      config: mk(1),
      clock,
      dialer: fakeDialer(state),
      runner,
      logger: new MemoryLogger(),
      events: new EventBus(),
    });
    m.start();
    await advance(clock, 1000);
    assert.equal(m.health().services[VS].dests['127.0.0.1:1'].up, false);
    assert.deepEqual(ran, [['/bin/down']]);
    m.reload(mk(3));
    assert.equal(m.health().services[VS].dests['127.0.0.1:1'].up, false);
    assert.equal(m.health().services[VS].dests['127.0.0.1:2'].weight, 3);
    assert.deepEqual(ran, [['/bin/down']], 'no flap on reload');
    m.stop();
  });
});
