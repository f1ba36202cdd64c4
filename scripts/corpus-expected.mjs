#!/usr/bin/env node
// Records keepalived -t's verdict on every corpus file into test/fixtures/corpus/expected-keepalived.json,
// for machines without keepalived (the corpus test prefers running keepalived itself).
// Usage: npx tsc -p tsconfig.json && node scripts/corpus-expected.mjs
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { corpusFiles, keepalivedVerdict, ROOT } from '../dist/test/config/corpus.js';

const out = {};
for (const rel of corpusFiles()) {
  const v = keepalivedVerdict(rel);
  if (!v) {
    console.error('keepalived is not installed');
    process.exit(1);
  }
  out[rel] = v;
}
writeFileSync(
  join(ROOT, 'test', 'fixtures', 'corpus', 'expected-keepalived.json'),
  `${JSON.stringify(out, null, 1)}\n`,
);
console.log(`${Object.keys(out).length} files recorded`);
