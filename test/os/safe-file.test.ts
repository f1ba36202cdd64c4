import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { runningKeepvs, writePidFile } from '../../src/os/pid-file.js';
import { readFileSafely, writeFileSafely } from '../../src/os/safe-file.js';

test('a secret file is never written through a planted symlink, and is a fresh 0600 file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kv-safe-'));
  try {
    const victim = join(dir, 'victim');
    writeFileSync(victim, 'precious\n');
    const priv = join(dir, 'run');
    mkdirSync(priv, { mode: 0o700 });
    symlinkSync(victim, join(priv, 'api-token'));
    writeFileSafely(join(priv, 'api-token'), 'secret\n');
    assert.equal(readFileSync(victim, 'utf8'), 'precious\n');
    const st = lstatSync(join(priv, 'api-token'));
    assert.equal(st.isFile(), true);
    assert.equal(st.mode & 0o777, 0o600);
    assert.equal(readFileSync(join(priv, 'api-token'), 'utf8'), 'secret\n');
    // a directory other users can write to is refused (they could swap names under us)
    const shared = join(dir, 'shared');
    mkdirSync(shared);
    chmodSync(shared, 0o1777);
    assert.throws(() => writeFileSafely(join(shared, 'api-token'), 'x'), /writable by other users/);
    // so is a symlinked directory
    symlinkSync(shared, join(dir, 'link'));
    assert.throws(() => writeFileSafely(join(dir, 'link', 'api-token'), 'x'), /symbolic link/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('pid files: a live keepvs is found, a dead pid or a pid reused by another program is stale', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kv-pid-'));
  const other = spawn('sleep', ['30'], { stdio: 'ignore' });
  // a stand-in keepvs: its command line names keepvs, as bin/keepvs.js does
  const fake = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)', 'keepvs'], { stdio: 'ignore' });
  try {
    const f = join(dir, 'keepvs.pid');
    assert.equal(runningKeepvs(f), undefined, 'no file');
    writePidFile(f, fake.pid!);
    assert.equal(runningKeepvs(f), fake.pid);
    writePidFile(f, other.pid!);
    assert.equal(runningKeepvs(f), undefined, 'alive but not keepvs');
    writeFileSync(f, '999999999\n');
    assert.equal(runningKeepvs(f), undefined, 'dead');
    writeFileSync(f, 'garbage\n');
    assert.equal(runningKeepvs(f), undefined, 'garbage');
    writePidFile(f, process.pid);
    assert.equal(runningKeepvs(f), undefined, 'ourselves');
  } finally {
    other.kill();
    fake.kill();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('dumps in a shared directory (/tmp): a planted symlink is replaced, not followed; a planted directory is an error, no temp left', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kv-safe-'));
  try {
    const victim = join(dir, 'victim');
    writeFileSync(victim, 'precious\n');
    symlinkSync(victim, join(dir, 'keepvs.data'));
    writeFileSafely(join(dir, 'keepvs.data'), 'dump\n', 0o600, false);
    assert.equal(readFileSync(victim, 'utf8'), 'precious\n');
    assert.ok(lstatSync(join(dir, 'keepvs.data')).isFile());
    assert.equal(lstatSync(join(dir, 'keepvs.data')).mode & 0o777, 0o600);
    mkdirSync(join(dir, 'keepvs.stats'));
    assert.throws(() => writeFileSafely(join(dir, 'keepvs.stats'), 'x', 0o600, false), /EISDIR|EEXIST|ENOTEMPTY/);
    assert.ok(lstatSync(join(dir, 'keepvs.stats')).isDirectory());
    assert.deepEqual(
      readdirSync(dir).filter((n) => n.endsWith('.tmp')),
      [],
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('state read back is never a planted file: symlink, other owner, writable by others, public directory', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kv-safe-'));
  try {
    const priv = join(dir, 'run');
    mkdirSync(priv, { mode: 0o700 });
    assert.equal(readFileSafely(join(priv, 'state')), undefined);
    writeFileSafely(join(priv, 'state'), 'ours\n');
    assert.equal(readFileSafely(join(priv, 'state')), 'ours\n');
    writeFileSync(join(dir, 'elsewhere'), 'planted\n');
    symlinkSync(join(dir, 'elsewhere'), join(priv, 'link'));
    assert.throws(() => readFileSafely(join(priv, 'link')), /refusing to read/);
    writeFileSync(join(priv, 'open'), 'x', { mode: 0o666 });
    chmodSync(join(priv, 'open'), 0o666);
    assert.throws(() => readFileSafely(join(priv, 'open')), /writable by other users/);
    if (process.getuid?.() === 0) {
      writeFileSync(join(priv, 'theirs'), 'x', { mode: 0o600 });
      chownSync(join(priv, 'theirs'), 65534, 65534);
      assert.throws(() => readFileSafely(join(priv, 'theirs')), /belongs to uid 65534/);
    }
    chmodSync(priv, 0o777);
    assert.throws(() => readFileSafely(join(priv, 'state')), /writable by other users/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
