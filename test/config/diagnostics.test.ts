// biome-ignore-all lint/suspicious/noTemplateCurlyInString: keepalived.conf writes parameters as ${NAME}
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { DIAGNOSTIC_CODES, editDistance, suggest } from '../../src/config/diagnostics.js';
import { MemoryConfigFs } from '../../src/config/fs-port.js';
import { bgpSpeakerDiagnostics, interfaceDiagnostics } from '../../src/config/host-checks.js';
import { formatDiagnostic, loadConfig } from '../../src/config/index.js';
import type { LoadResult } from '../../src/config/model.js';
import { secureScripts } from '../../src/config/script-security.js';
import { parse, show } from './helpers.js';
import { fakePort } from './script-fakes.js';

const vi = (name: string, vrid: number, extra = '', iface = 'eth0') =>
  `vrrp_instance ${name} {\n interface ${iface}\n virtual_router_id ${vrid}\n virtual_ipaddress {\n  10.0.0.${vrid}\n }\n${extra}}\n`;

const chain = (n: number): Record<string, string> => {
  const files: Record<string, string> = {};
  for (let i = 0; i < n; i++) files[`/c/f${i}.conf`] = `include f${i + 1}.conf\n`;
  files[`/c/f${n}.conf`] = 'global_defs {\n}\n';
  return files;
};

const SCRIPT = 'vrrp_script chk {\n script /k/chk\n}\n';
const RS_VS = 'virtual_server 10.0.0.1 80 {\n protocol TCP\n real_server 10.0.1.1 80 {\n }\n}\n';

type Case = readonly [code: string, run: () => LoadResult, line?: number];
const text =
  (t: string, files: Record<string, string> = {}) =>
  () =>
    parse(t, { fs: new MemoryConfigFs(files) });
const file = (path: string, files: Record<string, string>) => () => loadConfig(path, { fs: new MemoryConfigFs(files) });

/** Malformed inputs, one per code at least; the final test checks the table covers the whole catalogue. */
const CASES: readonly Case[] = [
  ['KV001', file('/etc/keepalived/missing.conf', {}), 0],
  ['KV002', text('includem /etc/keepalived/conf.d/*.conf\n'), 1],
  ['KV002', text('includer /etc/keepalived/nothere.conf\n'), 1],
  ['KV002', text('includeb /x/{a,b}.conf\n', { '/x/a.conf': '' }), 1],
  ['KV003', text('include /etc/keepalived/none.conf\n'), 1],
  ['KV004', file('/c/a.conf', { '/c/a.conf': 'include b.conf\n', '/c/b.conf': 'include a.conf\n' }), 1],
  ['KV005', file('/c/f0.conf', chain(40)), 1],
  ['KV010', text('$1A=foo\n'), 1],
  ['KV010', text('$_MINE=foo\n'), 1],
  ['KV011', text('$M= \\\nfoo \\'), 1],
  ['KV012', text('$A=$A x\nglobal_defs {\n router_id $A\n}\n'), 3],
  ['KV013', text('global_defs {\n router_id ${_ENV}\n}\n'), 2],
  ['KV020', text('~SEQ(i, 1, 0, 5) vrrp_script s$i {\n'), 1],
  ['KV020', text('~LST(i a b\n'), 1],
  ['KV021', text('~SEQ(i, 1, 2000000) track_file t$i\n'), 1],
  ['KV030', text('global_defs {\n router_id "abc\n}\n'), 2],
  ['KV031', text('@ global_defs {\n}\n'), 1],
  ['KV100', text('global_defs {\n router_id x\n'), 1],
  ['KV101', text('global_defs {\n}\n}\n'), 3],
  ['KV102', text('{\n}\n'), 1],
  ['KV103', text('global_defs\n'), 1],
  ['KV104', text(vi('VI_1', 1, ' priority 100 {\n }\n')), 7],
  ['KV105', text(`${'{\n'.repeat(100000)}`), 64],
  ['KV106', text('global_defs {\n router_idd x {\n }\n}\n'), 2],
  ['KV110', text('global_defs {\n router_idd x\n}\n'), 2],
  ['KV111', text(vi('VI_1', 1, ' lvs_sync_daemon_interface eth0\n')), 7],
  ['KV112', text('global_defs {\n enable_snmp_vrrp\n}\n'), 2],
  ['KV113', text(vi('VI_1', 1, ' priority\n')), 7],
  ['KV114', text('global_defs {\n router_id a b\n}\n'), 2],
  ['KV115', text('global_defs {\n router_id a\n router_id b\n}\n'), 3],
  ['KV200', text(vi('VI_1', 1, ' priority abc\n')), 7],
  ['KV201', text(vi('VI_1', 1, ' priority 256\n')), 7],
  ['KV201', text('vrrp_instance V {\n interface eth0\n virtual_router_id 0\n}\n'), 3],
  ['KV202', text('global_defs {\n vrrp_strict maybe\n}\n'), 2],
  ['KV203', text(vi('VI_1', 1, ' state MASTERR\n')), 7],
  ['KV204', text('virtual_server 10.0.0.1 80 {\n protocol TCP\n real_server 10.0.0.300 80 {\n }\n}\n'), 3],
  [
    'KV205',
    text(
      'virtual_server 10.0.0.1 80 {\n protocol TCP\n persistence_timeout 60\n persistence_granularity 255.0.255.0\n}\n',
    ),
    4,
  ],
  ['KV206', text('virtual_server 10.0.0.1 70000 {\n}\n'), 1],
  ['KV207', text('virtual_server 10.0.0.1 80 {\n lvs_sched foo\n}\n'), 2],
  ['KV208', text('virtual_server 10.0.0.1 80 {\n lvs_method NATT\n}\n'), 2],
  ['KV209', text(vi('VI_1', 1, ' authentication {\n  auth_type PASS\n  auth_pass 123456789\n }\n')), 9],
  [
    'KV210',
    text('virtual_server 10.0.0.1 53 {\n real_server 10.0.1.1 53 {\n  UDP_CHECK {\n   payload abc\n  }\n }\n}\n'),
    4,
  ],
  ['KV211', text(vi('VI_1', 1, ' advert_int 1.5\n')), 1],
  ['KV300', text(vi('VI_1', 7) + vi('VI_2', 7)), 8],
  [
    'KV301',
    text('virtual_server 10.0.0.1 80 {\n real_server 10.0.1.1 80 {\n }\n real_server 10.0.1.1 80 {\n }\n}\n'),
    4,
  ],
  ['KV302', text('vrrp_script s {\n script /bin/true\n}\nvrrp_script s {\n script /bin/false\n}\n'), 4],
  ['KV303', text(vi('VI_1', 1, ' track_script {\n  nosuch\n }\n')), 8],
  ['KV304', text(vi('VI_1', 1, ' track_file {\n  nosuch\n }\n')), 8],
  ['KV305', text(`${vi('VI_1', 1)}vrrp_sync_group G {\n group {\n  VI_1\n  VI_9\n }\n}\n`), 11],
  ['KV306', text('virtual_server group NOPE {\n protocol TCP\n real_server 10.0.1.1 80 {\n }\n}\n'), 1],
  ['KV307', text(vi('VI_1', 1, ' track_process {\n  nosuch\n }\n')), 8],
  [
    'KV308',
    text(
      `${vi('VI_1', 1)}${vi('VI_2', 2)}vrrp_sync_group A {\n group {\n  VI_1\n  VI_2\n }\n}\nvrrp_sync_group B {\n group {\n  VI_1\n  VI_2\n }\n}\n`,
    ),
    23,
  ],
  ['KV309', text('vrrp_instance V {\n interface eth0\n}\n'), 1],
  ['KV310', text(`${RS_VS}${RS_VS}`), 6],
  ['KV314', text('virtual_server 10.0.0.1 80 {\n protocol TCP\n}\n'), 1],
  ['KV311', text(vi('VI_1', 1, ' state MASTER\n priority 100\n nopreempt\n')), 1],
  ['KV312', text('virtual_server 10.0.0.1 80 {\n protocol TCP\n real_server fe80::2 80 {\n }\n}\n')],
  [
    'KV322',
    () => {
      const r = text(vi('VI_1', 1))();
      return { ...r, diagnostics: r.config ? interfaceDiagnostics(r.config, () => false) : [] };
    },
    2,
  ],
  ['KV313', text(`${vi('VI_1', 1)}vrrp_sync_group G {\n group {\n  VI_1\n }\n}\n`), 8],
  [
    'KV116',
    text('virtual_server 10.0.0.1 80 {\n protocol TCP\n proxy_protocol v2\n real_server 10.0.1.1 80 {\n }\n}\n'),
    3,
  ],
  // script security runs against the system after loading: a fake file system here
  ['KV320', () => secureScripts(parse(`global_defs {\n script_user root\n}\n${SCRIPT}`), fakePort({})), 5],
  ['KV321', () => secureScripts(parse(SCRIPT), fakePort({ '/k': { kind: 'dir', mode: 0o777 }, '/k/chk': {} })), 2],
  [
    'KV315',
    () =>
      parse('virtual_server 10.0.0.1 80 {\n protocol TCP\n lb_kind DR\n real_server 10.0.1.1 80 {\n }\n}\n', {
        dataplane: { name: 'proxy', kernel: false, tun: false },
      }),
    1,
  ],
  [
    'KV316',
    text('virtual_server 10.0.0.1 80 {\n protocol TCP\n lvs_method FNAT\n real_server 10.0.1.1 80 {\n }\n}\n'),
    1,
  ],
  [
    'KV317',
    () =>
      parse(
        'virtual_server 10.0.0.1 80 {\n protocol TCP\n lvs_method TUN type gue port 6080 csum\n real_server 10.0.1.1 80 {\n }\n}\n',
        {
          dataplane: { name: 'nft', kernel: true, tun: true },
        },
      ),
    4,
  ],
  ['KV319', text(`global_defs {\n lvs_sync_daemon eth1 VI_9\n}\n${vi('VI_1', 1)}`), 2],
  ['KV323', text(`global_defs {\n lvs_sync_daemon eth1 VI_1 maxlen 1400\n}\n${vi('VI_1', 1)}`), 2],
  ['KV330', text('virtual_server 10.0.0.1 80 {\n protocol TCP\n bgp_announce\n real_server 10.0.1.1 80 {\n }\n}\n'), 3],
  [
    'KV331',
    text(
      `bgp_announce {\n local_as 65001\n neighbor 10.0.2.1 remote_as 65000\n}\n${vi('VI_1', 1)}virtual_server 10.0.0.1 80 {\n protocol TCP\n bgp_announce\n real_server 10.0.1.1 80 {\n }\n}\n`,
    ),
  ],
  [
    'KV332',
    () => {
      const r = text(
        'bgp_announce {\n local_as 65001\n neighbor 10.0.2.1 remote_as 65000\n}\nvirtual_server 10.0.0.1 80 {\n protocol TCP\n bgp_announce\n real_server 10.0.1.1 80 {\n }\n}\n',
      )();
      return { ...r, diagnostics: r.config ? bgpSpeakerDiagnostics(r.config, () => 'FRR bgpd not found') : [] };
    },
    1,
  ],
  [
    'KV318',
    () =>
      // ops runs per datagram under NAT and DR; on port 0 it cannot
      parse(
        'virtual_server 10.0.0.1 0 {\n protocol UDP\n ops\n persistence_timeout 60\n real_server 10.0.1.1 0 {\n }\n}\n',
        {
          dataplane: { name: 'nft', kernel: true, tun: false },
        },
      ),
    1,
  ],
  [
    'KV333',
    () =>
      parse(
        'virtual_server 10.0.0.1 80 {\n protocol TCP\n lvs_method NAT\n flow_pinning 60\n real_server 10.0.1.1 80 {\n }\n}\n',
        {
          dataplane: { name: 'nft', kernel: true, tun: false },
        },
      ),
    4,
  ],
];

for (const [code, run, line] of CASES) {
  test(`${code}: ${DIAGNOSTIC_CODES[code as keyof typeof DIAGNOSTIC_CODES].title}`, () => {
    const r = run();
    const hit = r.diagnostics.find((d) => d.code === code);
    assert.ok(hit, `expected ${code}, got:\n${r.diagnostics.map(show).join('\n')}`);
    assert.equal(hit.severity, DIAGNOSTIC_CODES[code as keyof typeof DIAGNOSTIC_CODES].severity);
    if (line !== undefined) assert.equal(hit.line, line, show(hit));
    assert.ok(hit.message.length > 10);
    assert.equal(r.usable, !r.diagnostics.some((d) => d.severity === 'error'));
    assert.match(formatDiagnostic(hit), new RegExp(`^\\S+:${hit.line}:${hit.col}: ${hit.severity}: .+ \\[${code}\\]$`));
  });
}

test('the malformed-input table triggers every code in the catalogue', () => {
  const covered = new Set(CASES.map((c) => c[0]));
  const missing = Object.keys(DIAGNOSTIC_CODES).filter((c) => !covered.has(c));
  assert.deepEqual(missing, []);
});

test('docs/errors.md and the catalogue list the same codes, both ways', () => {
  const doc = readFileSync(join(import.meta.dirname, '..', '..', '..', 'docs', 'errors.md'), 'utf8');
  const documented = new Set(
    [...doc.matchAll(/^\| (KV\d{3}) \| (error|warning|note) \|/gm)].map((m) => `${m[1]}:${m[2]}`),
  );
  const inCode = new Set(Object.entries(DIAGNOSTIC_CODES).map(([c, i]) => `${c}:${i.severity}`));
  assert.deepEqual(
    [...inCode].filter((c) => !documented.has(c)),
    [],
    'codes missing from docs/errors.md',
  );
  assert.deepEqual(
    [...documented].filter((c) => !inCode.has(c)),
    [],
    'docs/errors.md lists codes the code lacks',
  );
});

test('every code used in src/config is in the catalogue', () => {
  // The catalogue type makes an unknown code a compile error; this guards the string tables too.
  for (const c of Object.keys(DIAGNOSTIC_CODES)) assert.match(c, /^KV\d{3}$/);
});

test('diagnostics never stop at the first problem', () => {
  const r = parse(
    'global_defs {\n router_idd x\n vrrp_version 9\n}\n' +
      vi('VI_1', 300, ' priority 0\n state X\n') +
      'virtual_server 10.0.0.1 80 {\n lvs_sched nope\n lvs_method XX\n real_server 10.0.0.999 80 {\n }\n}\n',
  );
  const cs = r.diagnostics.map((d) => d.code);
  for (const c of ['KV110', 'KV201', 'KV203', 'KV207', 'KV208', 'KV204']) assert.ok(cs.includes(c), c);
  assert.ok(r.diagnostics.length >= 8);
  assert.equal(r.usable, false);
  assert.ok(r.config, 'a partial model is still produced');
});

test('did-you-mean suggestions', () => {
  assert.equal(editDistance('kitten', 'sitting'), 3);
  assert.equal(suggest('virtual_router_idd', ['virtual_router_id', 'priority']), 'virtual_router_id');
  assert.equal(suggest('zzzzzz', ['virtual_router_id', 'priority']), undefined);
  const r = parse(vi('VI_1', 1, ' prority 50\n'));
  assert.match(r.diagnostics[0].message, /did you mean 'priority'\?/);
});
