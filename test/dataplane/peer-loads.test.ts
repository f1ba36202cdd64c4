/** What the cluster primary tells each proxy worker about the connections the others hold. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type DataPlaneSnapshot, quietDestSnapshot } from '../../src/dataplane/port.js';
import { peerLoadsFor } from '../../src/dataplane/proxy/cluster.js';
import { serviceId } from '../../src/lb/types.js';
import { tcpKey } from './helpers.js';

const key = tcpKey(80, '198.18.0.100');

function report(dests: Record<number, [active: number, inact: number]>): DataPlaneSnapshot {
  return {
    kind: 'proxy',
    workers: 1,
    diagnostics: [],
    services: [
      {
        id: serviceId(key),
        key,
        protocol: 'tcp',
        listener: 'listening',
        boundPort: 80,
        noDest: 0,
        connectFailures: 0,
        open: 0,
        dests: Object.entries(dests).map(([port, [active, inact]]) =>
          quietDestSnapshot(`198.18.1.1:${port}`, { address: '198.18.1.1', port: Number(port) }, active, inact),
        ),
      },
    ],
  };
}

const loads = (index: number, latest: Map<number, DataPlaneSnapshot>) =>
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
