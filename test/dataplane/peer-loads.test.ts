/** What the cluster primary tells each proxy worker about the connections the others hold. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { peerLoadsFor } from '../../src/dataplane/proxy/cluster.js';
import { serviceId, type TableSnapshot } from '../../src/lb/types.js';
import { tcpKey } from './helpers.js';

const key = tcpKey(80, '198.18.0.100');
const ZERO_STATS = { conns: 0, inPkts: 0, outPkts: 0, inBytes: 0, outBytes: 0 };
const ZERO_RATES = { cps: 0, inPps: 0, outPps: 0, inBps: 0, outBps: 0 };

/** A worker's replica snapshot: its own Active/InAct per real server port. */
function report(dests: Record<number, [active: number, inact: number]>): TableSnapshot {
  return {
    timeouts: { tcp: 900, tcpfin: 120, udp: 300 },
    connTableSize: 4096,
    syncDaemons: [],
    services: [
      {
        id: serviceId(key),
        key,
        scheduler: 'wlc',
        schedFlags: [],
        ops: false,
        stats: ZERO_STATS,
        rates: ZERO_RATES,
        dests: Object.entries(dests).map(([port, [active, inact]]) => ({
          id: `198.18.1.1:${port}`,
          address: '198.18.1.1',
          port: Number(port),
          family: 4 as const,
          forward: 'masq' as const,
          weight: 1,
          uThreshold: 0,
          lThreshold: 0,
          activeConns: active,
          inactConns: inact,
          persistConns: 0,
          overloaded: false,
          stats: ZERO_STATS,
          rates: ZERO_RATES,
        })),
      },
    ],
  };
}

const loads = (index: number, latest: Map<number, TableSnapshot>) =>
  Object.fromEntries(peerLoadsFor(index, latest).map((l) => [l.dest.port, [l.active, l.inact]]));

test('each worker gets the sum of the other workers, not its own connections', () => {
  const latest = new Map([
    [0, report({ 8080: [1, 0], 8081: [0, 0] })],
    [1, report({ 8080: [2, 1], 8081: [5, 0] })],
    [2, report({ 8080: [3, 0], 8081: [0, 2] })],
  ]);
  assert.deepEqual(loads(0, latest), { 8080: [5, 1], 8081: [5, 2] });
  assert.deepEqual(loads(1, latest), { 8080: [4, 0], 8081: [0, 2] });
});

test('when the other worker is gone, its load is sent back as 0 instead of left stale', () => {
  const latest = new Map([
    [0, report({ 8080: [1, 0], 8081: [0, 0] })],
    [1, report({ 8080: [0, 0], 8081: [6, 1] })],
  ]);
  assert.deepEqual(loads(0, latest), { 8080: [0, 0], 8081: [6, 1] });
  latest.delete(1);
  assert.deepEqual(loads(0, latest), { 8080: [0, 0], 8081: [0, 0] });
});

test('a real server only the other worker still reports is passed on as is', () => {
  const latest = new Map([
    [0, report({ 8080: [0, 0] })],
    [1, report({ 8080: [1, 0], 8081: [2, 0] })],
  ]);
  assert.deepEqual(loads(0, latest), { 8080: [1, 0], 8081: [2, 0] });
});
