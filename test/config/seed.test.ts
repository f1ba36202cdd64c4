import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '../../src/config/index.js';
import { nodeConfigFs } from '../../src/os/config-fs.js';

const fixtures = join(process.cwd(), 'test', 'fixtures', 'conf');
const load = (name: string) => loadConfig(join(fixtures, name), { fs: nodeConfigFs, configId: 'lb1' });

test('seed: NetSeek LVS-DR config loads as keepalived reads it', () => {
  const r = load('seed-netseek.conf');
  assert.equal(r.usable, true, JSON.stringify(r.diagnostics));
  const c = r.config!;
  assert.equal(c.globalDefs.routerId, 'LVS_DEVEL');
  assert.deepEqual(c.globalDefs.notificationEmail, ['cnseek@']);
  assert.deepEqual(c.globalDefs.smtpServer, { host: '127.0.0.1', port: 25 });
  const vi = c.vrrpInstances[0];
  assert.equal(vi.name, 'VI_1');
  assert.equal(vi.initialState, 'MASTER');
  assert.equal(vi.vrid, 51);
  assert.equal(vi.version, 2);
  assert.deepEqual(vi.authentication, { type: 'PASS', pass: '1111' });
  assert.equal(vi.virtualIpaddresses[0].address, '61.164.122.8');
  assert.equal(vi.virtualIpaddresses[0].prefixLen, 32);
  const vs = c.virtualServers[0];
  assert.deepEqual(vs.key, { kind: 'address', address: '61.164.122.8', family: 4, port: 80 });
  assert.equal(vs.scheduler, 'wrr');
  assert.equal(vs.method, 'DR');
  assert.equal(vs.persistenceTimeout, 60);
  assert.equal(vs.delayLoop, 6);
  assert.equal(vs.realServers.length, 2);
  const ch = vs.realServers[0].checkers[0];
  assert.equal(ch.type, 'TCP_CHECK');
  assert.equal(ch.connectTimeout, 10);
  assert.equal(ch.retry, 3);
  assert.equal(ch.delayBeforeRetry, 3);
  assert.equal(ch.delayLoop, 6);
  // deprecated spellings are accepted and reported
  const deprecated = r.diagnostics.filter((d) => d.code === 'KV103').map((d) => d.message);
  assert.ok(deprecated.some((m) => m.includes("'lb_algo'")));
  assert.ok(deprecated.some((m) => m.includes("'lb_kind'")));
  assert.ok(deprecated.some((m) => m.includes("'nb_get_retry'")));
});

test('seed: the lvs_sync_daemon_inteface typo is reported with a suggestion, and the config still runs', () => {
  const r = load('seed-lvs-dr.conf');
  assert.equal(r.usable, true);
  const typo = r.diagnostics.find((d) => d.code === 'KV101');
  assert.ok(typo);
  assert.equal(typo.line, 17);
  assert.equal(typo.severity, 'warning');
  assert.match(typo.message, /lvs_sync_daemon_inteface.*did you mean 'lvs_sync_daemon_interface'/);
  assert.equal(r.config!.vrrpInstances[0].advertInt, 5);
  assert.equal(r.config!.virtualServers[0].realServers[1].weight, 100);
  assert.equal(r.config!.virtualServers[0].scheduler, 'wlc');
});

test('seed: vrrp_script with track_script weight', () => {
  const r = load('seed-vrrp-script.conf');
  assert.equal(r.usable, true, JSON.stringify(r.diagnostics));
  const s = r.config!.vrrpScripts[0];
  assert.equal(s.name, 'check_running');
  assert.deepEqual(s.script.argv, ['/usr/local/bin/check_running']);
  assert.equal(s.interval, 10);
  assert.equal(s.timeout, 10);
  assert.equal(s.weight, 10);
  const t = r.config!.vrrpInstances[0].trackScripts[0];
  assert.equal(t.name, 'check_running');
  assert.equal(t.weight, 20);
  assert.equal(r.config!.vrrpInstances[0].virtualIpaddresses[0].dev, 'eth0');
  assert.equal(r.config!.vrrpInstances[0].virtualIpaddresses[0].prefixLen, 24);
});
