import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LbTable } from '../../src/lb/table.js';
import { FakeClock } from '../../src/util/clock.js';
import { client, destParams, mustApply, svcParams, tableWith, tcp, udp } from './helpers.js';

test('add/edit/del service and dest with IPVS errors', () => {
  const table = new LbTable({ clock: new FakeClock() });
  const key = tcp('198.18.0.100', 80);
  mustApply(table, { op: 'add-service', key, params: svcParams() });
  const again = table.apply({ op: 'add-service', key, params: svcParams() });
  assert.equal(again.ok ? '' : again.error.code, 'service-exists');
  const none = table.apply({ op: 'edit-service', key: tcp('198.18.0.101', 80), params: svcParams() });
  assert.equal(none.ok ? '' : none.error.code, 'no-service');
  const badSched = table.apply({ op: 'edit-service', key, params: svcParams({ scheduler: 'nope' }) });
  assert.equal(badSched.ok ? '' : badSched.error.code, 'no-scheduler');
  const protoName = table.apply({ op: 'edit-service', key, params: svcParams({ scheduler: 'constructor' }) });
  assert.equal(protoName.ok ? '' : protoName.error.code, 'no-scheduler');
  const dest = { address: '198.18.1.1', port: 80 };
  mustApply(table, { op: 'add-dest', key, dest, params: destParams() });
  const dup = table.apply({ op: 'add-dest', key, dest, params: destParams() });
  assert.equal(dup.ok ? '' : dup.error.code, 'dest-exists');
  const noDest = table.apply({ op: 'edit-dest', key, dest: { address: '198.18.1.2', port: 80 }, params: destParams() });
  assert.equal(noDest.ok ? '' : noDest.error.code, 'no-dest');
  const badWeight = table.apply({ op: 'edit-dest', key, dest, params: destParams({ weight: 70000 }) });
  assert.equal(badWeight.ok ? '' : badWeight.error.code, 'invalid');
  const zeroPort = table.apply({ op: 'add-service', key: tcp('198.18.0.100', 0), params: svcParams() });
  assert.equal(zeroPort.ok ? '' : zeroPort.error.code, 'invalid');
  mustApply(table, { op: 'add-service', key: tcp('198.18.0.100', 0), params: svcParams({ persistentTimeout: 360 }) });
  const opsTcp = table.apply({ op: 'add-service', key: tcp('198.18.0.102', 80), params: svcParams({ ops: true }) });
  assert.equal(opsTcp.ok ? '' : opsTcp.error.code, 'invalid');
  mustApply(table, { op: 'add-service', key: udp('198.18.0.102', 53), params: svcParams({ ops: true }) });
  mustApply(table, { op: 'del-dest', key, dest });
  const gone = table.apply({ op: 'del-dest', key, dest });
  assert.equal(gone.ok ? '' : gone.error.code, 'no-dest');
  mustApply(table, { op: 'del-service', key });
  assert.equal(table.snapshot().services.length, 2);
  mustApply(table, { op: 'clear' });
  assert.equal(table.snapshot().services.length, 0);
  table.dispose();
});

test('destinations list newest first (IPVS list_add at the head)', () => {
  const { table } = tableWith('rr', [1, 1, 1]);
  assert.deepEqual(
    table.snapshot().services[0].dests.map((d) => d.address),
    ['198.18.1.3', '198.18.1.2', '198.18.1.1'],
  );
  table.dispose();
});

test('open accounts InActConn, ESTABLISHED moves to ActiveConn, close releases', () => {
  const { table } = tableWith('rr', [1]);
  const h = table.open(tcp('198.18.0.100', 80), client(1))!;
  assert.ok(h);
  const d = () => table.snapshot().services[0].dests[0];
  assert.equal(d().inactConns, 1);
  assert.equal(d().activeConns, 0);
  h.setState('ESTABLISHED');
  assert.equal(d().activeConns, 1);
  assert.equal(d().inactConns, 0);
  h.setState('FIN_WAIT');
  assert.equal(d().activeConns, 0);
  assert.equal(d().inactConns, 1);
  h.setState('ESTABLISHED');
  h.close();
  h.close();
  assert.equal(d().activeConns, 0);
  assert.equal(d().inactConns, 0);
  assert.equal(d().stats.conns, 1);
  table.dispose();
});

test('no destination is null and counted', () => {
  const { table, key } = tableWith('wlc', [0, 0]);
  assert.equal(table.open(key, client(1)), null);
  assert.equal(table.snapshot().services[0].noDest, 1);
  assert.equal(table.open(tcp('198.18.0.99', 80), client(1)), null);
  assert.equal(table.noServiceCount(), 1);
  table.dispose();
});

test('applyAll tolerates replays and reports what still fails', () => {
  const table = new LbTable({ clock: new FakeClock() });
  const key = tcp('198.18.0.100', 80);
  const dest = { address: '198.18.1.1', port: 80 };
  const ops = [
    { op: 'add-service', key, params: svcParams() },
    { op: 'add-dest', key, dest, params: destParams({ weight: 2 }) },
  ] as const;
  assert.deepEqual(table.applyAll(ops), []);
  assert.deepEqual(table.applyAll(ops), []);
  assert.deepEqual(
    table.applyAll([
      { op: 'del-dest', key, dest },
      { op: 'del-dest', key, dest },
    ]),
    [],
  );
  assert.deepEqual(
    table.applyAll([
      { op: 'del-service', key },
      { op: 'del-service', key },
    ]),
    [],
  );
  const errors = table.applyAll([{ op: 'edit-service', key, params: svcParams() }]);
  assert.equal(errors.length, 1);
  assert.equal(errors[0].error.code, 'no-service');
  table.dispose();
});

test('canonical addresses: IPv6 written differently is the same service', () => {
  const table = new LbTable({ clock: new FakeClock() });
  mustApply(table, { op: 'add-service', key: tcp('2001:DB8:0:0::1', 80), params: svcParams() });
  const dup = table.apply({ op: 'add-service', key: tcp('2001:db8::1', 80), params: svcParams() });
  assert.equal(dup.ok ? '' : dup.error.code, 'service-exists');
  assert.equal(table.snapshot().services[0].id, 'tcp:[2001:db8::1]:80');
  const bad = table.apply({ op: 'add-service', key: tcp('2001:db8::zz', 80), params: svcParams() });
  assert.equal(bad.ok ? '' : bad.error.code, 'invalid');
  table.dispose();
});

test('fwmark services: protocol from the open hint, persistence per client', () => {
  const table = new LbTable({ clock: new FakeClock() });
  const key = { kind: 'fwmark', family: 4, fwmark: 7 } as const;
  mustApply(table, { op: 'add-service', key, params: svcParams({ scheduler: 'rr', persistentTimeout: 30 }) });
  mustApply(table, { op: 'add-dest', key, dest: { address: '198.18.1.1', port: 0 }, params: destParams() });
  mustApply(table, { op: 'add-dest', key, dest: { address: '198.18.1.2', port: 0 }, params: destParams() });
  const a = table.open(key, client(1), { protocol: 'udp' })!;
  assert.equal(table.open(key, client(1, 999), { protocol: 'tcp' })!.dest.address, a.dest.address);
  const conns = table.connections().filter((c) => !c.template);
  assert.deepEqual(
    conns.map((c) => [c.protocol, c.state]),
    [
      ['udp', 'UDP'],
      ['tcp', 'SYN_RECV'],
    ],
  );
  assert.equal(table.snapshot().services[0].id, 'fwm:7:4');
  table.dispose();
});
