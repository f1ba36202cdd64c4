// Differential test against the real keepalived (Debian package): on the same files, the lines
// keepalived -t reports as "Unknown keyword" are exactly the lines keepvs reports as KV110.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '../../src/config/index.js';
import { NodeConfigFs } from '../../src/os/config-fs.js';

const dir = join(import.meta.dirname, '..', '..', '..', 'test', 'fixtures', 'conf');
const FIXTURES = [
  'seed-netseek.conf',
  'seed-wugk-master.conf',
  'seed-wugk-backup.conf',
  'seed-global-defs.conf',
  'seed-vrrp-script.conf',
  'compat-typos.conf',
];

const probe = spawnSync('keepalived', ['--version'], { encoding: 'utf8' });
const skip = probe.error ? 'keepalived is not installed' : false;

function keepalivedUnknownLines(file: string): number[] {
  const r = spawnSync('keepalived', ['-t', '-l', '-n', '-f', file], { encoding: 'utf8', timeout: 20000 });
  const out = `${r.stdout}${r.stderr}`;
  return [...out.matchAll(/Line (\d+)\) Unknown keyword/g)].map((m) => Number(m[1])).sort((a, b) => a - b);
}

for (const name of FIXTURES) {
  test(`unknown keywords agree with keepalived -t: ${name}`, { skip }, () => {
    const file = join(dir, name);
    const ours = loadConfig(file, { fs: new NodeConfigFs() })
      .diagnostics.filter((d) => d.code === 'KV110')
      .map((d) => d.line)
      .sort((a, b) => a - b);
    assert.deepEqual(ours, keepalivedUnknownLines(file));
  });
}

// The sample configurations shipped with the Debian keepalived package.
const SAMPLES = '/usr/share/doc/keepalived/samples';
const samples = existsSync(SAMPLES) ? readdirSync(SAMPLES).filter((f) => f.startsWith('keepalived.conf')) : [];
test('unknown keywords agree with keepalived -t on every Debian sample config', {
  skip: skip || (samples.length === 0 && 'no samples'),
}, () => {
  for (const name of samples) {
    const file = join(SAMPLES, name);
    const ours = loadConfig(file, { fs: new NodeConfigFs() })
      .diagnostics.filter((d) => d.code === 'KV110')
      .map((d) => d.line)
      .sort((a, b) => a - b);
    assert.deepEqual(ours, keepalivedUnknownLines(file), name);
  }
});
