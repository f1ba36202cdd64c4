import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Config, RealServer, VirtualServer } from '../../src/config/model.js';
import { Notifier } from '../../src/notify/notifier.js';
import { ChildProcessRunner } from '../../src/os/process-runner.js';
import { FakeClock } from '../../src/util/clock.js';
import type { KeepvsEvent } from '../../src/util/events.js';
import { MemoryLogger } from '../../src/util/logger.js';
import { config, FakeRunner, flush, globalDefs, instance, loc, script } from '../track/fixtures.js';
import { startSmtpServer } from './smtp-server.js';

const at = 1_700_000_000_000;
const vrrpState = (inst: string, to: string, priority = 100): KeepvsEvent =>
  ({ type: 'vrrp-state', instance: inst, from: 'BACKUP', to, priority, reason: 'test', at }) as KeepvsEvent;

const rs = (over: Partial<RealServer> = {}): RealServer => ({
  address: '1.2.3.4',
  family: 4,
  port: 80,
  weight: 1,
  method: 'NAT',
  uthreshold: 0,
  lthreshold: 0,
  inhibitOnFailure: false,
  alpha: false,
  checkers: [],
  loc,
  ...over,
});
const vs = (over: Partial<VirtualServer> = {}): VirtualServer => ({
  key: { kind: 'address', address: '192.168.201.15', family: 4, port: 80 },
  protocol: 'TCP',
  scheduler: 'wlc',
  schedFlags: [],
  ops: false,
  method: 'NAT',
  delayLoop: 60,
  haSuspend: false,
  alpha: false,
  omega: false,
  quorum: 1,
  hysteresis: 0,
  inhibitOnFailure: false,
  sorryServerInhibit: false,
  realServers: [rs({ notifyUp: script('/bin/rs-up --x'), notifyDown: script('/bin/rs-down') })],
  loc,
  ...over,
});

function notifyConfig(over: Partial<Config> = {}): Config {
  return config({
    globalDefs: globalDefs({ scriptUser: { user: 'nobody', group: 'nogroup' } }),
    vrrpInstances: [
      instance('VI_1', {
        notify: {
          master: script('/bin/to-master'),
          backup: script('/bin/to-backup'),
          fault: script('/bin/to-fault', 'alice'),
          stop: script('/bin/to-stop'),
          notify: script('/bin/generic "quoted arg"'),
        },
      }),
    ],
    syncGroups: [
      {
        name: 'G1',
        group: ['VI_1'],
        trackInterfaces: [],
        trackScripts: [],
        trackFiles: [],
        trackProcesses: [],
        notify: { master: script('/bin/g-master'), notify: script('/bin/g-generic') },
        syncGroupTrackingWeight: false,
        loc,
      },
    ],
    virtualServers: [vs({ quorumUp: script('/bin/q-up'), quorumDown: script('/bin/q-down') })],
    ...over,
  });
}

const make = (cfg: Config, runner = new FakeRunner(), extra: Record<string, unknown> = {}) => {
  const logger = new MemoryLogger();
  const n = new Notifier({ config: cfg, runner, logger, clock: new FakeClock(), hostname: 'lb1', ...extra });
  return { n, runner, logger };
};

test('notify_* then generic notify with INSTANCE NAME STATE PRIORITY, for every state', async () => {
  const { n, runner } = make(notifyConfig());
  const cases: [string, string[][]][] = [
    ['MASTER', [['/bin/to-master'], ['/bin/generic', '"quoted', 'arg"', 'INSTANCE', 'VI_1', 'MASTER', '100']]],
    ['BACKUP', [['/bin/to-backup'], ['/bin/generic', '"quoted', 'arg"', 'INSTANCE', 'VI_1', 'BACKUP', '100']]],
    ['FAULT', [['/bin/to-fault'], ['/bin/generic', '"quoted', 'arg"', 'INSTANCE', 'VI_1', 'FAULT', '100']]],
    ['STOP', [['/bin/to-stop'], ['/bin/generic', '"quoted', 'arg"', 'INSTANCE', 'VI_1', 'STOP', '100']]],
    // no notify_deleted configured: keepalived reports FAULT
    ['DELETED', [['/bin/to-fault'], ['/bin/generic', '"quoted', 'arg"', 'INSTANCE', 'VI_1', 'FAULT', '100']]],
    ['INIT', []],
  ];
  for (const [state, argvs] of cases) {
    runner.calls.length = 0;
    n.handle(vrrpState('VI_1', state));
    await n.idle();
    assert.deepEqual(
      runner.calls.map((c) => c.argv),
      argvs,
      state,
    );
  }
  runner.calls.length = 0;
  n.handle(vrrpState('VI_1', 'FAULT'));
  await n.idle();
  assert.deepEqual(runner.calls[0].options.user, 'alice', 'per-script user');
  assert.deepEqual([runner.calls[1].options.user, runner.calls[1].options.group], ['nobody', 'nogroup'], 'script_user');
  assert.ok((runner.calls[1].options.timeoutMs ?? 0) > 0);
  n.handle(vrrpState('VI_1', 'STOP'));
  runner.calls.length = 0;
  n.handle(vrrpState('VI_1', 'STOP'));
  assert.equal(runner.calls[0].options.timeoutMs, 1000, 'stop scripts are given 1 s');

  const withDeleted = notifyConfig();
  const vi = withDeleted.vrrpInstances[0];
  const { n: n2, runner: r2 } = make({
    ...withDeleted,
    vrrpInstances: [{ ...vi, notify: { ...vi.notify, deleted: script('/bin/deleted') } }],
  });
  n2.handle(vrrpState('VI_1', 'DELETED'));
  await n2.idle();
  assert.deepEqual(
    r2.calls.map((c) => c.argv),
    [['/bin/deleted'], ['/bin/generic', '"quoted', 'arg"', 'INSTANCE', 'VI_1', 'DELETED', '100']],
  );
  n.stop();
  n2.stop();
});

test('sync group: GROUP NAME STATE 0', async () => {
  const { n, runner } = make(notifyConfig());
  n.handle({ type: 'sync-group-state', group: 'G1', from: 'BACKUP', to: 'MASTER', at });
  await n.idle();
  assert.deepEqual(
    runner.calls.map((c) => c.argv),
    [['/bin/g-master'], ['/bin/g-generic', 'GROUP', 'G1', 'MASTER', '0']],
  );
  n.stop();
});

test('rs-health runs notify_up/notify_down; vs-quorum runs quorum_up/quorum_down', async () => {
  const { n, runner } = make(notifyConfig());
  n.handle({ type: 'rs-health', service: 'tcp:192.168.201.15:80', dest: '1.2.3.4:80', up: false, reason: 'x', at });
  n.handle({ type: 'rs-health', service: 'tcp:192.168.201.15:80', dest: '1.2.3.4:80', up: true, reason: 'x', at });
  n.handle({ type: 'vs-quorum', service: 'tcp:192.168.201.15:80', up: false, at });
  n.handle({ type: 'vs-quorum', service: 'tcp:192.168.201.15:80', up: true, at });
  n.handle({ type: 'rs-health', service: 'udp:192.168.201.15:80', dest: '1.2.3.4:80', up: true, reason: 'x', at });
  await n.idle();
  assert.deepEqual(
    runner.calls.map((c) => c.argv),
    [['/bin/rs-down'], ['/bin/rs-up', '--x'], ['/bin/q-down'], ['/bin/q-up']],
  );
  n.stop();
});

test('virtual_server_group services (group:<name>:<proto>) and runCheckerScripts=false', async () => {
  const cfg = notifyConfig({
    virtualServers: [vs({ key: { kind: 'group', group: 'WEB' }, quorumUp: script('/bin/q-up') })],
    virtualServerGroups: [
      {
        name: 'WEB',
        entries: [{ kind: 'address', address: '10.0.0.1', lastAddress: '10.0.0.5', family: 4, port: 80, loc }],
        loc,
      },
    ],
  });
  const { n, runner } = make(cfg);
  n.handle({ type: 'rs-health', service: 'group:WEB:tcp', dest: '1.2.3.4:80', up: false, reason: 'x', at });
  n.handle({ type: 'vs-quorum', service: 'tcp:10.0.0.3:80', up: true, at });
  n.handle({ type: 'vs-quorum', service: 'tcp:10.0.0.6:80', up: true, at });
  await n.idle();
  assert.deepEqual(
    runner.calls.map((c) => c.argv),
    [['/bin/rs-down'], ['/bin/q-up']],
  );
  const quiet = make(cfg, new FakeRunner(), { runCheckerScripts: false });
  quiet.n.handle({ type: 'rs-health', service: 'group:WEB:tcp', dest: '1.2.3.4:80', up: false, reason: 'x', at });
  await quiet.n.idle();
  assert.equal(quiet.runner.calls.length, 0);
  n.stop();
  quiet.n.stop();
});

test('nothing crashes on a missing script or a bad user (real runner)', async () => {
  const cfg = config({
    vrrpInstances: [
      instance('VI_1', {
        notify: { master: script('/nonexistent/notify-master'), backup: script('/bin/true', 'no-such-user-kv') },
      }),
    ],
  });
  const { n, logger } = make(cfg, new ChildProcessRunner() as unknown as FakeRunner);
  n.handle(vrrpState('VI_1', 'MASTER'));
  n.handle(vrrpState('VI_1', 'BACKUP'));
  await n.idle();
  assert.match(logger.text(), /cannot run \/nonexistent\/notify-master/);
  assert.match(logger.text(), /\/bin\/true/);
  n.stop();
});

const haveMkfifo = spawnSync('mkfifo', ['--version']).status === 0;

/** An in-process FIFO reader: opened non-blocking, so it is a reader before anything is written. */
function openReader(path: string): { drain(): string; close(): void } {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  return {
    drain() {
      let out = '';
      const buf = Buffer.alloc(65536);
      for (;;) {
        let n: number;
        try {
          n = readSync(fd, buf, 0, buf.length, null);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'EAGAIN') break;
          throw e;
        }
        if (n === 0) break;
        out += buf.subarray(0, n).toString('utf8');
      }
      return out;
    },
    close: () => closeSync(fd),
  };
}

test('FIFO lines exactly as keepalived writes them, with a reader and with none', {
  skip: !haveMkfifo && 'no mkfifo',
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kv-fifo-'));
  try {
    const fifo = join(dir, 'notify.fifo');
    const lvsFifo = join(dir, 'lvs.fifo');
    const cfg = notifyConfig({
      globalDefs: globalDefs({ notifyFifo: { path: fifo }, lvsNotifyFifo: { path: lvsFifo } }),
      virtualServers: [
        vs(),
        vs({ key: { kind: 'fwmark', fwmark: 7, family: 4 }, realServers: [rs({ address: '10.0.0.9', port: 8080 })] }),
      ],
    });
    const { n } = make(cfg, new ChildProcessRunner() as unknown as FakeRunner);
    await n.idle();
    assert.ok(statSync(fifo).isFIFO(), 'the FIFO is created when missing');
    // nobody reads yet: lines are dropped, nothing blocks
    n.handle(vrrpState('VI_1', 'BACKUP'));
    await flush();
    const reader = openReader(fifo);
    const lvsReader = openReader(lvsFifo);
    n.handle(vrrpState('VI_1', 'MASTER', 102));
    n.handle({ type: 'sync-group-state', group: 'G1', from: 'MASTER', to: 'BACKUP', at });
    n.handle({ type: 'vs-quorum', service: 'tcp:192.168.201.15:80', up: true, at });
    n.handle({ type: 'rs-health', service: 'tcp:192.168.201.15:80', dest: '1.2.3.4:80', up: false, reason: 'x', at });
    n.handle({ type: 'rs-health', service: 'fwm:7:4', dest: '10.0.0.9:8080', up: true, reason: 'x', at });
    await n.idle();
    await flush();
    const lvsLines = [
      'VS [192.168.201.15]:tcp:80 UP\n',
      'RS [1.2.3.4]:tcp:80 [192.168.201.15]:tcp:80 DOWN\n',
      'RS [10.0.0.9]:tcp:8080 FWM 7 UP\n',
    ];
    assert.equal(reader.drain(), ['INSTANCE "VI_1" MASTER 102\n', 'GROUP "G1" BACKUP 0\n', ...lvsLines].join(''));
    assert.equal(lvsReader.drain(), lvsLines.join(''));

    // the reader goes away: the next line is dropped (EPIPE), a new reader gets later lines
    reader.close();
    n.handle(vrrpState('VI_1', 'FAULT', 100));
    await n.idle();
    await flush();
    const again = openReader(fifo);
    n.handle(vrrpState('VI_1', 'BACKUP', 100));
    await n.idle();
    await flush();
    assert.equal(again.drain(), 'INSTANCE "VI_1" BACKUP 100\n');
    again.close();
    lvsReader.close();
    n.stop();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('notify_fifo_script is started with the FIFO path appended', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kv-fifo-'));
  try {
    spawnSync('mkfifo', [join(dir, 'f')]);
    const cfg = config({
      globalDefs: globalDefs({ vrrpNotifyFifo: { path: join(dir, 'f'), script: script('/bin/reader -v') } }),
    });
    const runner = new FakeRunner(() => new Promise(() => {}));
    const { n } = make(cfg, runner);
    await flush();
    assert.deepEqual(runner.calls[0].argv, ['/bin/reader', '-v', join(dir, 'f')]);
    assert.ok(runner.calls[0].options.signal, 'killed on stop through the abort signal');
    n.stop();
    assert.equal(runner.calls[0].options.signal?.aborted, true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('smtp_alert: VRRP and checker mail to a loopback SMTP server', async () => {
  const smtp = await startSmtpServer();
  try {
    const base = notifyConfig();
    const cfg: Config = {
      ...base,
      globalDefs: globalDefs({
        routerId: 'LVS_DEVEL',
        notificationEmail: ['ops@example.com', 'sre@example.com'],
        notificationEmailFrom: 'keepalived@lb1.example.com',
        smtpServer: { host: '127.0.0.1', port: smtp.port },
        smtpHeloName: 'lb1.example.com',
        smtpConnectTimeout: 5,
        smtpAlert: true,
      }),
      vrrpInstances: [{ ...base.vrrpInstances[0], notify: {} }],
    };
    const { n, logger } = make(cfg, new FakeRunner());
    n.handle(vrrpState('VI_1', 'MASTER'));
    n.handle(vrrpState('VI_1', 'MASTER')); // same state again: no second mail
    n.handle({ type: 'sync-group-state', group: 'G1', from: 'BACKUP', to: 'FAULT', at });
    n.handle({
      type: 'rs-health',
      service: 'tcp:192.168.201.15:80',
      dest: '1.2.3.4:80',
      up: false,
      reason: 'TCP CHECK failed on service',
      at,
    });
    n.handle({ type: 'vs-quorum', service: 'tcp:192.168.201.15:80', up: false, at });
    for (let i = 0; i < 200 && smtp.mails.length < 4; i++) await new Promise((r) => setTimeout(r, 20));
    await n.idle();
    assert.equal(smtp.mails.length, 4, logger.text());
    const [m1, m2, m3, m4] = smtp.mails;
    assert.equal(m1.helo, 'lb1.example.com');
    assert.equal(m1.from, '<keepalived@lb1.example.com>');
    assert.deepEqual(m1.to, ['<ops@example.com>', '<sre@example.com>']);
    // RFC 5322 §2.2.3 unfolding: long subjects are folded by nodemailer
    const subject = (m: typeof m1) => /^Subject: (.*)$/m.exec(m.data.replace(/\r\n(?=[ \t])/g, ''))?.[1];
    const body = (m: typeof m1) => m.data.split('\r\n\r\n').slice(1).join('\r\n\r\n').trim();
    assert.equal(subject(m1), '[LVS_DEVEL] VRRP Instance VI_1 - Entering MASTER state');
    assert.equal(body(m1), '=> VRRP Instance is now owning VRRP VIPs <=');
    assert.match(m1.data, /^X-Mailer: Keepalived$/m);
    assert.equal(subject(m2), '[LVS_DEVEL] VRRP Group G1 - Entering FAULT state');
    assert.equal(body(m2), '=> All VRRP group instances are now in FAULT state <=');
    assert.equal(
      subject(m3),
      '[LVS_DEVEL] Realserver [1.2.3.4]:tcp:80 of virtual server [192.168.201.15]:tcp:80 - DOWN',
    );
    assert.equal(body(m3), '=> TCP CHECK failed on service <=');
    assert.equal(subject(m4), '[LVS_DEVEL] Virtualserver [192.168.201.15]:tcp:80 - DOWN');
    assert.equal(body(m4), '=> Lost quorum <=');
    n.stop();
  } finally {
    await smtp.close();
  }
});

test('SMTP down: mail failure is logged, nothing throws, scripts still run', async () => {
  // a port that refuses: bind, read the port, close
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  const base = notifyConfig();
  const cfg: Config = {
    ...base,
    globalDefs: globalDefs({
      notificationEmail: ['ops@example.com'],
      smtpServer: { host: '127.0.0.1', port },
      smtpConnectTimeout: 2,
      smtpAlert: true,
    }),
  };
  const { n, runner, logger } = make(cfg);
  n.handle(vrrpState('VI_1', 'MASTER'));
  for (let i = 0; i < 200 && !/not sent/.test(logger.text()); i++) await new Promise((r) => setTimeout(r, 20));
  assert.match(logger.text(), /SMTP alert "\[lb1\] VRRP Instance VI_1 - Entering MASTER state" not sent/);
  assert.equal(runner.calls.length, 2);
  n.stop();
});
