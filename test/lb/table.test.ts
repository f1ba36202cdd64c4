import assert from 'node:assert/strict';
import { test } from 'node:test';
import { desiredTable, healthKey } from '../../src/lb/desired.js';
import { diffTables } from '../../src/lb/diff.js';
import { VirtualServerTable } from '../../src/lb/table.js';
import type { DestParams, ServiceKey, ServiceParams } from '../../src/lb/types.js';
import { FakeClock } from '../../src/util/clock.js';
import { parse } from '../config/helpers.js';

const key: ServiceKey = { kind: 'addr', protocol: 'tcp', family: 4, address: '198.18.0.100', port: 80 };
const svc = (over: Partial<ServiceParams> = {}): ServiceParams => ({
  scheduler: 'rr',
  schedFlags: [],
  ops: false,
  ...over,
});
const dp = (over: Partial<DestParams> = {}): DestParams => ({
  forward: 'masq',
  weight: 1,
  uThreshold: 0,
  lThreshold: 0,
  ...over,
});
const client = (n: number) => ({ address: `192.0.2.${n}`, port: 40000 + n });

function table(params = svc()) {
  const clock = new FakeClock();
  const t = new VirtualServerTable(clock);
  assert.ok(t.apply({ op: 'add-service', key, params }).ok);
  return { t, clock };
}

test('ops fail as ipvsadm reports them', () => {
  const { t } = table();
  const e = (r: ReturnType<typeof t.apply>) => (r.ok ? 'ok' : r.error.message);
  assert.equal(e(t.apply({ op: 'add-service', key, params: svc() })), 'Service already exists');
  const other: ServiceKey = { ...key, port: 81 };
  assert.equal(e(t.apply({ op: 'del-service', key: other })), 'No such service');
  assert.equal(
    e(t.apply({ op: 'add-dest', key: other, dest: { address: '10.0.0.1', port: 80 }, params: dp() })),
    'No such service',
  );
  assert.equal(e(t.apply({ op: 'add-dest', key, dest: { address: '10.0.0.1', port: 80 }, params: dp() })), 'ok');
  assert.equal(
    e(t.apply({ op: 'add-dest', key, dest: { address: '10.0.0.1', port: 80 }, params: dp() })),
    'Destination already exists',
  );
  assert.equal(
    e(t.apply({ op: 'edit-dest', key, dest: { address: '10.0.0.2', port: 80 }, params: dp() })),
    'No such destination',
  );
  assert.match(
    e(t.apply({ op: 'add-service', key: other, params: svc({ scheduler: 'best' }) })),
    /^Scheduler or persistence engine not found/,
  );
  assert.match(e(t.apply({ op: 'add-service', key: { ...key, port: 0 }, params: svc() })), /zero port/);
  assert.match(
    e(t.apply({ op: 'add-dest', key, dest: { address: '10.0.0.3', port: 80 }, params: dp({ weight: 70000 }) })),
    /weight/,
  );
});

test('new connections are inactive, ESTABLISHED counts active, close releases', () => {
  const { t } = table();
  t.apply({ op: 'add-dest', key, dest: { address: '10.0.0.1', port: 80 }, params: dp() });
  const c = t.open(key, client(1))!;
  const d = () => t.snapshot().services[0].dests[0];
  assert.deepEqual([d().activeConns, d().inactConns], [0, 1]);
  c.setState('ESTABLISHED');
  assert.deepEqual([d().activeConns, d().inactConns], [1, 0]);
  c.setState('FIN_WAIT');
  assert.deepEqual([d().activeConns, d().inactConns], [0, 1]);
  c.countIn(2, 100);
  c.countOut(3, 1000);
  c.close();
  c.close();
  assert.deepEqual([d().activeConns, d().inactConns], [0, 0]);
  assert.deepEqual(d().stats, { conns: 1, inPkts: 2, outPkts: 3, inBytes: 100, outBytes: 1000 });
});

test('weight 0 takes no new connections; existing ones continue', () => {
  const { t } = table();
  t.apply({ op: 'add-dest', key, dest: { address: '10.0.0.1', port: 80 }, params: dp() });
  const c = t.open(key, client(1))!;
  c.setState('ESTABLISHED');
  t.apply({ op: 'edit-dest', key, dest: { address: '10.0.0.1', port: 80 }, params: dp({ weight: 0 }) });
  assert.equal(t.open(key, client(2)), null);
  assert.equal(t.noDestination.get('tcp:198.18.0.100:80'), 1);
  assert.equal(t.snapshot().services[0].dests[0].activeConns, 1);
});

test('OVERLOAD is set at the upper threshold and cleared below the lower (or 3/4 of the upper)', () => {
  const { t } = table();
  t.apply({ op: 'add-dest', key, dest: { address: '10.0.0.1', port: 80 }, params: dp({ uThreshold: 4 }) });
  const conns = [1, 2, 3, 4].map((n) => t.open(key, client(n))!);
  assert.equal(t.snapshot().services[0].dests[0].overloaded, true);
  assert.equal(t.open(key, client(9)), null);
  conns[0].close();
  assert.equal(t.snapshot().services[0].dests[0].overloaded, true, '3 of 4 is not below 3/4');
  conns[1].close();
  assert.equal(t.snapshot().services[0].dests[0].overloaded, false);
});

test('persistence: a client (masked by the granularity) sticks to its server while the template lives', () => {
  const { t, clock } = table(svc({ persistentTimeout: 60, persistentPrefixLen: 24 }));
  for (let i = 1; i <= 3; i++)
    t.apply({ op: 'add-dest', key, dest: { address: `10.0.0.${i}`, port: 80 }, params: dp() });
  const a = t.open(key, { address: '192.0.2.10', port: 1 })!;
  const b = t.open(key, { address: '192.0.2.77', port: 2 })!; // same /24
  assert.equal(b.dest.address, a.dest.address);
  assert.equal(t.snapshot().services[0].dests.find((d) => d.address === a.dest.address)!.persistConns, 1);
  a.close();
  b.close();
  clock.advance(59_000);
  t.tick();
  assert.equal(t.open(key, { address: '192.0.2.5', port: 3 })!.dest.address, a.dest.address);
  clock.advance(61_000);
  t.tick();
  const tmpl = t.connections().filter((c) => c.template);
  assert.equal(tmpl.length, 1, 'template kept while it controls an open connection');
});

test('the estimator averages per-second rates over 2-second ticks', () => {
  const { t, clock } = table();
  t.apply({ op: 'add-dest', key, dest: { address: '10.0.0.1', port: 80 }, params: dp() });
  t.start();
  for (let s = 0; s < 40; s++) {
    for (let i = 0; i < 10; i++) t.open(key, client(i))?.close();
    clock.advance(1000);
  }
  const r = t.snapshot().services[0].rates.cps;
  assert.ok(r >= 9 && r <= 10, `cps ${r}`);
  t.stop();
});

test('set-timeouts changes the idle timeouts; 0 keeps a value', () => {
  const { t } = table();
  t.apply({ op: 'set-timeouts', tcp: 30, tcpfin: 0, udp: 5 });
  assert.deepEqual(t.snapshot().timeouts, { tcp: 30, tcpfin: 120, udp: 5 });
});

const CONF = `virtual_server 198.18.0.100 80 {
  lb_algo wrr
  persistence_timeout 30
  persistence_granularity 255.255.255.0
  quorum 2
  sorry_server 10.9.9.9 8080
  real_server 10.0.0.1 80 {
    weight 2
  }
  real_server 10.0.0.2 80 {
    weight 3
    inhibit_on_failure
  }
}
virtual_server_group G {
  198.18.0.200-201 443
  fwmark 7
}
virtual_server group G {
  real_server 10.0.0.5 443
}`;

test('desired table from config: methods, persistence mask, groups expanded', () => {
  const r = parse(CONF);
  assert.equal(r.usable, true, JSON.stringify(r.diagnostics));
  const d = desiredTable(r.config!);
  assert.deepEqual([...d.keys()], ['tcp:198.18.0.100:80', 'tcp:198.18.0.200:443', 'tcp:198.18.0.201:443', 'fwm:7:4']);
  const s = d.get('tcp:198.18.0.100:80')!;
  assert.equal(s.params.persistentPrefixLen, 24);
  assert.equal(s.dests.get('10.0.0.2:80')!.params.weight, 3);
});

test('down servers are removed, or kept at weight 0 with inhibit_on_failure; lost quorum installs the sorry server', () => {
  const config = parse(CONF).config!;
  const sid = 'tcp:198.18.0.100:80';
  const down = {
    dests: new Map([
      [healthKey(sid, '10.0.0.1:80'), { up: false }],
      [healthKey(sid, '10.0.0.2:80'), { up: false }],
    ]),
    quorumUp: new Map<string, boolean>(),
  };
  const d1 = desiredTable(config, down).get(sid)!;
  assert.deepEqual([...d1.dests.keys()], ['10.0.0.2:80']);
  assert.equal(d1.dests.get('10.0.0.2:80')!.params.weight, 0);
  const lost = { ...down, quorumUp: new Map([[sid, false]]) };
  const d2 = desiredTable(config, lost).get(sid)!;
  assert.deepEqual([...d2.dests.keys()], ['10.9.9.9:8080']);
  const ops = diffTables(desiredTable(config), desiredTable(config, lost));
  assert.deepEqual(
    ops.map((o) => o.op),
    ['del-dest', 'del-dest', 'add-dest'],
  );
  assert.deepEqual(diffTables(desiredTable(config), desiredTable(config)), []);
});

test('applying a diff twice is harmless (idempotent replay)', () => {
  const config = parse(CONF).config!;
  const t = new VirtualServerTable(new FakeClock());
  const ops = diffTables(new Map(), desiredTable(config));
  assert.ok(t.applyAll(ops).every((r) => r.ok));
  const again = t.applyAll(ops);
  assert.ok(again.every((r) => !r.ok && (r.error.code === 'service-exists' || r.error.code === 'dest-exists')));
  assert.equal(t.snapshot().services.length, 4);
});
