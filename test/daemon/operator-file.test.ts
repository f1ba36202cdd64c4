import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadOperatorState, operatorStateFile, saveOperatorState } from '../../src/daemon/operator-file.js';

test('operator state file: round trip; a missing file is nothing, a garbled or planted one is refused with a reason', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kv-opfile-'));
  try {
    const run = join(dir, 'run');
    mkdirSync(run, { mode: 0o700 });
    const file = operatorStateFile(join(run, 'keepvs.sock'));
    assert.deepEqual(loadOperatorState(file), {});
    const state = {
      table: { added: [], services: [], dests: [], timeouts: { tcp: 900, tcpfin: 120, udp: 300 } },
      overrides: [['tcp:127.0.0.1:80|127.0.0.1:8080', { weight: 0, reason: 'drain' }] as const],
    };
    saveOperatorState(file, state);
    assert.deepEqual(loadOperatorState(file).state, state);
    writeFileSync(file, '{"format":1,"operator":{"table":{}}}', { mode: 0o600 });
    assert.match(loadOperatorState(file).error ?? '', /not a keepvs operator state file/);
    writeFileSync(file, '{trunc', { mode: 0o600 });
    assert.ok(loadOperatorState(file).error);
    rmSync(file);
    writeFileSync(join(dir, 'planted'), '{}');
    symlinkSync(join(dir, 'planted'), file);
    assert.match(loadOperatorState(file).error ?? '', /refusing to read/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
