/**
 * One keepvs per network namespace drives the kernel plane: a second keepvs with its own pid files in
 * the same namespace refuses to start (exit 2, the owner's pid in the message) and leaves the first
 * one's tables alone; after a graceful stop the owner file is gone and the next keepvs starts. In the
 * lab (../shared/lab/lab.sh) on lb1; needs root and nftables, skipped otherwise.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { KERNEL_PLANE_OWNER_DIR } from '../../src/os/kernel-plane-owner.js';
import { LAB, type LabKeepvs, startLabKeepvs } from '../dataplane/lab-daemon.js';
import { until } from '../e2e/harness.js';

const P = `ko${process.pid % 100000}`;
const canRun = process.getuid?.() === 0 && existsSync(LAB) && existsSync('/usr/sbin/nft');
const dir = mkdtempSync(join(tmpdir(), 'kv-owner-lab-'));
const env = { ...process.env, LAB_PREFIX: P, LAB_RS: '1', LAB_DR: '0' };
const started: ChildProcess[] = [];

const sh = (cmd: string, ...args: string[]) =>
  execFileSync(cmd, args, { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const inLb1 = (...argv: string[]) => sh('ip', 'netns', 'exec', `${P}-lb1`, ...argv);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const CONFIG = `global_defs {\n  router_id lb1\n}
virtual_server 198.18.0.100 80 {
  lvs_sched rr
  lvs_method NAT
  protocol TCP
  real_server 198.18.1.11 80 { weight 1 }
}
`;

function startKeepvs(name: string): LabKeepvs {
  const run = startLabKeepvs({ ns: `${P}-lb1`, dir, name, args: ['--dataplane', 'nft'] });
  started.push(run.proc);
  return run;
}

const ownerFile = () =>
  join(KERNEL_PLANE_OWNER_DIR, `kernel-plane-${inLb1('stat', '-L', '-c', '%i', '/proc/self/ns/net').trim()}.pid`);
const servicesInKernel = () => /198\.18\.0\.100/.test(inLb1('nft', 'list', 'table', 'ip', 'keepvs'));

before(() => {
  if (!canRun) return;
  writeFileSync(join(dir, 'keepalived.conf'), CONFIG);
  sh('bash', LAB, 'up');
});

after(() => {
  for (const p of started) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  if (canRun) {
    try {
      inLb1('nft', 'delete', 'table', 'ip', 'keepvs');
    } catch {}
    try {
      sh('bash', LAB, 'down');
    } catch {}
  }
  rmSync(dir, { recursive: true, force: true });
});

test('a second keepvs in the namespace refuses the kernel plane; after a graceful stop the next one starts', {
  skip: !canRun,
}, async () => {
  const first = startKeepvs('first');
  await until('the first keepvs programs the kernel', async () => servicesInKernel(), 15000, first.log);
  assert.equal(existsSync(ownerFile()), true);

  const second = startKeepvs('second');
  const code = await Promise.race([second.exited, sleep(15000).then(() => 'still running')]);
  assert.equal(code, 2, second.log());
  assert.match(second.log(), /kernel data plane of this network namespace is driven by keepvs pid \d+/);
  assert.match(second.log(), /--dataplane proxy/);
  // the first one still owns and forwards
  assert.equal(first.proc.exitCode, null);
  assert.ok(servicesInKernel());

  first.proc.kill('SIGTERM');
  await first.exited;
  assert.equal(existsSync(ownerFile()), false, 'a graceful stop gives the namespace up');

  const third = startKeepvs('third');
  await until('the next keepvs programs the kernel', async () => servicesInKernel(), 15000, third.log);
  await sleep(1000);
  assert.equal(third.proc.exitCode, null, third.log());
  third.proc.kill('SIGTERM');
  await third.exited;
});
