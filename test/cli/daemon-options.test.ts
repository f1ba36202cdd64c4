import assert from 'node:assert/strict';
import { test } from 'node:test';
import { daemonOptions } from '../../src/cli/daemon-options.js';
import { parseKeepvsArgs } from '../../src/cli/keepvs-args.js';

test('--proxy-protocol, --expire-nodest-conn and --udp-flows reach the options the LVS worker is given', () => {
  const r = parseKeepvsArgs(['--proxy-protocol', 'v2', '--expire-nodest-conn', '--udp-flows=100']);
  assert.ok(r.ok);
  assert.deepEqual(daemonOptions(r.value, '/etc/keepalived/keepalived.conf').proxyOptions, {
    proxyProtocol: 'v2',
    expireNodestConn: true,
    udpFlows: 100,
  });
  const none = parseKeepvsArgs([]);
  assert.ok(none.ok);
  assert.deepEqual(daemonOptions(none.value, '/k.conf').proxyOptions, { expireNodestConn: false });
  for (const bad of [['--proxy-protocol', 'v3'], ['--udp-flows', '0'], ['--expire-nodest-conn=1']]) {
    const b = parseKeepvsArgs(bad);
    assert.equal(b.ok, false, bad.join(' '));
  }
});
