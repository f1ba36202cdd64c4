import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { TrackFile, TrackProcess, VrrpScript } from '../../src/config/model.js';
import { ChildProcessRunner } from '../../src/os/process-runner.js';
import { NodeFileWatcher, ProcProcessLister, SysfsLinkWatcher } from '../../src/os/watchers.js';
import type { ProcessInfo } from '../../src/track/process-match.js';
import { type TrackingState, TrackManager } from '../../src/track/track-manager.js';
import { FakeClock, SystemClock } from '../../src/util/clock.js';
import { MemoryLogger } from '../../src/util/logger.js';
import { config, exit, FakeRunner, flush, instance, loc, script } from './fixtures.js';

const vscript = (name: string, over: Partial<VrrpScript> = {}): VrrpScript => ({
  name,
  script: script(`/bin/check-${name}`),
  interval: 1,
  timeout: 1,
  weight: 0,
  weightReverse: false,
  rise: 1,
  fall: 1,
  initFail: false,
  loc,
  ...over,
});
const wt = (name: string, weight?: number, reverse = false) => ({ name, weight, reverse, loc });

const noFiles = {
  read: async () => undefined,
  writeInitial: async () => {},
  watch: () => ({ close() {} }),
};
const links = (state: Record<string, boolean>) => ({ linkUp: async (n: string) => state[n] ?? false });
const procs = (list: ProcessInfo[]) => ({ list: async () => list });

function harness(cfg: ReturnType<typeof config>, runner = new FakeRunner(), over: Record<string, unknown> = {}) {
  const clock = new FakeClock();
  const changes: [string, TrackingState][] = [];
  const mgr = new TrackManager({
    config: cfg,
    clock,
    runner,
    fileWatcher: noFiles,
    linkWatcher: links({}),
    processLister: procs([]),
    logger: new MemoryLogger(),
    onChange: (i, s) => changes.push([i, s]),
    ...over,
  });
  return { clock, changes, mgr };
}

test('vrrp_script weight 0: FAULT after fall failures, back after rise successes', async () => {
  let code = 0;
  const runner = new FakeRunner(() => exit(code));
  const cfg = config({
    vrrpScripts: [vscript('chk', { rise: 2, fall: 2 })],
    vrrpInstances: [instance('VI_1', { trackScripts: [wt('chk')] })],
  });
  const logger = new MemoryLogger();
  const { clock, changes, mgr } = harness(cfg, runner, { logger });
  mgr.start();
  assert.equal(changes.at(-1)?.[1].fault, true, 'INIT: waits for the first result');
  assert.equal(changes.at(-1)?.[1].initializing, true);
  await flush();
  assert.deepEqual(changes.at(-1)?.[1], { effective: 100, fault: false, reason: 'base 100' });
  code = 1;
  clock.advance(1000);
  await flush();
  assert.equal(changes.at(-1)?.[1].fault, false, 'one failure < fall 2');
  clock.advance(1000);
  await flush();
  assert.equal(changes.at(-1)?.[1].fault, true);
  assert.match(changes.at(-1)?.[1].reason ?? '', /script chk failed/);
  code = 0;
  clock.advance(1000);
  await flush();
  assert.equal(changes.at(-1)?.[1].fault, true, 'one success < rise 2');
  clock.advance(1000);
  await flush();
  assert.equal(changes.at(-1)?.[1].fault, false);
  assert.equal(runner.calls[0].options.timeoutMs, 1000);
  assert.deepEqual(runner.calls[0].argv, ['/bin/check-chk']);
  mgr.stop();
  // keepalived 2.2.7's lines (vrrp_scheduler.c): each change of exit status, then each change of result
  assert.deepEqual(
    logger
      .text()
      .split('\n')
      .filter((l) => /Script/.test(l)),
    [
      'Script `chk` now returning 0',
      'VRRP_Script(chk) succeeded',
      'Script `chk` now returning 1',
      'VRRP_Script(chk) failed (exited with status 1)',
      'Script `chk` now returning 0',
      'VRRP_Script(chk) succeeded',
    ],
  );
});

test('vrrp_script weights: +ve added while OK, -ve subtracted while failing, reverse, init_fail, owner', async () => {
  const results: Record<string, number> = { up: 0, down: 1 };
  const runner = new FakeRunner((argv) => exit(results[argv[0].replace('/bin/check-', '')] ?? 0));
  const cfg = config({
    vrrpScripts: [vscript('up', { weight: 20 }), vscript('down', { weight: -30 })],
    vrrpInstances: [
      instance('A', { trackScripts: [wt('up'), wt('down')] }),
      instance('B', { trackScripts: [wt('up', 20, true)] }),
      instance('OWNER', { priority: 255, trackScripts: [wt('down')] }),
      instance('HIGH', { priority: 250, trackScripts: [wt('up')] }),
    ],
  });
  const { changes, mgr } = harness(cfg, runner);
  mgr.start();
  await flush();
  const last = (n: string) => changes.filter((c) => c[0] === n).at(-1)?.[1];
  assert.equal(last('A')?.effective, 90);
  assert.equal(last('B')?.effective, 80);
  assert.equal(last('OWNER')?.effective, 255);
  assert.equal(last('HIGH')?.effective, 254);
  mgr.stop();

  const initFail = config({
    vrrpScripts: [vscript('slow', { weight: 10, initFail: true, rise: 2 })],
    vrrpInstances: [instance('A', { trackScripts: [wt('slow')] })],
  });
  const h = harness(initFail, new FakeRunner(() => new Promise(() => {})));
  h.mgr.start();
  assert.equal(h.changes.at(-1)?.[1].effective, 100, 'init_fail: weight not added before rise successes');
  assert.equal(h.mgr.snapshot().scripts[0].status, 'FAILED');
  h.mgr.stop();
});

test('a slow script never blocks another; overlapping runs are skipped', async () => {
  const runner = new FakeRunner((argv) => (argv[0].includes('slow') ? new Promise(() => {}) : exit(0)));
  const cfg = config({
    vrrpScripts: [vscript('slow', { weight: 5, timeout: 10 }), vscript('fast', { weight: 7 })],
    vrrpInstances: [instance('A', { trackScripts: [wt('slow'), wt('fast')] })],
  });
  const { clock, changes, mgr } = harness(cfg, runner);
  mgr.start();
  await flush();
  assert.equal(changes.at(-1)?.[1].effective, 107);
  for (let i = 0; i < 3; i++) {
    clock.advance(1000);
    await flush();
  }
  assert.equal(runner.calls.filter((c) => c.argv[0].includes('slow')).length, 1);
  assert.equal(runner.calls.filter((c) => c.argv[0].includes('fast')).length, 4);
  mgr.stop();
});

test('a real script run through ChildProcessRunner (exit status and missing program)', async () => {
  const cfg = config({
    vrrpScripts: [
      vscript('true', { script: script('/bin/sh -c exit\u00200'), weight: 10 }),
      vscript('missing', { script: script('/nonexistent/keepvs-check'), weight: 0 }),
    ],
    vrrpInstances: [instance('A', { trackScripts: [wt('true')] }), instance('B', { trackScripts: [wt('missing')] })],
  });
  const changes: [string, TrackingState][] = [];
  const mgr = new TrackManager({
    config: cfg,
    clock: new SystemClock(),
    runner: new ChildProcessRunner(),
    fileWatcher: noFiles,
    linkWatcher: links({}),
    processLister: procs([]),
    logger: new MemoryLogger(),
    onChange: (i, s) => changes.push([i, s]),
  });
  mgr.start();
  for (let i = 0; i < 100 && !(mgr.stateOf('A')?.effective === 110 && mgr.stateOf('B')?.fault); i++) {
    await new Promise((r) => setTimeout(r, 20));
  }
  mgr.stop();
  assert.equal(mgr.stateOf('A')?.effective, 110);
  assert.equal(mgr.stateOf('B')?.fault, true);
  assert.match(mgr.stateOf('B')?.reason ?? '', /script missing failed/);
});

test('track_interface (own interface unless dont_track_primary) and weights', async () => {
  const state: Record<string, boolean> = { eth0: true, eth1: true };
  const cfg = config({
    vrrpInstances: [
      instance('A', { interface: 'eth0', dontTrackPrimary: false }),
      instance('B', { interface: 'eth0', dontTrackPrimary: true, trackInterfaces: [wt('eth1', -20)] }),
    ],
  });
  const { clock, mgr } = harness(cfg, undefined, { linkWatcher: links(state), linkPollMs: 100 });
  mgr.start();
  await flush();
  assert.equal(mgr.stateOf('A')?.fault, false);
  state.eth0 = false;
  state.eth1 = false;
  clock.advance(100);
  await flush();
  assert.equal(mgr.stateOf('A')?.fault, true);
  assert.equal(mgr.stateOf('B')?.fault, false);
  assert.equal(mgr.stateOf('B')?.effective, 80);
  mgr.stop();
});

test('vrrp_track_process: quorum, quorum_max, params, fork/terminate delays', async () => {
  const list: ProcessInfo[] = [{ pid: 1, comm: 'nginx', cmdline: ['/usr/sbin/nginx', '-g', 'daemon off;'] }];
  const tp = (name: string, over: Partial<TrackProcess> = {}): TrackProcess => ({
    name,
    process: 'nginx',
    weight: 0,
    weightReverse: false,
    quorum: 1,
    forkDelay: 0,
    terminateDelay: 0,
    fullCommand: false,
    loc,
    ...over,
  });
  const cfg = config({
    trackProcesses: [
      tp('p', { terminateDelay: 2 }),
      tp('two', { quorum: 2, weight: 10 }),
      tp('max', { quorumMax: 1, weight: -10 }),
      tp('full', { process: '/usr/sbin/nginx', fullCommand: true, params: '-g', paramMatch: 'initial' }),
    ],
    vrrpInstances: [
      instance('A', { trackProcesses: [wt('p')] }),
      instance('B', { trackProcesses: [wt('two'), wt('max')] }),
      instance('C', { trackProcesses: [wt('full')] }),
    ],
  });
  const { clock, mgr } = harness(cfg, undefined, { processLister: { list: async () => list }, processPollMs: 500 });
  mgr.start();
  await flush();
  assert.equal(mgr.stateOf('A')?.fault, false);
  assert.equal(mgr.stateOf('B')?.effective, 100);
  assert.equal(mgr.stateOf('C')?.fault, false);
  list.push({ pid: 2, comm: 'nginx', cmdline: ['nginx'] });
  clock.advance(500);
  await flush();
  assert.equal(mgr.stateOf('B')?.effective, 100, 'two up (+10), max exceeded (-10)');
  assert.deepEqual(
    mgr.snapshot().processes.map((p) => p.count),
    [2, 2, 2, 1],
  );
  list.length = 0;
  clock.advance(500);
  await flush();
  assert.equal(mgr.stateOf('A')?.fault, false, 'terminate_delay not yet elapsed');
  assert.equal(mgr.stateOf('C')?.fault, true);
  clock.advance(2000);
  await flush();
  assert.equal(mgr.stateOf('A')?.fault, true);
  mgr.stop();
});

test('sync group trackers apply to all members; weights ignored without sync_group_tracking_weight', async () => {
  const runner = new FakeRunner(() => exit(1));
  const base = {
    vrrpScripts: [vscript('chk', { weight: -10 })],
    vrrpInstances: [instance('A'), instance('B')],
  };
  const group = (trackingWeight: boolean) => ({
    name: 'G',
    group: ['A', 'B'],
    trackInterfaces: [],
    trackScripts: [wt('chk')],
    trackFiles: [],
    trackProcesses: [],
    notify: {},
    syncGroupTrackingWeight: trackingWeight,
    loc,
  });
  const h1 = harness(config({ ...base, syncGroups: [group(false)] }), runner);
  h1.mgr.start();
  await flush();
  assert.equal(h1.mgr.stateOf('A')?.fault, true);
  assert.equal(h1.mgr.stateOf('B')?.fault, true);
  h1.mgr.stop();
  const h2 = harness(config({ ...base, syncGroups: [group(true)] }), runner);
  h2.mgr.start();
  await flush();
  assert.deepEqual([h2.mgr.stateOf('A')?.effective, h2.mgr.stateOf('B')?.fault], [90, false]);
  h2.mgr.stop();
});

test('track_file with a real temp file changing, init_file, and reload keeping state', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kv-track-'));
  try {
    const path = join(dir, 'prio');
    const tf: TrackFile = {
      name: 'f',
      file: path,
      weight: 5,
      weightReverse: false,
      initFile: { value: 2, overwrite: false },
      loc,
    };
    const cfg = config({ trackFiles: [tf], vrrpInstances: [instance('A', { trackFiles: [wt('f')] })] });
    const changes: TrackingState[] = [];
    const mgr = new TrackManager({
      config: cfg,
      clock: new SystemClock(),
      runner: new FakeRunner(),
      fileWatcher: new NodeFileWatcher(),
      linkWatcher: links({}),
      processLister: procs([]),
      logger: new MemoryLogger(),
      onChange: (_i, s) => changes.push(s),
      fileRereadMs: 200,
    });
    mgr.start();
    const waitFor = async (pred: () => boolean) => {
      for (let i = 0; i < 150 && !pred(); i++) await new Promise((r) => setTimeout(r, 20));
      assert.ok(pred(), JSON.stringify(changes.at(-1)));
    };
    await waitFor(() => changes.at(-1)?.effective === 110);
    writeFileSync(path, '-3\n');
    await waitFor(() => changes.at(-1)?.effective === 85);
    writeFileSync(path, '-100\n');
    await waitFor(() => changes.at(-1)?.fault === true);
    writeFileSync(path, '1\n');
    await waitFor(() => changes.at(-1)?.effective === 105);
    mgr.reload(cfg);
    assert.equal(mgr.snapshot().files[0].value, 1, 'unchanged track_file keeps its value over reload');
    await new Promise((r) => setTimeout(r, 50)); // let the reload's init_file check settle
    mgr.stop();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('ProcProcessLister sees this process', async () => {
  const list = await new ProcProcessLister().list();
  assert.ok(list.some((p) => p.pid === process.pid && p.comm.length > 0));
});

test('reload keeps unchanged scripts running with their state and restarts changed ones', async () => {
  const runner = new FakeRunner(() => exit(1));
  const cfg = config({
    vrrpScripts: [vscript('a', { weight: -10, fall: 2, rise: 2 }), vscript('b', { weight: -5 })],
    vrrpInstances: [instance('A', { trackScripts: [wt('a'), wt('b')] })],
  });
  const { clock, mgr } = harness(cfg, runner);
  mgr.start();
  await flush();
  assert.equal(mgr.stateOf('A')?.effective, 85);
  const cfg2 = config({
    vrrpScripts: [vscript('a', { weight: -10, fall: 2, rise: 2 }), vscript('b', { weight: -5, interval: 2 })],
    vrrpInstances: [instance('A', { trackScripts: [wt('a'), wt('b')] })],
  });
  const before = runner.calls.length;
  mgr.reload(cfg2);
  // b was redefined: it restarts (runs at once, fresh state); a keeps its FAILED state without a run
  assert.deepEqual(
    runner.calls.slice(before).map((c) => c.argv[0]),
    ['/bin/check-b'],
  );
  await flush();
  assert.equal(mgr.snapshot().scripts.find((s) => s.name === 'a')?.status, 'FAILED');
  assert.equal(mgr.stateOf('A')?.effective, 85);
  clock.advance(1000);
  await flush();
  assert.equal(runner.calls.filter((c) => c.argv[0] === '/bin/check-a').length, 2, 'a keeps its 1 s schedule');
  mgr.stop();
  assert.equal(clock.pending(), 0, 'stop cancels every timer');
});

test('a script that outlives its timeout is killed and counts as a failure (real runner)', async () => {
  const cfg = config({
    vrrpScripts: [vscript('sleepy', { script: script('/bin/sleep 5'), timeout: 0.2, interval: 10 })],
    vrrpInstances: [instance('A', { trackScripts: [wt('sleepy')] })],
  });
  const logger = new MemoryLogger();
  const mgr = new TrackManager({
    config: cfg,
    clock: new SystemClock(),
    runner: new ChildProcessRunner(),
    fileWatcher: noFiles,
    linkWatcher: links({}),
    processLister: procs([]),
    logger,
  });
  mgr.start();
  for (let i = 0; i < 150 && !/timed_out/.test(logger.text()); i++) await new Promise((r) => setTimeout(r, 20));
  mgr.stop();
  assert.match(logger.text(), /VRRP_Script\(sleepy\) timed_out$/m);
  assert.equal(mgr.stateOf('A')?.fault, true);
});

test('SysfsLinkWatcher: loopback is up, a missing interface is down', async () => {
  const w = new SysfsLinkWatcher();
  assert.equal(await w.linkUp('lo'), true);
  assert.equal(await w.linkUp('kv-no-such-if0'), false);
  assert.equal(await w.linkUp('../etc'), false);
});
