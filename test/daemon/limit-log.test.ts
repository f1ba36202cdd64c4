import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LimitLog } from '../../src/daemon/limit-log.js';
import type { DataPlaneSnapshot } from '../../src/dataplane/port.js';

const snap = (fdExhausted: number, udpFlowsDropped: number): DataPlaneSnapshot => ({
  kind: 'proxy',
  workers: 1,
  diagnostics: [],
  services: [
    {
      id: 'udp:127.0.0.1:53',
      key: { kind: 'addr', protocol: 'udp', family: 4, address: '127.0.0.1', port: 53 },
      protocol: 'udp',
      listener: 'listening',
      boundPort: 53,
      noDest: 0,
      connectFailures: 0,
      open: 0,
      dests: [],
      limits: { fdExhausted, udpFlowsDropped, udpFlowsEvicted: 0 },
    },
  ],
});

test('fd exhaustion and the UDP flow limit are logged when they grow, once per 10 s per service and kind', () => {
  const lines: string[] = [];
  const log = new LimitLog((m) => lines.push(m));
  log.report(snap(0, 0), 0);
  assert.deepEqual(lines, []);
  log.report(snap(3, 0), 1000);
  log.report(snap(9, 0), 2000);
  log.report(snap(9, 5), 3000);
  assert.equal(lines.length, 2, lines.join('\n'));
  assert.match(lines[0]!, /udp:127\.0\.0\.1:53: out of file descriptors .* \(3 so far\)/);
  assert.match(lines[1]!, /UDP flow limit reached.*\(5 so far\)/);
  log.report(snap(20, 5), 11_001);
  assert.match(lines.at(-1)!, /\(20 so far\)/);
  log.report(snap(20, 5), 30_000);
  assert.equal(lines.length, 3, 'no line while nothing grows');
});
