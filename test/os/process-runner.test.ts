import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ChildProcessRunner } from '../../src/os/process-runner.js';

const runner = new ChildProcessRunner();

test('runs argv without a shell and reports the exit code', async () => {
  const r = await runner.run(['/bin/sh', '-c', 'exit 3']);
  assert.equal(r.exitCode, 3);
  const inj = await runner.run(['/bin/echo', '$(id); rm -rf /'], { captureBytes: 100 });
  assert.equal(inj.stdout, '$(id); rm -rf /\n');
});

test('kills a child (and its group) on timeout', async () => {
  const t0 = performance.now();
  const r = await runner.run(['/bin/sh', '-c', 'sleep 5 & sleep 5'], { timeoutMs: 100 });
  assert.equal(r.timedOut, true);
  assert.ok(performance.now() - t0 < 2000);
});

test('reports a program that cannot start', async () => {
  const r = await runner.run(['/nonexistent/program']);
  assert.equal(r.spawnError, 'ENOENT');
  const u = await runner.run(['/bin/true'], { user: 'no-such-user-kv' });
  assert.match(u.spawnError ?? '', /unknown user/);
});
