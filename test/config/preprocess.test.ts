import assert from 'node:assert/strict';
import { test } from 'node:test';
import { codes, parse } from './helpers.js';

test('comments with # and ! anywhere on a line; braces on their own lines', () => {
  const r = parse(`global_defs   # trailing comment
{
  router_id  R1 ! another
}
! whole line
vrrp_instance V
{
  interface eth0
  virtual_router_id 7
}`);
  assert.equal(r.usable, true, JSON.stringify(r.diagnostics));
  assert.equal(r.config!.globalDefs.routerId, 'R1');
  assert.equal(r.config!.vrrpInstances[0].vrid, 7);
});

test('one-line blocks and quoted strings with escapes', () => {
  const r = parse(`vrrp_instance V { interface eth0
 virtual_router_id 9
 notify_master "/bin/echo 'two words' \\x41\\102"
 virtual_ipaddress { 10.0.0.1/24 dev eth0 label eth0:1 }
}`);
  assert.equal(r.usable, true, JSON.stringify(r.diagnostics));
  const i = r.config!.vrrpInstances[0];
  assert.deepEqual(i.notify.master?.argv, ['/bin/echo', 'two words', 'AB']);
  assert.equal(i.virtualIpaddresses[0].label, 'eth0:1');
});

test('include with globs, relative to the including file, nested', () => {
  const r = parse('include conf.d/*.conf\n', {
    '/etc/keepalived/conf.d/a.conf': 'global_defs {\n router_id FROM_A\n}\ninclude ../more/b.conf\n',
    '/etc/keepalived/more/b.conf': 'vrrp_instance B {\n interface eth0\n virtual_router_id 3\n}\n',
    '/etc/keepalived/conf.d/c.conf': 'vrrp_instance C {\n interface eth0\n virtual_router_id 4\n}\n',
  });
  assert.equal(r.usable, true, JSON.stringify(r.diagnostics));
  assert.equal(r.config!.globalDefs.routerId, 'FROM_A');
  assert.deepEqual(
    r.config!.vrrpInstances.map((i) => i.name),
    ['B', 'C'],
  );
  assert.deepEqual(r.config!.files, [
    '/etc/keepalived/keepalived.conf',
    '/etc/keepalived/conf.d/a.conf',
    '/etc/keepalived/more/b.conf',
    '/etc/keepalived/conf.d/c.conf',
  ]);
});

test('include loops are detected and reported', () => {
  const r = parse('include a.conf\n', { '/etc/keepalived/a.conf': 'include keepalived.conf\n' });
  assert.ok(codes(r).includes('KV003'));
});

test('plain include of a missing file warns; includem is strict', () => {
  assert.equal(parse('include nothing-*.conf\n').diagnostics[0].code, 'KV002');
  assert.equal(parse('include nothing-*.conf\n').usable, true);
  const strict = parse('includem nothing.conf\n');
  assert.equal(strict.usable, false);
});

test('$NAME definitions: $NAME and ${NAME}, redefinition, multi-line macros', () => {
  const r = parse(`$PRIO=150
$IF=eth0
$INST=\\
vrrp_instance $NAME { \\
  interface \${IF} \\
  virtual_router_id $VRID \\
  priority $PRIO \\
}
$NAME=A
$VRID=1
$INST
$NAME=B
$VRID=2
$PRIO=90
$INST`);
  assert.equal(r.usable, true, JSON.stringify(r.diagnostics));
  const [a, b] = r.config!.vrrpInstances;
  assert.equal(a.name, 'A');
  assert.equal(a.priority, 150);
  assert.equal(b.name, 'B');
  assert.equal(b.vrid, 2);
  assert.equal(b.priority, 90);
  assert.equal(b.interface, 'eth0');
});

test('@id / @^id conditional lines follow the config id', () => {
  const text = `vrrp_instance V {
  interface eth0
  virtual_router_id 5
@lb1 priority 200
@^lb1 priority 100
}`;
  assert.equal(parse(text, {}, 'lb1').config!.vrrpInstances[0].priority, 200);
  assert.equal(parse(text, {}, 'lb2').config!.vrrpInstances[0].priority, 100);
});

test('~SEQ and ~LST generate lines', () => {
  const r = parse(`virtual_server 10.0.0.1 80 {
~SEQ(i, 1, 3) real_server 10.0.1.$i 80 { weight $i }
~LST(p, 8080, 8081) real_server 10.0.2.1 $p
}`);
  assert.equal(r.usable, true, JSON.stringify(r.diagnostics));
  const rs = r.config!.virtualServers[0].realServers;
  assert.deepEqual(
    rs.map((x) => `${x.address}:${x.port}/${x.weight}`),
    ['10.0.1.1:80/1', '10.0.1.2:80/2', '10.0.1.3:80/3', '10.0.2.1:8080/1', '10.0.2.1:8081/1'],
  );
  assert.ok(codes(parse('~SEQ(i, 1, 0, 3) x\n')).includes('KV006'));
});

test('predefined parameters: _HASH, _BANG, _ENV, _INSTANCE', () => {
  const r = parseEnv(`global_defs {
  router_id \${_INSTANCE}_\${_ENV SITE}
  notification_email_from a\${_HASH}b
}`);
  assert.equal(r.config!.globalDefs.routerId, 'lb1_paris');
  assert.equal(r.config!.globalDefs.notificationEmailFrom, 'a#b');
});

import { parseConfigText } from '../../src/config/index.js';
import { memFs } from './helpers.js';

function parseEnv(text: string) {
  return parseConfigText(text, '/k.conf', { fs: memFs({}), configId: 'lb1', env: { SITE: 'paris' } });
}
