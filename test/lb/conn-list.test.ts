import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type ConnGroup, listConnections, parseConnQuery } from '../../src/lb/conn-list.js';
import type { ConnSnapshot } from '../../src/lb/types.js';

const conn = (over: Partial<ConnSnapshot> = {}): ConnSnapshot => ({
  protocol: 'tcp',
  client: { address: '198.18.0.10', port: 40000 },
  virtual: { address: '198.18.0.100', port: 80 },
  dest: { address: '198.18.1.11', port: 80 },
  family: 4,
  state: 'ESTABLISHED',
  expiresInMs: 899_001,
  template: false,
  service: 'tcp:198.18.0.100:80',
  realServer: '198.18.1.11:80',
  ...over,
});

const groups: ConnGroup[] = [
  {
    plane: 'proxy',
    conns: [conn(), conn({ template: true, state: 'NONE', client: { address: '198.18.0.10', port: 0 } })],
  },
  {
    plane: 'kernel',
    conns: [
      conn({ service: 'tcp:198.18.0.100:81', state: 'TIME_WAIT', expiresInMs: 100_000 }),
      conn({ service: 'tcp:198.18.0.100:82', pinned: true, state: 'NONE', realServer: '198.18.1.12:82' }),
    ],
  },
  { plane: 'kernel', synced: true, conns: [conn({ realServer: undefined, dest: { address: '0.0.0.0', port: 0 } })] },
];

test('rows mirror -Lnc columns (expire in seconds, rounded up as -Lnc prints it) with plane and kind', () => {
  const l = listConnections(groups, { limit: 1000 });
  assert.deepEqual([l.total, l.matched, l.returned, l.truncated], [5, 5, 5, false]);
  assert.deepEqual(l.connections[0], {
    protocol: 'tcp',
    expire: 900,
    state: 'ESTABLISHED',
    source: { address: '198.18.0.10', port: 40000 },
    virtual: { address: '198.18.0.100', port: 80 },
    destination: { address: '198.18.1.11', port: 80 },
    family: 4,
    service: 'tcp:198.18.0.100:80',
    realServer: '198.18.1.11:80',
    plane: 'proxy',
    kind: 'connection',
  });
  assert.deepEqual(
    l.connections.map((r) => `${r.plane} ${r.kind}`),
    ['proxy connection', 'proxy template', 'kernel connection', 'kernel pinned', 'kernel synced'],
  );
  assert.equal('realServer' in l.connections[4], false);
});

test('filters combine; the limit keeps -Lnc order and counts what it left out', () => {
  const n = (q: Parameters<typeof listConnections>[1]) => listConnections(groups, q).matched;
  assert.equal(n({ limit: 10, plane: 'kernel' }), 3);
  assert.equal(n({ limit: 10, kind: 'pinned' }), 1);
  assert.equal(n({ limit: 10, state: 'NONE' }), 2);
  assert.equal(n({ limit: 10, service: 'tcp:198.18.0.100:80' }), 3);
  assert.equal(n({ limit: 10, service: 'tcp:198.18.0.100:80', plane: 'proxy', kind: 'template' }), 1);
  assert.equal(n({ limit: 10, realServer: '198.18.1.12:82' }), 1);
  const cut = listConnections(groups, { limit: 2, plane: 'kernel' });
  assert.deepEqual([cut.total, cut.matched, cut.returned, cut.truncated], [5, 3, 2, true]);
  assert.deepEqual(
    cut.connections.map((r) => r.state),
    ['TIME_WAIT', 'NONE'],
  );
});

test('entries a plane cannot list are reported by count, under the same filters', () => {
  const u = {
    service: 'tcp:[2001:2::100]:86',
    realServer: '[2001:2:0:1::11]:86',
    kind: 'pinned',
    count: 3,
    reason: 'r',
  } as const;
  const g: ConnGroup[] = [...groups, { plane: 'kernel', conns: [], unlisted: [u] }];
  const all = listConnections(g, { limit: 10 });
  assert.deepEqual(all.unlisted, [{ ...u, plane: 'kernel' }]);
  assert.equal(all.total, 5, 'not in total');
  for (const q of [
    { kind: 'pinned' },
    { state: 'NONE' },
    { service: u.service },
    { realServer: u.realServer },
  ] as const)
    assert.equal(listConnections(g, { limit: 10, ...q }).unlisted.length, 1, JSON.stringify(q));
  for (const q of [
    { kind: 'connection' },
    { state: 'ESTABLISHED' },
    { plane: 'proxy' },
    { service: 'tcp:198.18.0.100:80' },
    { realServer: '198.18.1.11:80' },
  ] as const)
    assert.equal(listConnections(g, { limit: 10, ...q }).unlisted.length, 0, JSON.stringify(q));
});

test('query: ids canonicalized, a default limit, each bad parameter named', () => {
  const q = parseConnQuery({ service: 'tcp:[2001:db8:0:0::100]:80', real_server: '[2001:DB8::11]:80', limit: '5' });
  assert.deepEqual(q, {
    ok: true,
    value: { service: 'tcp:[2001:db8::100]:80', realServer: '[2001:db8::11]:80', limit: 5 },
  });
  assert.deepEqual(parseConnQuery({ service: 'fwm:7:4', state: 'UDP' }), {
    ok: true,
    value: { service: 'fwm:7:4', state: 'UDP', limit: 1000 },
  });
  for (const [raw, word] of [
    [{ service: 'tcp:198.18.0.100' }, /^service: /],
    [{ service: 'group:web:tcp' }, /virtual_server_group/],
    [{ real_server: '198.18.1.11:65536' }, /^real_server: /],
    [{ state: 'established' }, /^state: .* ESTABLISHED/],
    [{ kind: 'flows' }, /^kind: /],
    [{ plane: 'tc' }, /^plane: /],
    [{ limit: 0 }, /^limit: /],
    [{ limit: '1e3' }, /^limit: /],
    [{ limit: 100_001 }, /^limit: /],
    [{ limt: '5' } as object, /unknown parameter "limt"/],
  ] as const) {
    const r = parseConnQuery(raw);
    assert.equal(r.ok, false, JSON.stringify(raw));
    if (!r.ok) assert.match(r.error, word);
  }
});
