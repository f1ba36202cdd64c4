// biome-ignore-all lint/suspicious/noTemplateCurlyInString: keepalived.conf writes parameters as ${NAME}
// Property tests: random and mutated configurations never make the loader throw or hang; problems
// are only ever reported as diagnostics with a known code and a position inside the input.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { DIAGNOSTIC_CODES } from '../../src/config/diagnostics.js';
import { MemoryConfigFs } from '../../src/config/fs-port.js';
import { loadConfig, parseConfigText } from '../../src/config/index.js';
import type { LoadResult } from '../../src/config/model.js';

const fixtures = join(import.meta.dirname, '..', '..', '..', 'test', 'fixtures', 'conf');
const SEEDS = ['seed-netseek.conf', 'seed-wugk-master.conf', 'seed-vrrp-script.conf', 'seed-global-defs.conf'].map(
  (f) => readFileSync(join(fixtures, f), 'utf8'),
);

const WORDS = [
  '{',
  '}',
  '"',
  "'",
  '#',
  '!',
  '\\',
  '$X',
  '${X}',
  '$X=',
  '@lb1',
  '@^lb1',
  '~SEQ(i,1,3)',
  '~LST(a,b)',
  '~SEQ(',
  'include',
  'includea',
  '*.conf',
  'global_defs',
  'vrrp_instance',
  'virtual_server',
  'real_server',
  'TCP_CHECK',
  'HTTP_GET',
  'url',
  'virtual_ipaddress',
  'priority',
  'virtual_router_id',
  '300',
  '-1',
  '1.5',
  '10.0.0.1',
  '10.0.0.1/33',
  'fe80::1',
  '::',
  'fwmark',
  'group',
  'lvs_sched',
  'rr',
  'lb_kind',
  'DR',
  'state',
  'MASTER',
  'track_script',
  'vrrp_sync_group',
  'eth0',
  '\n',
  '\n',
  '\n',
  ' ',
  '\t',
  '${_RANDOM 1 5}',
  '${_ENV HOME}',
  '$',
  '${',
  'auth_pass',
  '0123456789',
  'authentication',
];

function check(r: LoadResult, lineCount: number): void {
  assert.equal(r.usable, !r.diagnostics.some((d) => d.severity === 'error'));
  for (const d of r.diagnostics) {
    assert.ok(d.code in DIAGNOSTIC_CODES, d.code);
    assert.ok(d.line >= 0 && d.line <= lineCount + 1, `${d.code} line ${d.line}`);
    assert.ok(d.col >= 0);
    assert.equal(typeof d.message, 'string');
  }
  if (r.config) assert.ok(Object.isFrozen(r.config));
}

const lineCount = (t: string) => t.split('\n').length;

test('random token soups never throw', () => {
  fc.assert(
    fc.property(fc.array(fc.constantFrom(...WORDS), { maxLength: 200 }), (words) => {
      const text = words.join(' ');
      check(parseConfigText(text, '/k/keepalived.conf', { configId: 'lb1' }), lineCount(text));
    }),
    { numRuns: 400 },
  );
});

test('arbitrary unicode text never throws', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'grapheme', maxLength: 400 }), (text) => {
      check(parseConfigText(text, '/k/keepalived.conf'), lineCount(text));
    }),
    { numRuns: 300 },
  );
});

test('mutated seed configs (deleted, duplicated, swapped or corrupted lines and characters) never throw', () => {
  const mutation = fc.record({
    seed: fc.nat(SEEDS.length - 1),
    ops: fc.array(
      fc.record({
        kind: fc.constantFrom('delete-line', 'dup-line', 'swap-lines', 'delete-char', 'insert', 'replace-word'),
        at: fc.nat(),
        at2: fc.nat(),
        word: fc.constantFrom(...WORDS),
      }),
      { minLength: 1, maxLength: 8 },
    ),
  });
  fc.assert(
    fc.property(mutation, ({ seed, ops }) => {
      let lines = SEEDS[seed].split('\n');
      for (const op of ops) {
        const i = op.at % lines.length;
        const j = op.at2 % lines.length;
        if (op.kind === 'delete-line') lines.splice(i, 1);
        else if (op.kind === 'dup-line') lines.splice(i, 0, lines[i]);
        else if (op.kind === 'swap-lines') [lines[i], lines[j]] = [lines[j], lines[i]];
        else if (op.kind === 'delete-char') {
          const l = lines[i];
          const k = l.length ? op.at2 % l.length : 0;
          lines[i] = l.slice(0, k) + l.slice(k + 1);
        } else if (op.kind === 'insert') {
          const l = lines[i];
          const k = l.length ? op.at2 % (l.length + 1) : 0;
          lines[i] = `${l.slice(0, k)}${op.word}${l.slice(k)}`;
        } else {
          const ws = lines[i].split(' ');
          ws[op.at2 % ws.length] = op.word;
          lines[i] = ws.join(' ');
        }
        if (lines.length === 0) lines = [''];
      }
      const text = lines.join('\n');
      check(parseConfigText(text, '/k/keepalived.conf'), lineCount(text));
    }),
    { numRuns: 400 },
  );
});

test('self-including and mutually including glob files terminate with a diagnostic', () => {
  fc.assert(
    fc.property(fc.array(fc.constantFrom('a', 'b', 'c', '*', '{a,b}'), { minLength: 1, maxLength: 6 }), (targets) => {
      const files: Record<string, string> = {};
      for (const [k, name] of ['a', 'b', 'c'].entries())
        files[`/k/${name}.conf`] = `include ${targets[k % targets.length]}.conf\nglobal_defs {\n}\n`;
      const r = loadConfig('/k/a.conf', { fs: new MemoryConfigFs(files) });
      assert.ok(r.config);
      check(r, 3);
    }),
    { numRuns: 150 },
  );
});

test('exponential ~SEQ nesting is cut off instead of hanging', () => {
  const text = '~SEQ(a,1,1000) ~SEQ(b,1,1000) ~SEQ(c,1,1000) vrrp_script s${a}_${b}_${c} { script /x }\n';
  const started = process.hrtime.bigint();
  const r = parseConfigText(text, '/k/k.conf', { maxLines: 20_000 });
  assert.ok(r.diagnostics.some((d) => d.code === 'KV021'));
  assert.ok(process.hrtime.bigint() - started < 60_000_000_000n);
});
