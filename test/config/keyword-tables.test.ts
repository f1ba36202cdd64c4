// Every keyword of every block table is recognised where it belongs: supported keywords never give
// "unknown" (KV110) or "not supported" (KV112), unsupported ones always give KV112 with their line,
// and deprecated synonyms always give KV111. Loading never throws whatever the argument.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CHECKERS } from '../../src/config/grammar/checkers/index.js';
import type { KeywordEntry } from '../../src/config/grammar/engine.js';
import { GLOBAL_DEFS } from '../../src/config/grammar/global-defs.js';
import { REAL_SERVER } from '../../src/config/grammar/real-server.js';
import { ROOT } from '../../src/config/grammar/root.js';
import { SYNC_GROUP } from '../../src/config/grammar/sync-group.js';
import { TRACK_FILE } from '../../src/config/grammar/track-file.js';
import { TRACK_PROCESS } from '../../src/config/grammar/track-process.js';
import { VIRTUAL_SERVER } from '../../src/config/grammar/virtual-server.js';
import { VRRP_INSTANCE } from '../../src/config/grammar/vrrp-instance.js';
import { VRRP_SCRIPT } from '../../src/config/grammar/vrrp-script.js';
import { parse, show } from './helpers.js';

type Table = ReadonlyMap<string, KeywordEntry<never>>;

/** [name, table, text before the keyword line, text after] */
const BLOCKS: [string, Table, string, string][] = [
  ['top level', ROOT as Table, '', ''],
  ['global_defs', GLOBAL_DEFS as Table, 'global_defs {\n', '}\n'],
  ['vrrp_instance', VRRP_INSTANCE as Table, 'vrrp_instance V {\n', ' interface eth0\n virtual_router_id 1\n}\n'],
  ['vrrp_script', VRRP_SCRIPT as Table, 'vrrp_script s {\n', ' script /bin/true\n}\n'],
  ['track_file', TRACK_FILE as Table, 'track_file f {\n', ' file /tmp/f\n}\n'],
  ['vrrp_track_process', TRACK_PROCESS as Table, 'vrrp_track_process p {\n', ' process x\n}\n'],
  ['vrrp_sync_group', SYNC_GROUP as Table, 'vrrp_sync_group g {\n', ' group {\n  a b\n }\n}\n'],
  ['virtual_server', VIRTUAL_SERVER as Table, 'virtual_server 10.0.0.1 80 {\n', '}\n'],
  ['real_server', REAL_SERVER as Table, 'virtual_server 10.0.0.1 80 {\n real_server 10.0.1.1 80 {\n', ' }\n}\n'],
  ...[...CHECKERS].map(
    ([type, spec]) =>
      [
        type,
        spec.table as Table,
        `virtual_server 10.0.0.1 80 {\n real_server 10.0.1.1 80 {\n  ${type} {\n`,
        '  }\n }\n}\n',
      ] as [string, Table, string, string],
  ),
];

for (const [name, table, before, after] of BLOCKS) {
  test(`every ${name} keyword is recognised (${table.size} keywords)`, () => {
    const line = before.split('\n').length;
    for (const [kw, entry] of table) {
      for (const arg of ['1', 'x', '']) {
        const stmt = entry.kind === 'block' ? `${kw} ${arg} {\n}` : `${kw} ${arg}`;
        const r = parse(`${before}${stmt}\n${after}`);
        const here = r.diagnostics.filter((d) => d.line === line);
        const all = here.map(show).join('\n');
        assert.ok(!here.some((d) => d.code === 'KV110'), `${name}: '${kw}' reported unknown\n${all}`);
        assert.ok(!here.some((d) => d.code === 'KV103'), `${name}: '${kw}' block form refused\n${all}`);
        if (entry.unsupported || entry.notActedOn)
          assert.ok(
            here.some((d) => d.code === 'KV112'),
            `${name}: '${kw}' not reported as unsupported / not acted on`,
          );
        else assert.ok(!here.some((d) => d.code === 'KV112'), `${name}: '${kw}' wrongly unsupported`);
        if (entry.deprecatedFor)
          assert.ok(
            here.some((d) => d.code === 'KV111'),
            `${name}: '${kw}' deprecation not reported`,
          );
      }
    }
  });
}
