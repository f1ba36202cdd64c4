/**
 * Proxy workers outliving their parent (ProxyProcesses with a record): a new ProxyProcesses adopts
 * the live ones named in the record and forks none beside them; a stale or planted record is ignored.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ProxyProcesses } from '../../src/dataplane/proxy/processes.js';

const until = async (what: string, ok: () => boolean, ms = 15000) => {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

test('a new parent adopts the workers in the record; a record naming other processes is ignored', async () => {
  const run = mkdtempSync(join(tmpdir(), 'kv-adopt-'));
  const recordPath = join(run, 'keepvs.sock.proxies');
  const first = new ProxyProcesses({ count: 2, runDir: run, recordPath });
  let second: ProxyProcesses | undefined;
  let third: ProxyProcesses | undefined;
  try {
    await until('both sockets', () => first.sockets.every((s) => existsSync(s)));
    const pids = first.pids();
    assert.equal(pids.length, 2);
    const adopted: number[] = [];
    second = new ProxyProcesses({
      count: 2,
      runDir: run,
      recordPath,
      onAdopt: (a) => adopted.push(...a.map((x) => x.pid)),
    });
    assert.deepEqual(second.pids(), pids, 'forked new workers instead of adopting');
    assert.deepEqual(adopted.sort(), [...pids].sort());
    assert.equal(second.dir, first.dir);
    // a record whose writer still lives (another keepvs on this socket) is not taken from it
    const owner = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      await until('sleep started', () => existsSync(`/proc/${owner.pid}/stat`));
      const stat = readFileSync(`/proc/${owner.pid}/stat`, 'utf8');
      const ownerStart = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
      const live = JSON.parse(readFileSync(recordPath, 'utf8')) as object;
      writeFileSync(recordPath, JSON.stringify({ ...live, owner: owner.pid, ownerStart }), { mode: 0o600 });
      const taken = new ProxyProcesses({ count: 1, runDir: run, recordPath, respawn: false });
      try {
        assert.notEqual(taken.dir, first.dir, 'adopted the workers of a live parent');
        assert.ok(existsSync(first.dir), 'removed the directory of a live parent');
      } finally {
        await taken.stop(100);
      }
      writeFileSync(recordPath, JSON.stringify(live), { mode: 0o600 });
    } finally {
      owner.kill('SIGKILL');
    }
    // a planted record: our own pid (not a proxy worker) and a wrong start time are not adopted
    const rec = JSON.parse(readFileSync(recordPath, 'utf8')) as { dir: string; procs: { start: string }[] };
    writeFileSync(
      recordPath,
      JSON.stringify({
        dir: rec.dir,
        procs: [
          { index: 0, pid: process.pid, start: rec.procs[0]!.start },
          { index: 1, pid: pids[1], start: '1' },
        ],
      }),
      { mode: 0o600 },
    );
    third = new ProxyProcesses({ count: 1, runDir: run, recordPath, respawn: false });
    assert.notEqual(third.dir, first.dir);
    assert.ok(!third.pids().some((p) => pids.includes(p)));
  } finally {
    await third?.stop(100);
    await second?.stop(100);
    await first.stop(100);
    rmSync(run, { recursive: true, force: true });
  }
});
