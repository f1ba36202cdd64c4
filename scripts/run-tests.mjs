#!/usr/bin/env node
// Runs the compiled tests (dist/test/**/*.test.js) with Node's test runner.
// Usage: node scripts/run-tests.mjs [substring filter ...] [--exclude=substring ...]
// Node 20's `--test` takes no globs, so the file list is built here.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const testRoot = join(root, 'dist', 'test');

function walk(dir, out) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

// --exclude=SUBSTR (repeatable) leaves out the files whose path contains it (.ci/run on Node 24)
const args = process.argv.slice(2);
const excludes = args.filter((a) => a.startsWith('--exclude=')).map((a) => a.slice('--exclude='.length));
const filters = args.filter((a) => !a.startsWith('--exclude='));
// only tests whose source still exists (a stale dist/ may hold removed ones)
let files = walk(testRoot, [])
  .filter((f) => existsSync(join(root, 'test', relative(testRoot, f)).replace(/\.js$/, '.ts')))
  .sort();
if (filters.length) files = files.filter((f) => filters.some((s) => relative(testRoot, f).includes(s)));
if (excludes.length) files = files.filter((f) => !excludes.some((s) => relative(testRoot, f).includes(s)));
if (files.length === 0) {
  console.error('run-tests: no test files found (did `tsc` run?)');
  process.exit(1);
}
const concurrency = process.env.KEEPVS_TEST_CONCURRENCY ?? '2';
// --test-force-exit: a file whose tests are all done ends even if a failed test left a socket open
// (a Node 24 CI run on 2026-12-04 waited on such a file until killed, after its one failure)
const res = spawnSync(
  process.execPath,
  [
    '--enable-source-maps',
    '--test',
    '--test-force-exit',
    `--test-concurrency=${concurrency}`,
    '--test-timeout=300000',
    ...files,
  ],
  { stdio: 'inherit', cwd: root },
);
process.exit(res.status ?? 1);
