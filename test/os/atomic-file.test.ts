import assert from 'node:assert/strict';
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { readRegularFile, UnsafeFileError, writeFileAtomic } from '../../src/os/atomic-file.js';

const dir = mkdtempSync(join(tmpdir(), 'kv-atomic-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('writeFileAtomic replaces the file whole and leaves no temp file', () => {
  const f = join(dir, 'managed.conf');
  writeFileAtomic(f, 'one\n');
  writeFileAtomic(f, 'two\n');
  assert.equal(readFileSync(f, 'utf8'), 'two\n');
  assert.equal(statSync(f).mode & 0o777, 0o644);
  assert.deepEqual(readdirSync(dir), ['managed.conf']);
  assert.equal(readRegularFile(f), 'two\n');
  assert.equal(readRegularFile(join(dir, 'absent.conf')), undefined);
});

test('a symlink at the target is neither followed on read nor on write', () => {
  const victim = join(dir, 'victim');
  writeFileSync(victim, 'precious\n');
  const link = join(dir, 'link.conf');
  symlinkSync(victim, link);
  assert.throws(() => readRegularFile(link), UnsafeFileError);
  assert.throws(() => writeFileAtomic(link, 'evil\n'), UnsafeFileError);
  assert.equal(readFileSync(victim, 'utf8'), 'precious\n');
});

test('a directory others can write into (without the sticky bit) is refused', () => {
  const open = join(dir, 'open');
  mkdirSync(open);
  chmodSync(open, 0o777);
  assert.throws(() => writeFileAtomic(join(open, 'managed.conf'), 'x\n'), /writable by other users/);
  chmodSync(open, 0o1777);
  writeFileAtomic(join(open, 'managed.conf'), 'x\n');
  assert.equal(readFileSync(join(open, 'managed.conf'), 'utf8'), 'x\n');
});
