import assert from 'node:assert/strict';
import { test } from 'node:test';
import { diffTables, type TableState } from '../../src/lb/diff.js';
import { OperatorState } from '../../src/lb/operator.js';
import type { DestParams, ServiceKey, ServiceParams } from '../../src/lb/types.js';

const key: ServiceKey = { kind: 'addr', family: 4, protocol: 'tcp', address: '10.0.0.1', port: 80 };
const other: ServiceKey = { ...key, port: 81 };
const sp: ServiceParams = { scheduler: 'rr', schedFlags: [], ops: false };
const dp = (weight: number): DestParams => ({ forward: 'masq', weight, uThreshold: 0, lThreshold: 0 });
const rs = (n: number) => ({ address: `10.0.1.${n}`, port: 80 });

/** the desired table: real servers 1 and 2 with the given weights (undefined: down, left out) */
const desired = (w1: number | undefined, w2: number | undefined, params = sp): TableState => ({
  services: [
    {
      key,
      params,
      dests: [
        ...(w1 === undefined ? [] : [{ dest: rs(1), params: dp(w1) }]),
        ...(w2 === undefined ? [] : [{ dest: rs(2), params: dp(w2) }]),
      ],
    },
  ],
});
const weights = (t: TableState, k = key) =>
  Object.fromEntries(
    (t.services.find((s) => JSON.stringify(s.key) === JSON.stringify(k))?.dests ?? []).map((d) => [
      d.dest.address,
      d.params.weight,
    ]),
  );

test('a hand weight stays while that real server’s desired state is unchanged, and goes when it changes', () => {
  const op = new OperatorState();
  op.record({ op: 'edit-dest', key, dest: rs(1), params: dp(7) }, desired(1, 1));
  assert.deepEqual(weights(op.overlay(desired(1, 1))), { '10.0.1.1': 7, '10.0.1.2': 1 });
  // another server changes (down): rs1 keeps its hand weight
  assert.deepEqual(weights(op.overlay(desired(1, undefined))), { '10.0.1.1': 7 });
  // rs1's own state changes (down, then up): the hand weight is gone for good
  assert.deepEqual(weights(op.overlay(desired(undefined, 1))), { '10.0.1.2': 1 });
  assert.deepEqual(weights(op.overlay(desired(1, 1))), { '10.0.1.1': 1, '10.0.1.2': 1 });
  // a reload changing rs1's configured weight also ends it
  op.record({ op: 'edit-dest', key, dest: rs(1), params: dp(9) }, desired(1, 1));
  assert.deepEqual(weights(op.overlay(desired(3, 1))), { '10.0.1.1': 3, '10.0.1.2': 1 });
});

test('hand-added real servers and services are kept; a hand -d of a configured one lasts until it changes', () => {
  const op = new OperatorState();
  op.record({ op: 'add-dest', key, dest: rs(3), params: dp(2) }, desired(1, 1));
  op.record({ op: 'add-service', key: other, params: sp }, desired(1, 1));
  op.record({ op: 'add-dest', key: other, dest: rs(9), params: dp(1) }, desired(1, 1));
  op.record({ op: 'del-dest', key, dest: rs(2) }, desired(1, 1));
  const t = op.overlay(desired(4, 1));
  assert.deepEqual(weights(t), { '10.0.1.1': 4, '10.0.1.3': 2 });
  assert.deepEqual(weights(t, other), { '10.0.1.9': 1 });
  // rs2's checker changes it (down then up): it is back
  op.overlay(desired(4, undefined));
  assert.deepEqual(weights(op.overlay(desired(4, 1))), { '10.0.1.1': 4, '10.0.1.2': 1, '10.0.1.3': 2 });
  // the configuration names the hand-added one: the configuration takes it over
  const taken: TableState = {
    services: [
      { ...desired(4, 1).services[0]!, dests: [...desired(4, 1).services[0]!.dests, { dest: rs(3), params: dp(5) }] },
    ],
  };
  assert.equal(weights(op.overlay(taken))['10.0.1.3'], 5);
});

test('the state round-trips as plain data (what the supervisor keeps for the next worker), and applied it is stable', () => {
  const op = new OperatorState();
  op.record({ op: 'edit-service', key, params: { ...sp, scheduler: 'wlc' } }, desired(1, 1));
  op.record({ op: 'edit-dest', key, dest: rs(2), params: dp(0) }, desired(1, 1));
  op.record({ op: 'set-timeouts', tcp: 7, tcpfin: 0, udp: 0 }, desired(1, 1));
  const copy = new OperatorState(structuredClone(op.data()));
  const a = op.overlay(desired(1, 1));
  const b = copy.overlay(desired(1, 1));
  assert.deepEqual(b, a);
  assert.equal(b.services[0]!.params.scheduler, 'wlc');
  assert.deepEqual(copy.handTimeouts, { tcp: 7, tcpfin: 0, udp: 0 });
  assert.deepEqual(diffTables(a, copy.overlay(desired(1, 1))), []);
  // a reload changing the service's configuration ends the hand -E
  assert.equal(copy.overlay(desired(1, 1, { ...sp, scheduler: 'lc' })).services[0]!.params.scheduler, 'lc');
});

test('keepvsadm -C: configured services stay deleted until their configuration changes; hand ones are gone', () => {
  const op = new OperatorState();
  op.record({ op: 'add-service', key: other, params: sp }, desired(1, 1));
  op.record({ op: 'clear' }, desired(1, 1));
  assert.deepEqual(op.overlay(desired(1, 1)).services, []);
  assert.equal(op.overlay(desired(1, 1, { ...sp, scheduler: 'sh' })).services.length, 1);
});
