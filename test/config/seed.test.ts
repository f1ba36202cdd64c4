import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '../../src/config/index.js';
import { NodeConfigFs } from '../../src/os/config-fs.js';

const dir = join(import.meta.dirname, '..', '..', '..', 'test', 'fixtures', 'conf');
const load = (name: string) => loadConfig(join(dir, name), { fs: new NodeConfigFs() });

test('seed-netseek: the classic DR example loads with keepalived defaults', () => {
  const r = load('seed-netseek.conf');
  assert.equal(r.usable, true);
  const c = r.config!;
  assert.deepEqual(c.globalDefs.notificationEmail, ['cnseek@']);
  assert.equal(c.globalDefs.routerId, 'LVS_DEVEL');
  assert.deepEqual(c.globalDefs.smtpServer, { host: '127.0.0.1', port: 25 });
  const vi = c.vrrpInstances[0];
  assert.equal(vi.initialState, 'MASTER');
  assert.equal(vi.vrid, 51);
  assert.equal(vi.priority, 100);
  assert.deepEqual(vi.authentication, { type: 'PASS', pass: '1111' });
  assert.deepEqual(
    vi.virtualIpaddresses.map((v) => `${v.address}/${v.prefixLen}`),
    ['61.164.122.8/32'],
  );
  const vs = c.virtualServers[0];
  assert.deepEqual(vs.key, { kind: 'address', address: '61.164.122.8', family: 4, port: 80 });
  assert.equal(vs.scheduler, 'wrr');
  assert.equal(vs.method, 'DR');
  assert.equal(vs.persistenceTimeout, 60);
  assert.equal(vs.delayLoop, 6);
  assert.equal(vs.realServers.length, 2);
  const rs = vs.realServers[0];
  assert.equal(rs.weight, 3);
  assert.equal(rs.method, 'DR');
  const ch = rs.checkers[0];
  assert.equal(ch.type, 'TCP_CHECK');
  assert.equal(ch.connectTimeout, 10);
  assert.equal(ch.delayBeforeRetry, 3);
  // keepalived 2.x ignores nb_get_retry in TCP_CHECK (unknown keyword), so retry keeps its default 1.
  assert.equal(ch.retry, 1);
  assert.equal(ch.delayLoop, 6);
  assert.ok(ch.type === 'TCP_CHECK' && ch.connectPort === 80);
  const kinds = r.diagnostics.map((d) => `${d.line}:${d.code}`);
  assert.deepEqual(kinds, ['32:KV111', '33:KV111', '40:KV110', '49:KV110']);
  assert.match(r.diagnostics[2].message, /did you mean 'retry'/);
  assert.ok(Object.isFrozen(c) && Object.isFrozen(vs.realServers[0].checkers[0]));
});

test('seed-wugk: the lvs_sync_daemon_inteface typo is reported with a suggestion, as keepalived does', () => {
  for (const [file, state, prio] of [
    ['seed-wugk-master.conf', 'MASTER', 100],
    ['seed-wugk-backup.conf', 'BACKUP', 90],
  ] as const) {
    const r = load(file);
    assert.equal(r.usable, true);
    const typo = r.diagnostics.find((d) => d.code === 'KV110' && d.line === 15);
    assert.ok(typo);
    assert.equal(typo.col, 5);
    assert.match(typo.message, /unknown keyword 'lvs_sync_daemon_inteface'.*did you mean 'lvs_sync_daemon_interface'/);
    const vi = r.config!.vrrpInstances[0];
    assert.equal(vi.initialState, state);
    assert.equal(vi.priority, prio);
    assert.equal(vi.advertInt, 5);
    assert.equal(vi.lvsSyncDaemonInterface, undefined);
    const vs = r.config!.virtualServers[0];
    assert.equal(vs.scheduler, 'wlc');
    assert.deepEqual(
      vs.realServers.map((s) => [s.address, s.port, s.weight]),
      [
        ['192.168.2.79', 80, 100],
        ['192.168.2.80', 80, 100],
      ],
    );
  }
});

test('seed-global-defs: e-mail list and SMTP settings', () => {
  const r = load('seed-global-defs.conf');
  assert.deepEqual(r.diagnostics, []);
  const g = r.config!.globalDefs;
  assert.deepEqual(g.notificationEmail, ['acassen@firewall.loc', 'failover@firewall.loc', 'sysadmin@firewall.loc']);
  assert.equal(g.notificationEmailFrom, 'Alexandre.Cassen@firewall.loc');
  assert.equal(g.smtpConnectTimeout, 30);
  assert.equal(g.smtpAlert, false, 'smtp_alert was not written');
});

test('seed-vrrp-script: vrrp_script referenced by track_script with a weight override', () => {
  const r = load('seed-vrrp-script.conf');
  assert.deepEqual(r.diagnostics, []);
  const s = r.config!.vrrpScripts[0];
  assert.equal(s.name, 'check_running');
  assert.deepEqual(s.script.argv, ['/usr/local/bin/check_running']);
  assert.equal(s.interval, 10);
  assert.equal(s.timeout, 10);
  assert.equal(s.weight, 10);
  const t = r.config!.vrrpInstances[0].trackScripts[0];
  assert.equal(t.name, 'check_running');
  assert.equal(t.weight, 20);
});
