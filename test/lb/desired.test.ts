import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { RealServer, VirtualServer, VirtualServerGroup } from '../../src/config/model.js';
import {
  desiredTable,
  type HealthInput,
  liveWeight,
  quorumHeld,
  realServerId,
  timeoutsOp,
  virtualServerId,
} from '../../src/lb/desired.js';
import { diffTables, tableStateOf } from '../../src/lb/diff.js';
import { LbTable } from '../../src/lb/table.js';
import { FakeClock } from '../../src/util/clock.js';

const loc = { file: 'test.conf', line: 1, col: 1 };

function rs(address: string, over: Partial<RealServer> = {}): RealServer {
  return {
    address,
    family: 4,
    port: 80,
    weight: 1,
    method: 'NAT',
    uthreshold: 0,
    lthreshold: 0,
    inhibitOnFailure: false,
    alpha: false,
    checkers: [],
    loc,
    ...over,
  };
}

function vs(over: Partial<VirtualServer> = {}): VirtualServer {
  return {
    key: { kind: 'address', address: '198.18.0.100', family: 4, port: 80 },
    protocol: 'TCP',
    scheduler: 'wlc',
    schedFlags: [],
    ops: false,
    method: 'NAT',
    delayLoop: 60,
    haSuspend: false,
    alpha: false,
    omega: false,
    quorum: 1,
    hysteresis: 0,
    inhibitOnFailure: false,
    sorryServerInhibit: false,
    realServers: [rs('198.18.1.1'), rs('198.18.1.2', { weight: 3 })],
    loc,
    ...over,
  };
}

const down = (v: VirtualServer, ...addrs: string[]): HealthInput => ({
  realServers: {
    [virtualServerId(v)]: Object.fromEntries(
      addrs.map((a) => [realServerId({ address: a, port: 80, family: 4 }), { up: false }]),
    ),
  },
});

test('maps a virtual_server to a service: NAT->masq, DR->route, TUN->tunnel, granularity mask -> prefix', () => {
  const v = vs({
    persistenceTimeout: 360,
    persistenceGranularity: '255.255.255.0',
    schedFlags: ['sh-port'],
    realServers: [
      rs('198.18.1.1', { method: 'DR' }),
      rs('198.18.1.2', { method: 'TUN' }),
      rs('198.18.1.3', { port: 0 }),
    ],
    tunnel: { type: 'gue', port: 6080, csum: 'csum' },
  });
  const d = desiredTable({ virtualServers: [v], virtualServerGroups: [] });
  assert.deepEqual(d.diagnostics, []);
  const s = d.services[0];
  assert.deepEqual(s.key, { kind: 'addr', protocol: 'tcp', family: 4, address: '198.18.0.100', port: 80 });
  assert.equal(s.params.persistentPrefixLen, 24);
  assert.equal(s.params.persistentTimeout, 360);
  assert.deepEqual(
    s.dests.map((x) => [x.dest.address, x.dest.port, x.params.forward]),
    [
      ['198.18.1.1', 80, 'route'],
      ['198.18.1.2', 80, 'tunnel'],
      ['198.18.1.3', 80, 'masq'],
    ],
  );
  assert.equal(s.dests[1].params.tunType, 'gue');
  assert.equal(s.dests[1].params.tunPort, 6080);
  const bad = desiredTable({
    virtualServers: [vs({ persistenceGranularity: '255.0.255.0' })],
    virtualServerGroups: [],
  });
  assert.equal(bad.diagnostics.length, 1);
});

test('virtual_server_group expands ranges and fwmarks to one service each', () => {
  const group: VirtualServerGroup = {
    name: 'web',
    loc,
    entries: [
      { kind: 'address', address: '198.18.0.10', lastAddress: '198.18.0.12', family: 4, port: 80, loc },
      { kind: 'address', address: '2001:db8::1', lastAddress: '2001:db8::1', family: 6, port: 443, loc },
      { kind: 'fwmark', fwmark: 7, family: 4, loc },
    ],
  };
  const v = vs({ key: { kind: 'group', group: 'web' }, realServers: [rs('198.18.1.1', { port: 0 })] });
  const d = desiredTable({ virtualServers: [v], virtualServerGroups: [group] });
  assert.deepEqual(
    d.services.map((s) => (s.key.kind === 'addr' ? `${s.key.address}:${s.key.port}` : `fwm${s.key.fwmark}`)),
    ['198.18.0.10:80', '198.18.0.11:80', '198.18.0.12:80', '2001:db8::1:443', 'fwm7'],
  );
  assert.equal(d.services[0].dests[0].dest.port, 80, 'RS port 0 takes the entry port');
  const missing = desiredTable({ virtualServers: [v], virtualServerGroups: [] });
  assert.equal(missing.services.length, 0);
  assert.match(missing.diagnostics[0], /no such virtual_server_group/);
});

test('down RS is removed, or weight 0 with inhibit_on_failure; dynamic weight applies', () => {
  const v = vs({ realServers: [rs('198.18.1.1'), rs('198.18.1.2', { inhibitOnFailure: true }), rs('198.18.1.3')] });
  const h: HealthInput = {
    realServers: {
      [virtualServerId(v)]: {
        '198.18.1.1:80': { up: false },
        '198.18.1.2:80': { up: false },
        '198.18.1.3:80': { up: true, weight: 7 },
      },
    },
  };
  const s = desiredTable({ virtualServers: [v], virtualServerGroups: [] }, h).services[0];
  assert.deepEqual(
    s.dests.map((x) => [x.dest.address, x.params.weight]),
    [
      ['198.18.1.2', 0],
      ['198.18.1.3', 7],
    ],
  );
});

test('alpha starts real servers down until health says otherwise', () => {
  const v = vs({ alpha: true });
  assert.equal(desiredTable({ virtualServers: [v], virtualServerGroups: [] }).services[0].dests.length, 0);
});

test('quorum lost + sorry server: real servers pulled, sorry installed; regained: reversed', () => {
  const v = vs({
    quorum: 3,
    sorryServer: { address: '198.18.9.9', family: 4, port: 0 },
    realServers: [rs('198.18.1.1', { weight: 2 }), rs('198.18.1.2', { weight: 2, inhibitOnFailure: true })],
  });
  const cfg = { virtualServers: [v], virtualServerGroups: [] };
  const ok = desiredTable(cfg).services[0];
  assert.deepEqual(
    ok.dests.map((d) => d.dest.address),
    ['198.18.1.1', '198.18.1.2'],
  );
  const lost = desiredTable(cfg, down(v, '198.18.1.2')).services[0];
  assert.deepEqual(
    lost.dests.map((d) => [d.dest.address, d.dest.port, d.params.weight]),
    [
      ['198.18.1.2', 80, 0],
      ['198.18.9.9', 80, 1],
    ],
  );
  // explicit quorum from the checker subsystem (hysteresis) wins over the computed one
  const held = desiredTable(cfg, { ...down(v, '198.18.1.2'), quorum: { [virtualServerId(v)]: true } }).services[0];
  assert.deepEqual(
    held.dests.map((d) => d.dest.address),
    ['198.18.1.1', '198.18.1.2'],
  );
  // sorry_server_inhibit keeps the sorry server at weight 0 while quorum holds
  const inhibit = desiredTable({ virtualServers: [{ ...v, sorryServerInhibit: true }], virtualServerGroups: [] });
  assert.deepEqual(
    inhibit.services[0].dests.map((d) => [d.dest.address, d.params.weight]),
    [
      ['198.18.1.1', 2],
      ['198.18.1.2', 2],
      ['198.18.9.9', 0],
    ],
  );
  // the diff of a swap adds the sorry server before it deletes the real server
  const ops = diffTables({ services: [ok] }, { services: [lost] });
  assert.deepEqual(
    ops.map((o) => o.op),
    ['edit-dest', 'add-dest', 'del-dest'],
  );
});

test('diff: applied ops reach the desired state, diff(x, x) = [], replay is harmless', () => {
  const table = new LbTable({ clock: new FakeClock() });
  const v1 = vs();
  const v2 = vs({
    key: { kind: 'address', address: '198.18.0.101', family: 4, port: 443 },
    scheduler: 'rr',
    realServers: [rs('198.18.1.5', { port: 443 })],
  });
  const d1 = desiredTable({ virtualServers: [v1, v2], virtualServerGroups: [] });
  const ops1 = diffTables(tableStateOf(table.snapshot()), d1);
  assert.deepEqual(table.applyAll(ops1), []);
  assert.deepEqual(diffTables(tableStateOf(table.snapshot()), d1), []);
  assert.deepEqual(table.applyAll(ops1), [], 'replaying the same ops is harmless');
  assert.deepEqual(diffTables(tableStateOf(table.snapshot()), d1), []);
  // change: v1 scheduler + one RS down, v2 removed
  const v1b = { ...v1, scheduler: 'sh' };
  const d2 = desiredTable({ virtualServers: [v1b], virtualServerGroups: [] }, down(v1b, '198.18.1.1'));
  const ops2 = diffTables(tableStateOf(table.snapshot()), d2);
  assert.deepEqual(
    ops2.map((o) => o.op),
    ['edit-service', 'del-dest', 'del-service'],
  );
  assert.deepEqual(table.applyAll(ops2), []);
  assert.deepEqual(diffTables(tableStateOf(table.snapshot()), d2), []);
  table.dispose();
});

test('diff leaves unmanaged (hand-added) services alone', () => {
  const table = new LbTable({ clock: new FakeClock() });
  const d = desiredTable({ virtualServers: [vs()], virtualServerGroups: [] });
  table.applyAll(diffTables(tableStateOf(table.snapshot()), d));
  table.apply({
    op: 'add-service',
    key: { kind: 'fwmark', family: 4, fwmark: 9 },
    params: { scheduler: 'rr', schedFlags: [], ops: false },
  });
  const managed = new Set(d.services.map((s) => (s.key.kind === 'addr' ? `tcp:${s.key.address}:${s.key.port}` : '')));
  assert.deepEqual(diffTables(tableStateOf(table.snapshot()), d, { managed }), []);
  assert.equal(diffTables(tableStateOf(table.snapshot()), d).length, 1);
  table.dispose();
});

test('diff idempotence (property): random desired states converge in one apply', () => {
  const arbVs = fc.record({
    port: fc.integer({ min: 1, max: 3 }),
    sched: fc.constantFrom('rr', 'wlc', 'sh', 'mh'),
    rs: fc.uniqueArray(fc.record({ host: fc.integer({ min: 1, max: 5 }), w: fc.integer({ min: 0, max: 4 }) }), {
      selector: (r) => r.host,
      maxLength: 4,
    }),
  });
  fc.assert(
    fc.property(
      fc.array(fc.uniqueArray(arbVs, { selector: (x) => x.port, maxLength: 3 }), { minLength: 1, maxLength: 4 }),
      (states) => {
        const table = new LbTable({ clock: new FakeClock() });
        for (const st of states) {
          const d = desiredTable({
            virtualServers: st.map((x) =>
              vs({
                key: { kind: 'address', address: '198.18.0.100', family: 4, port: x.port },
                scheduler: x.sched,
                realServers: x.rs.map((r) => rs(`198.18.1.${r.host}`, { weight: r.w })),
              }),
            ),
            virtualServerGroups: [],
          });
          assert.deepEqual(diffTables(d, d), [], 'diff(x, x) = []');
          assert.deepEqual(table.applyAll(diffTables(tableStateOf(table.snapshot()), d)), []);
          assert.deepEqual(diffTables(tableStateOf(table.snapshot()), d), []);
        }
        table.dispose();
      },
    ),
    { numRuns: 100 },
  );
});

test('quorum with hysteresis (update_quorum_state) and live weight', () => {
  const v = vs({ quorum: 4, hysteresis: 1 });
  assert.equal(liveWeight(v), 4);
  assert.equal(liveWeight(v, down(v, '198.18.1.2')), 1);
  // held: lost only below quorum - hysteresis (3) or at 0
  assert.equal(quorumHeld(v, 3, true), true);
  assert.equal(quorumHeld(v, 2, true), false);
  // not held: gained only at quorum + hysteresis (5)
  assert.equal(quorumHeld(v, 4, false), false);
  assert.equal(quorumHeld(v, 5, false), true);
  assert.equal(quorumHeld({ quorum: 0, hysteresis: 0 }, 0, undefined), false);
  assert.equal(quorumHeld(v, 4), true);
});

test('lvs_timeouts become a set-timeouts op', () => {
  assert.equal(timeoutsOp({}), null);
  assert.deepEqual(timeoutsOp({ lvsTimeouts: { tcp: 7200, udp: 60 } }), {
    op: 'set-timeouts',
    tcp: 7200,
    tcpfin: 0,
    udp: 60,
  });
});

test('proxy_protocol from the config is a service parameter, and a change of it is an edit-service', () => {
  const base = vs({ realServers: [rs('198.18.1.1')] });
  const with1 = desiredTable({ virtualServers: [{ ...base, proxyProtocol: 'v1' }], virtualServerGroups: [] });
  assert.equal(with1.services[0].params.proxyProtocol, 'v1');
  const without = desiredTable({ virtualServers: [base], virtualServerGroups: [] });
  const have = { services: without.services.map((s) => ({ key: s.key, params: s.params, dests: s.dests })) };
  const ops = diffTables(have, {
    services: with1.services.map((s) => ({ key: s.key, params: s.params, dests: s.dests })),
  });
  assert.deepEqual(
    ops.map((o) => o.op),
    ['edit-service'],
  );
});
