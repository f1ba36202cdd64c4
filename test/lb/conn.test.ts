import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { DroppedConns } from '../../src/lb/table.js';
import { client, destParams, mustApply, tableWith, udp } from './helpers.js';

test('persistence: same client -> same dest while the template lives', () => {
  const { table, clock, key } = tableWith('rr', [1, 1, 1], { params: { persistentTimeout: 60 } });
  const first = table.open(key, client(1, 1000))!;
  for (let p = 1001; p < 1010; p++) assert.equal(table.open(key, client(1, p))!.dest.address, first.dest.address);
  // another client is scheduled normally (rr moves on)
  assert.notEqual(table.open(key, client(2))!.dest.address, first.dest.address);
  const tmpl = table.connections().filter((c) => c.template);
  assert.equal(tmpl.length, 2);
  assert.equal(tmpl[0].state, 'NONE');
  assert.equal(table.snapshot().services[0].dests.find((d) => d.address === first.dest.address)!.persistConns, 1);
  table.dispose();
  void clock;
});

test('persistence granularity: clients in one /24 share a template', () => {
  const { table, key } = tableWith('rr', [1, 1, 1, 1], { params: { persistentTimeout: 300, persistentPrefixLen: 24 } });
  const a = table.open(key, { address: '10.1.2.3', port: 1 })!.dest.address;
  assert.equal(table.open(key, { address: '10.1.2.200', port: 2 })!.dest.address, a);
  assert.notEqual(table.open(key, { address: '10.1.3.1', port: 3 })!.dest.address, a);
  assert.equal(table.connections().filter((c) => c.template)[0].client.address, '10.1.2.0');
  table.dispose();
});

test('template outlives its timeout while it controls connections, then expires', () => {
  const { table, clock, key } = tableWith('rr', [1, 1], { params: { persistentTimeout: 10 } });
  const h = table.open(key, client(1))!;
  h.setState('ESTABLISHED');
  clock.advance(30_000);
  assert.equal(table.connections().filter((c) => c.template).length, 1, 'controls a live conn');
  assert.equal(table.open(key, client(1, 2))!.dest.address, h.dest.address);
  h.close();
  // the second conn (SYN_RECV, 60 s) still holds it
  clock.advance(61_000);
  clock.advance(11_000);
  assert.equal(table.connectionCount(), 0);
  // a new client with the same address may land elsewhere now (rr moved on)
  assert.ok(table.open(key, client(1)));
  table.dispose();
});

test('template to a removed dest is not reused; a quiesced one is, unless expireQuiescentTemplate', () => {
  const { table, key } = tableWith('rr', [1, 1, 1], { params: { persistentTimeout: 60 } });
  const a = table.open(key, client(1))!.dest.address;
  mustApply(table, { op: 'edit-dest', key, dest: { address: a, port: 80 }, params: destParams({ weight: 0 }) });
  assert.equal(
    table.open(key, client(1))!.dest.address,
    a,
    'IPVS default: persistent client follows a quiesced server',
  );
  table.expireQuiescentTemplate = true;
  assert.notEqual(table.open(key, client(1))!.dest.address, a);
  table.expireQuiescentTemplate = false;
  const b = table.open(key, client(1))!.dest.address;
  mustApply(table, { op: 'del-dest', key, dest: { address: b, port: 80 } });
  const c = table.open(key, client(1));
  assert.ok(c && c.dest.address !== b);
  table.dispose();
});

test('expiry follows the state timeouts and packets re-arm the timer (FakeClock)', () => {
  const { table, clock, key } = tableWith('rr', [1]);
  const h = table.open(key, client(1))!;
  assert.equal(h.idleTimeoutMs(), 60_000, 'SYN_RECV');
  h.setState('ESTABLISHED');
  assert.equal(h.idleTimeoutMs(), 900_000);
  clock.advance(899_000);
  h.countIn(1, 100);
  clock.advance(899_000);
  assert.equal(table.connectionCount(), 1);
  h.setState('FIN_WAIT');
  clock.advance(119_000);
  assert.equal(table.connectionCount(), 1);
  clock.advance(2_000);
  assert.equal(table.connectionCount(), 0);
  assert.equal(h.alive, false);
  h.countIn(1, 1); // no-op on a gone entry
  const d = table.snapshot().services[0].dests[0];
  assert.equal(d.inactConns + d.activeConns, 0);
  table.dispose();
});

test('set-timeouts (ipvsadm --set) changes tcp, tcpfin, udp; 0 keeps a value', () => {
  const { table, clock } = tableWith('rr', [1], { key: udp('198.18.0.53', 53) });
  mustApply(table, { op: 'set-timeouts', tcp: 0, tcpfin: 30, udp: 5 });
  assert.deepEqual(table.snapshot().timeouts, { tcp: 900, tcpfin: 30, udp: 5 });
  const h = table.open(udp('198.18.0.53', 53), client(1))!;
  assert.equal(h.idleTimeoutMs(), 5000);
  const lc = table.connections()[0];
  assert.equal(lc.state, 'UDP');
  assert.equal(lc.protocol, 'udp');
  assert.equal(lc.expiresInMs, 5000);
  clock.advance(6000);
  assert.equal(table.connectionCount(), 0);
  const bad = table.apply({ op: 'set-timeouts', tcp: -1, tcpfin: 0, udp: 0 });
  assert.equal(bad.ok ? '' : bad.error.code, 'invalid');
  table.dispose();
});

test('UDP stays InActConn; counters per service and dest', () => {
  const { table, key } = tableWith('rr', [1], { key: udp('198.18.0.53', 53) });
  const h = table.open(key, client(1))!;
  h.countIn(2, 200);
  h.countOut(1, 50);
  const s = table.snapshot().services[0];
  assert.deepEqual(s.stats, { conns: 1, inPkts: 2, outPkts: 1, inBytes: 200, outBytes: 50 });
  assert.deepEqual(s.dests[0].stats, s.stats);
  assert.equal(s.dests[0].inactConns, 1);
  mustApply(table, { op: 'zero', key });
  assert.equal(table.snapshot().services[0].stats.inBytes, 0);
  assert.equal(table.snapshot().services[0].dests[0].inactConns, 1, 'zero keeps connection counts');
  table.dispose();
});

test('estimator: 2-second EWMA converges to the real rates', () => {
  const { table, clock, key } = tableWith('rr', [1]);
  for (let tick = 0; tick < 40; tick++) {
    for (let i = 0; i < 20; i++) {
      const h = table.open(key, client(i))!; // 10 conns/s
      h.countIn(5, 5000); // 50 pkt/s, 50000 B/s
      h.close();
    }
    clock.advance(2000);
  }
  const r = table.snapshot().services[0].rates;
  assert.equal(r.cps, 10);
  assert.equal(r.inPps, 50);
  assert.ok(Math.abs(r.inBps - 50000) <= 1, `inBps ${r.inBps}`);
  assert.equal(r.outPps, 0);
  // no traffic: the average decays by 1/4 per tick
  clock.advance(2000);
  assert.ok(table.snapshot().services[0].rates.cps < 10);
  table.dispose();
});

test('del-dest keeps its connections (trash) by default; expireNodestConn drops and reports them', () => {
  const kept = tableWith('rr', [1, 1]);
  const h = kept.table.open(kept.key, client(1))!;
  mustApply(kept.table, { op: 'del-dest', key: kept.key, dest: h.dest });
  assert.equal(h.alive, true);
  assert.equal(kept.table.connections().length, 1);
  // re-adding revives the same dest with its connection count
  mustApply(kept.table, { op: 'add-dest', key: kept.key, dest: h.dest, params: destParams() });
  assert.equal(kept.table.snapshot().services[0].dests.find((d) => d.address === h.dest.address)!.inactConns, 1);
  kept.table.dispose();

  const events: DroppedConns[] = [];
  const dropped = tableWith('rr', [1, 1], { expireNodestConn: true, onConnsDropped: (e) => events.push(e) });
  const a = dropped.table.open(dropped.key, client(1))!;
  const b = dropped.table.open(dropped.key, client(2))!;
  mustApply(dropped.table, { op: 'del-dest', key: dropped.key, dest: a.dest });
  assert.equal(a.alive, false);
  assert.equal(b.alive, true);
  assert.equal(events.length, 1);
  assert.equal(events[0].conns.length, 1);
  assert.equal(events[0].conns[0].client.address, client(1).address);
  dropped.table.dispose();
});

test('one-packet scheduling: the entry does not outlive the packet', () => {
  const { table, clock, key } = tableWith('rr', [1, 1], { key: udp('198.18.0.53', 53), params: { ops: true } });
  const picks = [0, 1, 2, 3].map(() => table.open(key, client(1, 5353))!.dest.address);
  assert.notEqual(picks[0], picks[1], 'every datagram is scheduled');
  const one = table.open(key, client(2))!;
  assert.equal(one.oneShot, true);
  assert.equal(one.idleTimeoutMs(), 300_000, 'the reply path may live for the UDP timeout');
  clock.advance(1000);
  assert.equal(table.connectionCount(), 0);
  table.dispose();
});

test('IPv6 services, clients and /64 persistence', () => {
  const { table, key } = tableWith('rr', [], {
    key: { kind: 'addr', protocol: 'tcp', family: 6, address: '2001:db8::100', port: 443 },
    params: { persistentTimeout: 60, persistentPrefixLen: 64 },
  });
  mustApply(table, { op: 'add-dest', key, dest: { address: '2001:db8:1::1', port: 443 }, params: destParams() });
  mustApply(table, { op: 'add-dest', key, dest: { address: '2001:db8:1::2', port: 443 }, params: destParams() });
  const a = table.open(key, { address: '2001:db8:9:9::1', port: 1 })!;
  assert.equal(table.open(key, { address: '2001:db8:9:9::ffff', port: 2 })!.dest.address, a.dest.address);
  const conns = table.connections();
  assert.equal(conns.find((c) => c.template)!.client.address, '2001:db8:9:9::');
  assert.equal(conns.find((c) => !c.template)!.client.address, '2001:db8:9:9::1');
  table.dispose();
});

test('re-arming earlier takes effect: ESTABLISHED (900 s) -> CLOSE (10 s)', () => {
  const { table, clock, key } = tableWith('rr', [1]);
  const h = table.open(key, client(1))!;
  h.setState('ESTABLISHED');
  clock.advance(5000);
  h.setState('CLOSE');
  clock.advance(9000);
  assert.equal(h.alive, true);
  clock.advance(2000);
  assert.equal(h.alive, false);
  table.dispose();
});

test('estimator arithmetic matches ip_vs_est.c on a single tick', () => {
  const { table, clock, key } = tableWith('rr', [1]);
  for (let i = 0; i < 10; i++) table.open(key, client(i))!.countIn(1, 1000);
  clock.advance(2000);
  // cps: (10 << 9) / 4 = 1280 -> (1280 + 0x1ff) >> 10 = 1; inbps: (10000 << 4) / 4 = 40000 -> (40000 + 15) >> 5 = 1250
  const r = table.snapshot().services[0].rates;
  assert.equal(r.cps, 1);
  assert.equal(r.inPps, 1);
  assert.equal(r.inBps, 1250);
  assert.deepEqual(table.snapshot().services[0].dests[0].rates, r);
  table.dispose();
});

test('many connections: counts stay consistent through expiry and closes', () => {
  const { table, clock, key } = tableWith('wlc', [1, 2, 3]);
  const handles = Array.from({ length: 3000 }, (_, i) => table.open(key, client(i))!);
  handles.forEach((h, i) => {
    if (i % 3 === 0) h.setState('ESTABLISHED');
    if (i % 5 === 0) h.close();
  });
  const sum = () => table.snapshot().services[0].dests.reduce((a, d) => a + d.activeConns + d.inactConns, 0);
  assert.equal(sum(), table.connectionCount());
  assert.equal(table.connections().length, table.connectionCount());
  clock.advance(61_000); // SYN_RECV ones expire
  assert.equal(sum(), table.connectionCount());
  assert.equal(table.connectionCount(), handles.filter((_, i) => i % 3 === 0 && i % 5 !== 0).length);
  clock.advance(900_000);
  assert.equal(table.connectionCount(), 0);
  assert.equal(sum(), 0);
  table.dispose();
});
