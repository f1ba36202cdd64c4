// keepvs -t against keepalived 2.2.7 -t over a corpus of real configurations: keepalived's own
// doc/samples (identical to Debian's /usr/share/doc/keepalived/samples), configurations from public
// repositories (test/fixtures/corpus/SOURCES.md) and the seed fixtures. Exit status and reported
// lines must agree, except for the differences listed (with their reasons) in
// docs/config-test-compat.md. keepalived runs when installed; else its stored outputs are used
// (scripts/corpus-expected.mjs records them).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { corpusFiles, differences, keepalivedVerdict, keepvsVerdict, ROOT, type Verdict } from './corpus.js';

const live = !spawnSync('keepalived', ['--version']).error;
const stored = JSON.parse(
  readFileSync(join(ROOT, 'test', 'fixtures', 'corpus', 'expected-keepalived.json'), 'utf8'),
) as Record<string, Verdict>;

const documented = (): Set<string> => {
  const doc = readFileSync(join(ROOT, 'docs', 'config-test-compat.md'), 'utf8');
  return new Set([...doc.matchAll(/^\| `([^`]+)` \| ([^|]+?) \|/gm)].map((m) => `${m[1]} ${m[2]}`));
};

test(`keepvs -t agrees with keepalived -t (${live ? 'installed keepalived' : 'stored outputs'}) on the corpus, but for the documented differences`, () => {
  const files = corpusFiles();
  assert.ok(files.length >= 40, `corpus has ${files.length} files`);
  const found: string[] = [];
  for (const f of files) {
    const ka = live ? keepalivedVerdict(f) : stored[f];
    assert.ok(ka, `no keepalived output for ${f} (run scripts/corpus-expected.mjs)`);
    found.push(...differences(f, ka, keepvsVerdict(f)));
  }
  const doc = documented();
  assert.deepEqual(
    found.filter((d) => !doc.has(d)),
    [],
    'differences missing from docs/config-test-compat.md',
  );
  assert.deepEqual(
    [...doc].filter((d) => !found.includes(d)),
    [],
    'docs/config-test-compat.md lists differences that no longer occur',
  );
});

test('the stored keepalived outputs cover every corpus file', () => {
  for (const f of corpusFiles()) assert.ok(stored[f], f);
});
