/**
 * The namespace's kernel-plane owner file: the first keepvs claims it, a second one sees the live
 * owner, a dead owner's file is taken over, a planted symlink is never written through.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import {
  chmodSync,
  existsSync,
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
import { after, test } from 'node:test';
import { claimKernelPlane, kernelPlaneOwnerFile, releaseKernelPlane } from '../../src/os/kernel-plane-owner.js';

const dirs: string[] = [];
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) c.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function freshDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'kv-kpo-'));
  dirs.push(d);
  return d;
}

/** A live process whose command line names keepvs, as a running daemon's does. */
async function fakeKeepvs(): Promise<ChildProcess> {
  const c = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', 'keepvs-owner-test'], { stdio: 'ignore' });
  children.push(c);
  await new Promise((r) => c.once('spawn', r));
  return c;
}

test('the first keepvs claims the namespace; a second sees the live owner', async () => {
  const dir = freshDir();
  const other = await fakeKeepvs();
  const first = claimKernelPlane(dir, other.pid);
  assert.equal(first.kind, 'claimed');
  assert.equal(first.file, kernelPlaneOwnerFile(dir));
  assert.equal(readFileSync(first.file, 'utf8'), `${other.pid}\n`);
  const second = claimKernelPlane(dir);
  assert.deepEqual(second, { kind: 'owned-by', pid: other.pid, file: first.file });
  // the loser leaves no temporary file behind
  assert.deepEqual(
    readdirSync(dir).filter((n) => n.endsWith('.tmp')),
    [],
  );
});

test("a dead owner's file (SIGKILL) is taken over", async () => {
  const dir = freshDir();
  const other = await fakeKeepvs();
  assert.equal(claimKernelPlane(dir, other.pid).kind, 'claimed');
  other.kill('SIGKILL');
  await new Promise((r) => other.once('exit', r));
  const mine = claimKernelPlane(dir);
  assert.equal(mine.kind, 'claimed');
  assert.equal(readFileSync(mine.file, 'utf8'), `${process.pid}\n`);
});

test('a file naming a live keepvs of another network namespace is stale (the inode and the pid were reused)', {
  skip: process.getuid?.() !== 0 && 'needs root (ip netns)',
}, async () => {
  const dir = freshDir();
  const ns = `kvkpo${process.pid % 100000}`;
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    const c = spawn(
      'ip',
      ['netns', 'exec', ns, process.execPath, '-e', 'setInterval(() => {}, 1000)', 'keepvs-owner-test'],
      {
        stdio: 'ignore',
      },
    );
    children.push(c);
    await new Promise((r) => c.once('spawn', r));
    // `ip netns exec` enters the namespace, then execs node: wait for node (argv[0]) under that pid
    const deadline = Date.now() + 5000;
    const argv0 = () => readFileSync(`/proc/${c.pid}/cmdline`, 'utf8').split('\0')[0];
    while (argv0() !== process.execPath && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(argv0(), process.execPath);
    writeFileSync(kernelPlaneOwnerFile(dir), `${c.pid}\n`);
    const mine = claimKernelPlane(dir);
    assert.equal(mine.kind, 'claimed');
    assert.equal(readFileSync(mine.file, 'utf8'), `${process.pid}\n`);
  } finally {
    execFileSync('ip', ['netns', 'del', ns]);
  }
});

test('a file naming a live process that is not keepvs is stale', () => {
  const dir = freshDir();
  // pid 1 is alive and is not keepvs
  writeFileSync(kernelPlaneOwnerFile(dir), '1\n');
  assert.equal(claimKernelPlane(dir).kind, 'claimed');
});

test('release removes the file only while it names this process', async () => {
  const dir = freshDir();
  const claim = claimKernelPlane(dir);
  assert.equal(claim.kind, 'claimed');
  releaseKernelPlane(claim.file, process.pid + 1);
  assert.ok(existsSync(claim.file));
  releaseKernelPlane(claim.file);
  assert.ok(!existsSync(claim.file));
  releaseKernelPlane(claim.file);
});

test('a symlink planted at the name is replaced, never written through', () => {
  const dir = freshDir();
  const victim = join(freshDir(), 'victim');
  writeFileSync(victim, 'keep me\n');
  symlinkSync(victim, kernelPlaneOwnerFile(dir));
  const claim = claimKernelPlane(dir);
  assert.equal(claim.kind, 'claimed');
  assert.equal(readFileSync(victim, 'utf8'), 'keep me\n');
  assert.equal(readFileSync(claim.file, 'utf8'), `${process.pid}\n`);
});

test('a directory writable by others is refused, with the reason', () => {
  const dir = freshDir();
  const open = join(dir, 'open');
  mkdirSync(open);
  chmodSync(open, 0o777);
  const claim = claimKernelPlane(open);
  assert.equal(claim.kind, 'unrecorded');
  assert.match(claim.kind === 'unrecorded' ? claim.reason : '', /writable by other users/);
});
