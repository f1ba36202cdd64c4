import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { DIAGNOSTIC_CODES, formatDiagnostic } from '../../src/config/diagnostics.js';
import { codes, parse } from './helpers.js';

const vi = (body: string, name = 'V') =>
  `vrrp_instance ${name} {\n interface eth0\n virtual_router_id 10\n${body}\n}\n`;
const vs = (body: string) => `virtual_server 10.0.0.1 80 {\n${body}\n}\n`;

/** One malformed input per code, with the line the diagnostic must point at. */
const TABLE: [string, string, number, Record<string, string>?][] = [
  ['KV001', 'include /missing/x.conf\n', 1],
  ['KV002', 'include none-*.conf\n', 1],
  ['KV003', 'include a.conf\n', 1, { '/etc/keepalived/a.conf': 'include a.conf\n' }],
  ['KV004', 'global_defs {\n router_id "open\n}\n', 2],
  ['KV005', 'global_defs {\n router_id X\n', 1],
  ['KV005', '}\n', 1],
  ['KV006', '~SEQ(i, 1, 0, 3) x\n', 1],
  ['KV101', 'global_defs {\n routr_id X\n}\n', 2],
  ['KV102', 'global_defs {\n enable_snmp_vrrp\n}\n', 2],
  ['KV103', vs(' lb_algo rr'), 2],
  ['KV104', 'global_defs {\n router_id\n}\n', 2],
  ['KV105', vi(' virtual_ipaddress'), 4],
  ['KV106', vi(' priority 10 { }'), 4],
  ['KV201', 'vrrp_instance V {\n interface eth0\n virtual_router_id 256\n}\n', 3],
  ['KV201', vi(' priority 0'), 4],
  ['KV201', vs(' real_server 10.0.0.2 80 {\n  weight 70000\n }'), 3],
  ['KV201', vs(' real_server 10.0.0.2 99999'), 2],
  ['KV202', vi(' virtual_ipaddress {\n  10.0.0.300/24\n }'), 5],
  ['KV202', vi(' virtual_ipaddress {\n  10.0.0.3/33\n }'), 5],
  ['KV203', vs(' lvs_sched fastest'), 2],
  ['KV203', vs(' lvs_method NATT'), 2],
  ['KV204', vi(' authentication {\n  auth_type PASS\n  auth_pass 123456789\n }'), 6],
  ['KV301', vi('', 'A') + vi('', 'B'), 6],
  ['KV302', vs(' real_server 10.0.0.2 80\n real_server 10.0.0.2 80'), 3],
  ['KV303', vi(' track_script {\n  chk_nginx\n }'), 5],
  ['KV303', 'vrrp_sync_group G {\n group {\n  VI_MISSING\n }\n}\n', 1],
  ['KV304', vi('', 'A') + vi('', 'A').replace('10', '11'), 6],
  ['KV305', 'vrrp_instance V {\n interface eth0\n}\n', 1],
  ['KV306', vi(' state MASTER\n preempt_delay 10'), 1],
];

for (const [code, text, line, files] of TABLE) {
  test(`${code}: ${JSON.stringify(text.slice(0, 50))}`, () => {
    const r = parse(text, files);
    const d = r.diagnostics.find((x) => x.code === code);
    assert.ok(d, `expected ${code}, got ${JSON.stringify(r.diagnostics)}`);
    assert.equal(d.line, line, formatDiagnostic(d));
    assert.equal(d.severity === 'error' ? r.usable : true, d.severity !== 'error');
    assert.match(
      formatDiagnostic(d),
      new RegExp(`^/etc/keepalived/\\S*:${line}:\\d+: (error|warning): .+ \\[${code}\\]$`),
    );
  });
}

test('every diagnostic code is exercised by the table above', () => {
  const covered = new Set(TABLE.map((t) => t[0]));
  for (const code of Object.keys(DIAGNOSTIC_CODES)) assert.ok(covered.has(code), code);
});

test('diagnostics never stop at the first problem', () => {
  const r = parse(`global_defs {\n routr_id X\n}\n${vi(' priority 0\n advert_int abc\n state MAYBE')}`);
  assert.deepEqual(codes(r).sort(), ['KV101', 'KV201', 'KV201', 'KV203']);
});

test('defaults are filled in as keepalived fills them', () => {
  const r = parse(
    `${vi('')}${vs(' persistence_timeout\n real_server 10.0.0.2 80 {\n  HTTP_GET {\n   url {\n    path /\n   }\n  }\n  MISC_CHECK {\n   misc_path "/bin/true"\n  }\n }')}`,
  );
  assert.equal(r.usable, true, JSON.stringify(r.diagnostics));
  const i = r.config!.vrrpInstances[0];
  assert.equal(i.priority, 100);
  assert.equal(i.advertInt, 1);
  assert.equal(i.initialState, 'BACKUP');
  assert.equal(i.downTimerAdverts, 3);
  assert.equal(i.garpMasterDelay, 5);
  const v = r.config!.virtualServers[0];
  assert.equal(v.persistenceTimeout, 360);
  assert.equal(v.scheduler, 'wlc');
  assert.equal(v.method, 'NAT');
  assert.equal(v.delayLoop, 60);
  assert.equal(v.quorum, 1);
  const [http, misc] = v.realServers[0].checkers;
  assert.equal(http.connectTimeout, 5);
  assert.equal(http.retry, 1);
  assert.equal(http.delayBeforeRetry, 3);
  assert.equal(http.type === 'HTTP_GET' && JSON.stringify(http.urls[0].statusCodes), '[[200,299]]');
  assert.equal(misc.retry, 0);
  assert.equal(misc.type === 'MISC_CHECK' && misc.miscTimeout, 60);
});

test('IPv6 VIPs force VRRP version 3', () => {
  const r = parse(vi(' virtual_ipaddress {\n  2001:db8::10/64\n }'));
  assert.equal(r.config!.vrrpInstances[0].version, 3);
  assert.equal(r.config!.vrrpInstances[0].family, 6);
});

test('property: random and mutated configs never throw, only report', () => {
  const seedText = `global_defs {\n router_id A\n}\n${vi(' priority 120\n virtual_ipaddress {\n  10.1.1.1/24 dev eth0\n }\n track_script {\n  s\n }')}${vs(' lb_algo rr\n real_server 10.0.0.2 80 {\n  TCP_CHECK {\n   connect_timeout 3\n  }\n }')}`;
  const tokens = [
    '{',
    '}',
    '"',
    "'",
    '$X=',
    '${X}',
    '@lb1 ',
    '~SEQ(i,1,3) ',
    'include x',
    '#',
    '!',
    '\n',
    ' ',
    'vrrp_instance',
    'real_server',
    '10.0.0.1',
    '-1',
    '99999999999',
    '\\',
  ];
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.nat(seedText.length), fc.constantFrom(...tokens), fc.boolean()), { maxLength: 8 }),
      fc.string({ maxLength: 200 }),
      (mutations, noise) => {
        let text = seedText;
        for (const [at, tok, del] of mutations)
          text = del ? text.slice(0, at) + text.slice(at + tok.length) : text.slice(0, at) + tok + text.slice(at);
        const r = parse(`${text}\n${noise}`);
        assert.ok(Array.isArray(r.diagnostics));
        for (const d of r.diagnostics) assert.ok(d.code in DIAGNOSTIC_CODES);
      },
    ),
    { numRuns: 300 },
  );
});
