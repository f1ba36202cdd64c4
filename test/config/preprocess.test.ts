// biome-ignore-all lint/suspicious/noTemplateCurlyInString: keepalived.conf writes parameters as ${NAME}
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryConfigFs } from '../../src/config/fs-port.js';
import { loadConfig } from '../../src/config/index.js';
import { stripComment, tokenizeLine } from '../../src/config/lexer.js';
import { braceExpand } from '../../src/config/preprocess.js';
import { cfg, codes, parse } from './helpers.js';

const routerId = (text: string, opts: Parameters<typeof parse>[1] = {}) =>
  parse(`global_defs {\n${text}\n}\n`, opts).config?.globalDefs.routerId;

test('comments: # and ! anywhere on a line, but not inside quotes', () => {
  assert.equal(stripComment('router_id a # note'), 'router_id a ');
  assert.equal(stripComment('router_id a! note'), 'router_id a');
  assert.equal(stripComment('script "echo #1 !2" # c'), 'script "echo #1 !2" ');
  assert.equal(routerId(' router_id lb1 ! trailing'), 'lb1');
  assert.equal(routerId('! router_id lb1\n router_id lb2 # x'), 'lb2');
});

test('quoted strings: quotes removed, whitespace kept, escapes, adjacent text joins', () => {
  const t = tokenizeLine(`a "b c" 'd\\ne' "x\\ty" "\\101\\x42" pre"mid"post "\\q" {x}`);
  assert.deepEqual(
    t.map((x) => x.text),
    ['a', 'b c', 'd\\ne', 'x\ty', 'AB', 'premidpost', 'q', '{', 'x', '}'],
  );
  assert.equal(t[1].col, 3);
  assert.equal(t[1].quoted, true);
  const q = tokenizeLine('"{"');
  assert.deepEqual([q[0].text, q[0].quoted], ['{', true]);
});

test('blocks: braces on the same line, on their own line, and one-line blocks', () => {
  const c = cfg(
    'vrrp_instance VI_1\n{\n interface eth0\n virtual_router_id 9\n virtual_ipaddress { 10.1.1.1/24 dev eth1 }\n}\n' +
      'virtual_server 10.1.1.1 80 { lvs_sched rr\n real_server 10.2.2.2 8080 { weight 5 } }\n',
  );
  assert.equal(c.vrrpInstances[0].vrid, 9);
  assert.equal(c.vrrpInstances[0].virtualIpaddresses[0].prefixLen, 24);
  assert.equal(c.vrrpInstances[0].virtualIpaddresses[0].dev, 'eth1');
  assert.equal(c.virtualServers[0].scheduler, 'rr');
  assert.equal(c.virtualServers[0].realServers[0].weight, 5);
});

test('include: relative to the including file, globs sorted, brace expansion, nested', () => {
  const fs = new MemoryConfigFs({
    '/etc/keepalived/keepalived.conf': 'include conf.d/*.conf\ninclude extra/{one,two}.conf\n',
    '/etc/keepalived/conf.d/b.conf': 'vrrp_script b {\n script /bin/b\n}\n',
    '/etc/keepalived/conf.d/a.conf': 'vrrp_script a {\n script /bin/a\n}\ninclude ../nested/n.conf\n',
    '/etc/keepalived/nested/n.conf': 'vrrp_script n {\n script /bin/n\n}\n',
    '/etc/keepalived/extra/one.conf': 'vrrp_script one {\n script /bin/1\n}\n',
    '/etc/keepalived/extra/two.conf': 'vrrp_script two {\n script "${_PWD}/two.sh"\n}\n',
  });
  const r = loadConfig('/etc/keepalived/keepalived.conf', { fs });
  assert.deepEqual(r.diagnostics, []);
  assert.deepEqual(
    r.config!.vrrpScripts.map((s) => s.name),
    ['a', 'n', 'b', 'one', 'two'],
  );
  assert.equal(r.config!.vrrpScripts[4].script.command, '/etc/keepalived/extra/two.sh');
  assert.equal(r.config!.files.length, 6);
});

test('include inside a block, include loop detected, include_check defaults', () => {
  const fs = new MemoryConfigFs({
    '/k/main.conf': 'global_defs {\n include ids.conf\n}\ninclude main.conf\ninclude_check match\ninclude none.conf\n',
    '/k/ids.conf': 'router_id from-include\n',
  });
  const r = loadConfig('/k/main.conf', { fs });
  assert.equal(r.config!.globalDefs.routerId, 'from-include');
  assert.deepEqual(codes(r), ['KV004', 'KV002']);
  assert.equal(r.diagnostics[0].line, 4);
});

test('includer / includem / includew / includea strictness', () => {
  const fs = new MemoryConfigFs({ '/k/a.conf': '' });
  assert.deepEqual(codes(parse('include /k/nope*.conf\n', { fs })), ['KV003']);
  assert.deepEqual(codes(parse('includew /k/nope*.conf\n', { fs })), ['KV002', 'KV003']);
  assert.deepEqual(codes(parse('includem /k/nope.conf\n', { fs })), ['KV002']);
  assert.deepEqual(codes(parse('includea /k/{a,b}.conf\n', { fs })), ['KV002', 'KV002']);
  assert.deepEqual(codes(parse('includeb /k/{a,a}.conf\n', { fs })), []);
});

test('brace expansion is csh-style and nests', () => {
  assert.deepEqual(braceExpand('a{b,c}d'), ['abd', 'acd']);
  assert.deepEqual(braceExpand('x{1,{2,3}}'), ['x1', 'x2', 'x3']);
  assert.deepEqual(braceExpand('{a,b}{c,d}'), ['ac', 'ad', 'bc', 'bd']);
  assert.deepEqual(braceExpand('plain{x}'), ['plain{x}']);
});

test('parameters: $NAME and ${NAME}, redefinition changes later uses, undefined left as is', () => {
  const c = cfg(
    '$IF=eth1\n$ID=lb\nglobal_defs {\n router_id ${ID}-$ID\n}\nvrrp_instance A {\n interface $IF\n virtual_router_id 1\n virtual_ipaddress {\n  10.0.0.1\n }\n}\n' +
      '$IF=eth2\nvrrp_instance B {\n interface $IF\n virtual_router_id 1\n notify_master "/bin/n $UNDEFINED"\n virtual_ipaddress {\n  10.0.0.2\n }\n}\n',
  );
  assert.equal(c.globalDefs.routerId, 'lb-$ID'.replace('$ID', 'lb'));
  assert.deepEqual(
    c.vrrpInstances.map((v) => v.interface),
    ['eth1', 'eth2'],
  );
  assert.equal(c.vrrpInstances[1].notify.master?.command, '/bin/n $UNDEFINED');
});

test('parameters: $NAME must be followed by whitespace; recursion expands', () => {
  assert.equal(routerId('$A=x\n router_id $Ay'), '$Ay');
  assert.equal(routerId('$A=x\n$B=${A}y\n router_id $B'), 'xy');
});

test('multi-line definitions stamp out whole blocks', () => {
  const c = cfg(
    [
      '$VS= \\',
      'virtual_server 10.0.0.${N} 80 { \\',
      '  lvs_sched rr \\',
      '  real_server 10.1.0.${N} 80 { \\',
      '  } \\',
      '}',
      '$N=1',
      '$VS',
      '$N=2',
      '$VS',
    ].join('\n'),
  );
  assert.deepEqual(
    c.virtualServers.map((v) => (v.key.kind === 'address' ? v.key.address : '')),
    ['10.0.0.1', '10.0.0.2'],
  );
  assert.equal(c.virtualServers[1].realServers[0].address, '10.1.0.2');
});

test('predefined parameters: _INSTANCE, _HASH, _BANG, _ENV, _RANDOM, _PWD', () => {
  assert.equal(routerId(' router_id ${_INSTANCE}', { configId: 'lb1' }), 'lb1');
  assert.equal(routerId(' router_id a${_HASH}b${_BANG}c'), 'a#b!c');
  assert.equal(routerId(' router_id ${_ENV SITE}', { env: { SITE: 'paris' } }), 'paris');
  assert.equal(routerId(' router_id x${_ENV NOPE}'), 'x');
  const r = Number(routerId(' router_id ${_RANDOM 5 9}'));
  assert.ok(r >= 5 && r <= 9);
  assert.equal(routerId(' router_id ${_RANDOM 4 4}', { random: () => 0.99 }), '4');
  assert.equal(routerId(' router_id ${_PWD}'), '/etc/keepalived');
});

test('@id / @^id conditional lines follow the config id', () => {
  const text =
    '@lb1 $PRIO=200\n@^lb1 $PRIO=50\nvrrp_instance V {\n interface eth0\n virtual_router_id 1\n priority $PRIO\n@lb1 state MASTER\n virtual_ipaddress {\n  10.0.0.1\n }\n}\n';
  const a = parse(text, { configId: 'lb1' }).config!.vrrpInstances[0];
  const b = parse(text, { configId: 'lb2' }).config!.vrrpInstances[0];
  assert.deepEqual([a.priority, a.initialState], [200, 'MASTER']);
  assert.deepEqual([b.priority, b.initialState], [50, 'BACKUP']);
});

test('~SEQ, ~SEQx (hex), descending, nested on one line, and ~LST with tuples', () => {
  const scripts = (t: string) => cfg(t).vrrpScripts.map((s) => `${s.name}=${s.script.command}`);
  assert.deepEqual(scripts('~SEQ(i, 3) vrrp_script s$i { script "/bin/c ${i}" }'), [
    's1=/bin/c 1',
    's2=/bin/c 2',
    's3=/bin/c 3',
  ]);
  assert.deepEqual(scripts('~SEQx(i, 9, 3, 15) vrrp_script s$i { script /x }'), ['s9=/x', 'sc=/x', 'sf=/x']);
  assert.deepEqual(scripts('~SEQ(i, 3, 1) vrrp_script s$i { script /x }'), ['s3=/x', 's2=/x', 's1=/x']);
  assert.deepEqual(scripts('~SEQ(a, 1, 2) ~SEQ(b, 1, 2) vrrp_script s${a}_${b} { script /x }'), [
    's1_1=/x',
    's1_2=/x',
    's2_1=/x',
    's2_2=/x',
  ]);
  assert.deepEqual(scripts('~LST(n, web, db) vrrp_script chk_$n { script "/bin/chk ${n}" }'), [
    'chk_web=/bin/chk web',
    'chk_db=/bin/chk db',
  ]);
  assert.deepEqual(scripts('~LST({n,p}, {a,1}, {b,2}) vrrp_script ${n} { script "/p ${p}" }'), ['a=/p 1', 'b=/p 2']);
});

test('~SEQ generates many instances from one line', () => {
  const c = cfg('~SEQ(id, 1, 200) vrrp_instance VI_$id { interface eth0\n');
  // the line expands to 200 unterminated blocks; only the structure matters here
  assert.ok(c);
  const d = cfg(
    '$I=vrrp_instance VI_${id} { interface eth0 ; virtual_router_id ${id} }\n~SEQ(id, 1, 50) vrrp_script v$id { script /x }\n',
  );
  assert.equal(d.vrrpScripts.length, 50);
});

test('CRLF line endings and a UTF-8 BOM are accepted', () => {
  const c = cfg('\uFEFFglobal_defs {\r\n router_id win\r\n}\r\n$P=7 \\\r\n\r\n');
  assert.equal(c.globalDefs.routerId, 'win');
});

test('brace expansion bombs in include patterns are capped', () => {
  const r = parse(`include /k/${'{a,b}'.repeat(40)}.conf\n`);
  assert.ok(codes(r).includes('KV021'));
});
