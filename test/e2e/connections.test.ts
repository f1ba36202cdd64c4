/**
 * GET /api/v1/connections on a daemon with the userspace proxy (loopback, two proxy workers):
 * the same entries as `keepvsadm -Lnc`, with ids, plane and kind; filters, the limit with its
 * totals, and 400s for bad parameters (the daemon keeps answering).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import type http from 'node:http';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { asLnc, type ConnectionRow, lncLines } from '../api/connection-rows.js';
import { CHROMIUM, CHROMIUM_ARGS } from './chromium.js';
import { type DaemonUnderTest, freePort, get, httpRealServer, LongLived, startDaemon, until } from './harness.js';

let d: DaemonUnderTest;
const servers: http.Server[] = [];
const rsPorts: number[] = [];
let vip = 0;
let sticky = 0;
const clients: LongLived[] = [];

type Row = ConnectionRow;
interface Listing {
  total: number;
  matched: number;
  returned: number;
  truncated: boolean;
  limit: number;
  connections: Row[];
}

const list = async (query = '') => {
  const r = await get(d.apiPort, `/api/v1/connections${query}`);
  return { status: r.status, body: JSON.parse(r.body) };
};
const listing = async (query = ''): Promise<Listing> => {
  const r = await list(query);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body as Listing;
};

before(async () => {
  for (let i = 0; i < 2; i++) rsPorts.push(await freePort());
  vip = await freePort();
  sticky = await freePort();
  for (let i = 0; i < 2; i++) servers.push(await httpRealServer(rsPorts[i], `rs${i}`));
  const rs = (p: number) => `  real_server 127.0.0.1 ${p} {\n    TCP_CHECK {\n      connect_timeout 1\n    }\n  }`;
  const config = `global_defs {\n  router_id CONNS\n}
virtual_server 127.0.0.1 ${vip} {\n  delay_loop 1\n  lvs_sched rr\n  protocol TCP\n${rs(rsPorts[0])}\n${rs(rsPorts[1])}\n}
virtual_server 127.0.0.1 ${sticky} {\n  delay_loop 1\n  lvs_sched rr\n  persistence_timeout 60\n  protocol TCP\n${rs(rsPorts[1])}\n}\n`;
  d = await startDaemon(
    config,
    ['--dataplane-workers=2'],
    (s) => s.lvs?.checks.servers.length === 3 && s.lvs.checks.servers.every((x) => x.up),
  );
  for (let i = 0; i < 4; i++) clients.push(await LongLived.open(vip));
  clients.push(await LongLived.open(sticky));
  for (const c of clients) assert.match(await c.ask(), /^rs[01]$/);
});

after(async () => {
  for (const c of clients) c.close();
  await d?.stop();
  for (const s of servers) {
    s.closeAllConnections();
    s.close();
  }
});

const VS = () => `tcp:127.0.0.1:${vip}`;
const STICKY = () => `tcp:127.0.0.1:${sticky}`;

test('the API lists what keepvsadm -Lnc lists, with service and real server ids, plane and kind', async () => {
  // both read the same entries: 4 + 1 established connections and the sticky service's template
  const l = await until('six entries', async () => {
    const x = await listing();
    return x.total === 6 ? x : undefined;
  });
  const lnc = await d.keepvsadm('-Lnc');
  assert.deepEqual(l.connections.map(asLnc).sort(), lncLines(lnc).sort(), lnc);
  assert.deepEqual([l.matched, l.returned, l.truncated, l.limit], [6, 6, false, 1000]);
  for (const r of l.connections) {
    assert.equal(r.plane, 'proxy');
    assert.equal(r.family, 4);
    assert.equal(r.realServer, `127.0.0.1:${r.destination.port}`);
    assert.ok(r.expire > 0 && r.expire <= 900, `expire ${r.expire}`);
  }
  const template = l.connections.filter((r) => r.kind === 'template');
  assert.equal(template.length, 1);
  assert.deepEqual(
    [template[0].service, template[0].source.port, template[0].state, template[0].realServer],
    [STICKY(), 0, 'NONE', `127.0.0.1:${rsPorts[1]}`],
  );
  assert.ok(template[0].expire <= 60);
  const conns = l.connections.filter((r) => r.kind === 'connection');
  assert.equal(conns.length, 5);
  assert.ok(conns.every((r) => r.state === 'ESTABLISHED'));
  assert.equal(conns.filter((r) => r.service === VS()).length, 4);
});

test('filters: service, real server, state, kind, plane; the limit says what it left out', async () => {
  const byService = await listing(`?service=${encodeURIComponent(VS())}`);
  assert.deepEqual([byService.total, byService.matched], [6, 4]);
  assert.ok(byService.connections.every((r) => r.service === VS()));
  // rr over two real servers: two each; a real server of both services counts in both
  const rs1 = await listing(`?real_server=127.0.0.1:${rsPorts[1]}`);
  assert.equal(rs1.matched, 4, JSON.stringify(rs1.connections));
  const rs1InVs = await listing(`?service=${encodeURIComponent(VS())}&real_server=127.0.0.1:${rsPorts[1]}`);
  assert.equal(rs1InVs.matched, 2);
  assert.equal((await listing('?kind=template')).matched, 1);
  assert.equal((await listing(`?kind=connection&service=${encodeURIComponent(STICKY())}`)).matched, 1);
  assert.equal((await listing('?state=ESTABLISHED')).matched, 5);
  assert.equal((await listing('?state=TIME_WAIT')).matched, 0);
  assert.equal((await listing('?plane=kernel')).matched, 0);
  const cut = await listing('?limit=2');
  assert.deepEqual([cut.total, cut.matched, cut.returned, cut.truncated, cut.limit], [6, 6, 2, true, 2]);
  assert.equal(cut.connections.length, 2);
  // an IPv6 id in another spelling names the same (canonical) real server: none here, but accepted
  assert.equal((await listing('?real_server=[2001:db8:0::11]:80')).matched, 0);
});

test('/metrics: PersistConn per real server, as keepvsadm -L --persistent-conn shows it', async () => {
  // the status (which /metrics reads) takes the proxy workers' counts within a second or two
  const m = await until('PersistConn in /metrics', async () => {
    const text = (await get(d.apiPort, '/metrics')).body;
    return /^keepvs_real_server_persistent_connections\{[^}]*\} 1$/m.test(text) ? text : undefined;
  });
  const series = (port: number) =>
    new RegExp(
      `^keepvs_real_server_persistent_connections\\{service="${STICKY()}",real_server="127\\.0\\.0\\.1:${port}"\\} (\\d+)$`,
      'm',
    ).exec(m)?.[1];
  assert.equal(
    series(rsPorts[1]),
    '1',
    m
      .split('\n')
      .filter((l) => l.includes('persistent'))
      .join('\n'),
  );
  assert.match(
    m,
    new RegExp(`persistent_connections\\{service="${VS()}",real_server="127\\.0\\.0\\.1:${rsPorts[0]}"\\} 0$`, 'm'),
  );
  assert.match(
    await d.keepvsadm('-Ln', '--persistent-conn', '-t', `127.0.0.1:${sticky}`),
    new RegExp(`127\\.0\\.0\\.1:${rsPorts[1]}\\s+1\\s+1\\s+`),
  );
});

test('bad parameters: 400 with the parameter named, and the daemon keeps answering', async () => {
  for (const [q, word] of [
    ['?limit=0', 'limit'],
    ['?limit=100001', 'limit'],
    ['?limit=abc', 'limit'],
    ['?state=established', 'state'],
    ['?kind=flow', 'kind'],
    ['?plane=bpf', 'plane'],
    ['?service=nonsense', 'service'],
    ['?service=tcp:300.1.1.1:80', 'service'],
    ['?service=group:web:tcp', 'virtual_server_group'],
    ['?real_server=127.0.0.1:99999', 'real_server'],
    ['?real_server=127.0.0.1', 'real_server'],
    ['?sevice=tcp:127.0.0.1:80', 'sevice'],
    [`?service=${'x'.repeat(300)}`, 'service'],
  ] as const) {
    const r = await list(q);
    assert.equal(r.status, 400, `${q}: ${JSON.stringify(r.body)}`);
    assert.match(String(r.body.message), new RegExp(word), `${q}: ${r.body.message}`);
  }
  assert.equal((await listing()).total, 6);
});

test('the OpenAPI description has the route and its parameters', async () => {
  const doc = JSON.parse((await get(d.apiPort, '/api/v1/openapi.json')).body);
  const op = doc.paths['/api/v1/connections']?.get;
  assert.ok(op, 'route described');
  assert.deepEqual(
    op.parameters.map((p: { name: string }) => p.name),
    ['service', 'real_server', 'state', 'kind', 'plane', 'limit'],
  );
  assert.deepEqual(Object.keys(op.responses), ['200', '400', '503']);
});

test('dashboard: a service lists its connection entries while its list is open', {
  skip: !existsSync(CHROMIUM) && 'Debian chromium is not installed',
}, async () => {
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`http://127.0.0.1:${d.apiPort}/`);
    await page.waitForSelector('body[data-ready="1"]', { timeout: 30000 });
    const sticky = page.locator(`details.conns[data-service="${STICKY()}"]`);
    // the status the summary counts from takes the proxy workers' counts within a second or two
    await until('the summary counts the sticky connection', async () =>
      /Connections: 1 active, 0 inactive/.test((await sticky.locator('summary').textContent()) ?? ''),
    );
    await sticky.locator('summary').click();
    await sticky.locator('table.conns tbody tr').nth(1).waitFor({ timeout: 10000 });
    const text = (await sticky.textContent()) ?? '';
    assert.match(text, /2 entries/);
    assert.match(text, /template/);
    assert.match(text, /ESTABLISHED/);
    assert.match(text, new RegExp(`127\\.0\\.0\\.1:${rsPorts[1]}`));
    // the list survives the once-a-second re-render, and the other service's stays closed
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal(await sticky.locator('table.conns tbody tr').count(), 2);
    assert.equal(await page.locator(`details.conns[data-service="${VS()}"] table.conns`).count(), 0);
    mkdirSync('test-output', { recursive: true });
    // the page, not the element: the services re-render every second (a held element detaches)
    await page.screenshot({ path: join('test-output', 'dashboard-connections.png'), fullPage: true });
  } finally {
    await browser.close();
  }
});
