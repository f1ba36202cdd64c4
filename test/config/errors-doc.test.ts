import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { DIAGNOSTIC_CODES } from '../../src/config/diagnostics.js';

test('docs/errors.md lists exactly the codes the code can emit, with the same severity', () => {
  const doc = readFileSync(join(process.cwd(), 'docs', 'errors.md'), 'utf8');
  const rows = [...doc.matchAll(/^\| (KV\d{3}) \| (error|warning) \|/gm)].map((m) => [m[1], m[2]]);
  const inDoc = Object.fromEntries(rows);
  const inCode = Object.fromEntries(Object.entries(DIAGNOSTIC_CODES).map(([c, v]) => [c, v.severity]));
  assert.deepEqual(inDoc, inCode);
});

test('every code is used somewhere in src/config', () => {
  const { execFileSync } = require_();
  const src = execFileSync(
    'grep',
    ['-rhoE', '--exclude=diagnostics.ts', "'KV[0-9]{3}'", join(process.cwd(), 'src', 'config')],
    { encoding: 'utf8' },
  );
  const used = new Set(
    src
      .split('\n')
      .filter(Boolean)
      .map((s: string) => s.replace(/'/g, '')),
  );
  for (const code of Object.keys(DIAGNOSTIC_CODES))
    assert.ok(used.has(code), `${code} is documented but never reported`);
});

import { createRequire } from 'node:module';

function require_() {
  return createRequire(import.meta.url)('node:child_process') as typeof import('node:child_process');
}
