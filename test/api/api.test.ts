import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RateHistory } from '../../src/api/history.js';
import { buildApi } from '../../src/api/server.js';
import type { AdminAction, DaemonStatus, StatusSource } from '../../src/api/types.js';
import { WEB_ROOT } from '../../src/daemon/main.js';
import { EventBus } from '../../src/util/events.js';

function source() {
  const bus = new EventBus();
  const actions: AdminAction[] = [];
  const status: DaemonStatus = {
    version: 'test',
    configFile: '/etc/keepalived/keepalived.conf',
    startedAt: 0,
    workers: [{ role: 'lvs', state: 'running', restarts: 2 }],
    vrrp: [
      {
        name: 'VI_1',
        state: 'MASTER',
        vrid: 51,
        priority: 100,
        effectivePriority: 90,
        vips: ['198.18.0.100/32'],
        lastTransitions: [],
        stats: { advert_sent: 5 },
      },
    ],
    lvs: {
      table: {
        services: [
          {
            key: { kind: 'addr', protocol: 'tcp', family: 4, address: '198.18.0.100', port: 80 },
            id: 'tcp:198.18.0.100:80',
            scheduler: 'wlc',
            schedFlags: [],
            ops: false,
            stats: { conns: 10, inPkts: 1, outPkts: 2, inBytes: 3, outBytes: 4 },
            rates: { cps: 1, inPps: 0, outPps: 0, inBps: 0, outBps: 0 },
            dests: [
              {
                id: '10.0.0.1:80',
                address: '10.0.0.1',
                port: 80,
                family: 4,
                forward: 'masq',
                weight: 3,
                uThreshold: 0,
                lThreshold: 0,
                activeConns: 4,
                inactConns: 1,
                persistConns: 0,
                overloaded: false,
                stats: { conns: 10, inPkts: 1, outPkts: 2, inBytes: 3, outBytes: 4 },
                rates: { cps: 1, inPps: 0, outPps: 0, inBps: 0, outBps: 0 },
              },
            ],
          },
        ],
        timeouts: { tcp: 900, tcpfin: 120, udp: 300 },
        connTableSize: 4096,
        syncDaemons: [],
      },
      checks: {
        servers: [
          {
            service: 'tcp:198.18.0.100:80',
            dest: '10.0.0.1:80',
            up: false,
            weight: 3,
            checkers: [{ type: 'TCP_CHECK', up: false, reason: 'refused', latencyMs: 1.5, consecutiveFailures: 3 }],
            since: 1000,
          },
        ],
        detail: { running: true, services: [], scheduler: {} as never, probes: {} },
      },
      dataplane: {
        kind: 'proxy',
        workers: 1,
        diagnostics: [],
        services: [
          {
            id: 'tcp:198.18.0.100:80',
            key: { kind: 'addr', protocol: 'tcp', family: 4, address: '198.18.0.100', port: 80 },
            protocol: 'tcp',
            listener: 'listening',
            boundPort: 80,
            noDest: 7,
            connectFailures: 0,
            open: 0,
            dests: [],
          },
        ],
      },
    },
    maintenance: false,
  };
  const src: StatusSource = {
    status: () => status,
    events: () => bus.recent(),
    subscribe: (l) => bus.subscribe(l),
    act: async (a) => {
      actions.push(a);
      return a.action === 'drain' && a.dest === 'nope' ? { ok: false, error: 'no such real server' } : { ok: true };
    },
  };
  return { src, bus, actions };
}

test('GET /api/v1/status and /api/v1/events', async () => {
  const { src, bus } = source();
  const app = buildApi(src, { token: 'secret', webRoot: WEB_ROOT });
  bus.emit({
    type: 'rs-health',
    service: 'tcp:198.18.0.100:80',
    dest: '10.0.0.1:80',
    up: false,
    reason: 'refused',
    at: 1,
  });
  const st = await app.inject({ method: 'GET', url: '/api/v1/status' });
  assert.equal(st.statusCode, 200);
  assert.equal(st.json().vrrp[0].state, 'MASTER');
  const ev = await app.inject({ method: 'GET', url: '/api/v1/events' });
  assert.equal(ev.json().events[0].reason, 'refused');
  await app.close();
});

test('actions need the bearer token and valid bodies; results and refusals are reported', async () => {
  const { src, actions } = source();
  const app = buildApi(src, { token: 'secret', webRoot: WEB_ROOT });
  const body = { service: 'tcp:198.18.0.100:80', dest: '10.0.0.1:80' };
  assert.equal((await app.inject({ method: 'POST', url: '/api/v1/actions/drain', payload: body })).statusCode, 401);
  assert.equal(
    (
      await app.inject({
        method: 'POST',
        url: '/api/v1/actions/drain',
        payload: body,
        headers: { authorization: 'Bearer wrong' },
      })
    ).statusCode,
    401,
  );
  const auth = { authorization: 'Bearer secret' };
  assert.equal(
    (await app.inject({ method: 'POST', url: '/api/v1/actions/drain', payload: body, headers: auth })).statusCode,
    200,
  );
  const bad = await app.inject({
    method: 'POST',
    url: '/api/v1/actions/weight',
    payload: { ...body, weight: 70000 },
    headers: auth,
  });
  assert.equal(bad.statusCode, 400);
  const extra = await app.inject({
    method: 'POST',
    url: '/api/v1/actions/drain',
    payload: { ...body, x: 1 },
    headers: auth,
  });
  assert.equal(extra.statusCode, 400);
  const refused = await app.inject({
    method: 'POST',
    url: '/api/v1/actions/drain',
    payload: { ...body, dest: 'nope' },
    headers: auth,
  });
  assert.equal(refused.statusCode, 409);
  assert.equal(refused.json().error, 'KV_API_ACTION_FAILED');
  assert.equal(
    (
      await app.inject({
        method: 'POST',
        url: '/api/v1/actions/weight',
        payload: { ...body, weight: 5 },
        headers: auth,
      })
    ).statusCode,
    200,
  );
  assert.deepEqual(
    actions.map((a) => a.action),
    ['drain', 'drain', 'weight'],
  );
  await app.close();
});

test('GET /metrics exposes VRRP, real-server and data-plane figures in Prometheus format', async () => {
  const { src, bus } = source();
  const app = buildApi(src, { token: 'secret', webRoot: WEB_ROOT });
  bus.emit({
    type: 'vrrp-state',
    instance: 'VI_1',
    from: 'BACKUP',
    to: 'MASTER',
    priority: 100,
    reason: 'timeout',
    at: 1,
  });
  const m = (await app.inject({ method: 'GET', url: '/metrics' })).body;
  assert.match(m, /^keepvs_vrrp_state\{vrrp_instance="VI_1"\} 2$/m);
  assert.match(m, /^keepvs_vrrp_effective_priority\{vrrp_instance="VI_1"\} 90$/m);
  assert.match(m, /^keepvs_vrrp_transitions_total\{vrrp_instance="VI_1",to="MASTER"\} 1$/m);
  assert.match(m, /^keepvs_real_server_weight\{service="tcp:198.18.0.100:80",real_server="10.0.0.1:80"\} 3$/m);
  assert.match(
    m,
    /^keepvs_real_server_active_connections\{service="tcp:198.18.0.100:80",real_server="10.0.0.1:80"\} 4$/m,
  );
  assert.match(m, /^keepvs_real_server_up\{service="tcp:198.18.0.100:80",real_server="10.0.0.1:80"\} 0$/m);
  assert.match(m, /^keepvs_service_no_destination_total\{service="tcp:198.18.0.100:80"\} 7$/m);
  assert.match(m, /^keepvs_checks_failed\{service="tcp:198.18.0.100:80",real_server="10.0.0.1:80"\} 1$/m);
  await app.close();
});

test('the dashboard is served', async () => {
  const { src } = source();
  const app = buildApi(src, { token: 'secret', webRoot: WEB_ROOT });
  const page = await app.inject({ method: 'GET', url: '/' });
  assert.equal(page.statusCode, 200);
  assert.match(page.body, /<title>keepvs<\/title>/);
  assert.equal((await app.inject({ method: 'GET', url: '/dashboard.js' })).statusCode, 200);
  await app.close();
});

test('GET /api/v1/history serves the sampled service rates', async () => {
  const { src } = source();
  const history = new RateHistory(5000, 2);
  for (const at of [1000, 6000, 11000]) history.sample(src.status(), at);
  const app = buildApi(src, { token: 'secret', webRoot: WEB_ROOT, history });
  const r = (await app.inject({ method: 'GET', url: '/api/v1/history' })).json();
  assert.equal(r.intervalMs, 5000);
  assert.deepEqual(
    r.samples.map((s: { at: number }) => s.at),
    [6000, 11000],
  );
  assert.deepEqual(r.samples[0].services['tcp:198.18.0.100:80'], {
    cps: 1,
    inPps: 0,
    outPps: 0,
    inBps: 0,
    outBps: 0,
    activeConns: 4,
  });
  await app.close();
});
