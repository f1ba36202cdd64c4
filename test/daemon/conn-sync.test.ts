import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConnSync, conntrackdDir, SYNC_NEEDS_KERNEL, type SyncDaemonPort } from '../../src/daemon/conn-sync.js';
import { MemoryLogger } from '../../src/util/logger.js';
import { cfg } from '../config/helpers.js';

/** conntrackd as ConnSync sees it: records the configurations it was started with and the commands. */
function fakeDaemon(failStart?: string) {
  const log: string[] = [];
  const confs: string[] = [];
  let running = false;
  const d: SyncDaemonPort = {
    get running() {
      return running;
    },
    controlSocket: '/run/test/conntrackd.ctl',
    lockFile: '/run/test/conntrackd.lock',
    async start(conf) {
      if (failStart) return failStart;
      confs.push(conf);
      running = true;
      log.push('start');
      return undefined;
    },
    async command(flag, what) {
      log.push(`${flag} ${what}`);
      return true;
    },
    async external() {
      return [];
    },
    async stop() {
      running = false;
      log.push('stop');
    },
  };
  return { d, log, confs };
}

// the sync interface must have an IPv4 address on the test host: loopback does
const CONF = (extra = '') => `global_defs {
 lvs_sync_daemon lo VI_1${extra}
}
vrrp_instance VI_1 {
 interface lo
 virtual_router_id 51
 priority 100
 virtual_ipaddress {
  198.18.0.100
 }
}
virtual_server 198.18.0.100 80 {
 lb_algo rr
 lb_kind NAT
 protocol TCP
 real_server 198.18.1.11 80 {
 }
}
`;

const flows = () => ({ realServers: ['198.18.1.11'], protocols: ['tcp' as const] });

function make(conf = CONF(), plane: 'nft' | 'proxy' = 'nft', failStart?: string) {
  const f = fakeDaemon(failStart);
  const logger = new MemoryLogger();
  const s = new ConnSync(cfg(conf), {
    plane,
    runner: { run: async () => ({ exitCode: 0, signal: null, timedOut: false, stdout: '' }) },
    logger,
    dir: '/run/test',
    flows,
    daemon: f.d,
  });
  return { s, ...f, logger };
}

test('lvs_sync_daemon: conntrackd starts as backup and follows the instance: MASTER commits first', async () => {
  const { s, log, confs } = make();
  await s.start();
  assert.deepEqual(log, ['start']);
  assert.match(confs[0], /Interface lo/);
  assert.match(confs[0], /IPv4_address 198\.18\.1\.11/);
  assert.deepEqual(s.lines(), ['backup sync daemon (mcast=lo, syncid=51)']);
  await s.vrrpRole('VI_1', 'BACKUP');
  await s.vrrpRole('OTHER', 'MASTER'); // not followed: nothing
  await s.vrrpRole('VI_1', 'MASTER');
  // the VIPs may go once the commit ran; the rest follows
  assert.deepEqual(log.slice(0, 4), ['start', '-t shorten-timers', '-n request-resync', '-c commit']);
  await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(log.slice(4), ['-f flush', '-R resync-kernel', '-B bulk-send']);
  assert.deepEqual(s.lines(), ['master sync daemon (mcast=lo, syncid=51)']);
  const d = s.daemons()[0];
  assert.equal(d.group, '224.0.0.81');
  assert.equal(d.port, 8848);
  assert.equal(d.ttl, 1);
  assert.ok(d.maxlen && d.maxlen > 0);
  await s.stop();
  assert.equal(log.at(-1), 'stop');
  assert.deepEqual(s.daemons(), []);
});

test('a reload that changes the sync restarts conntrackd; an unchanged one leaves it alone', async () => {
  const { s, log, confs } = make();
  await s.start();
  await s.reload(cfg(CONF()));
  assert.equal(log.filter((l) => l === 'start').length, 1);
  await s.reload(cfg(CONF(' port 9999')));
  assert.equal(log.filter((l) => l === 'start').length, 2);
  assert.match(confs[1], /Group 9999/);
  // no lvs_sync_daemon any more: stopped
  await s.reload(cfg(CONF().replace(/ lvs_sync_daemon .*\n/, '')));
  assert.equal(log.at(-1), 'stop');
  await s.stop();
});

test('the userspace proxy cannot sync: nothing starts and the reason is logged and reported (KV319)', async () => {
  const { s, log, logger } = make(CONF(), 'proxy');
  await s.start();
  assert.equal(log.length, 0);
  assert.equal(s.note(), SYNC_NEEDS_KERNEL);
  assert.ok(logger.lines.some((l) => l.level === 'warning' && l.message.includes('KV319')));
  assert.match(
    (await s.startDaemon({ state: 'master', interface: 'lo', syncId: 1 })) ?? '',
    /needs the kernel data plane/,
  );
  await s.stop();
});

test('conntrackd that cannot start: the reason is the note, and -L --daemon shows nothing', async () => {
  const { s, logger } = make(CONF(), 'nft', '/usr/sbin/conntrackd is not installed (Debian package conntrackd)');
  await s.start();
  assert.match(s.note() ?? '', /not installed/);
  assert.deepEqual(s.daemons(), []);
  assert.ok(logger.lines.some((l) => l.level === 'error' && l.message.includes('not installed')));
  await s.stop();
});

test('keepvsadm --start-daemon / --stop-daemon without lvs_sync_daemon, with ipvsadm errors', async () => {
  const { s, log } = make(CONF().replace(/ lvs_sync_daemon .*\n/, ''));
  await s.start();
  assert.equal(log.length, 0);
  assert.equal(await s.stopDaemon('master'), 'No daemon is running');
  assert.equal(await s.startDaemon({ state: 'backup', interface: 'lo', syncId: 3 }), undefined);
  assert.deepEqual(s.lines(), ['backup sync daemon (mcast=lo, syncid=3)']);
  assert.equal(await s.startDaemon({ state: 'backup', interface: 'lo', syncId: 3 }), 'Daemon has already run');
  assert.match((await s.startDaemon({ state: 'master', interface: 'eth9', syncId: 3 })) ?? '', /one conntrackd/);
  assert.equal(await s.startDaemon({ state: 'master', interface: 'lo', syncId: 3 }), undefined);
  assert.deepEqual(s.lines(), ['master sync daemon (mcast=lo, syncid=3)', 'backup sync daemon (mcast=lo, syncid=3)']);
  // the master's start is a takeover: commit first
  assert.ok(log.indexOf('-c commit') > log.indexOf('-n request-resync'));
  assert.equal(await s.stopDaemon('backup'), undefined);
  assert.deepEqual(s.lines(), ['master sync daemon (mcast=lo, syncid=3)']);
  assert.equal(await s.stopDaemon('master'), undefined);
  assert.equal(log.at(-1), 'stop');
  assert.deepEqual(s.lines(), []);
  await s.stop();
});

test('with lvs_sync_daemon configured, keepvsadm cannot start or stop a second daemon', async () => {
  const { s } = make();
  await s.start();
  assert.equal(await s.startDaemon({ state: 'master', interface: 'lo', syncId: 1 }), 'Daemon has already run');
  assert.match((await s.stopDaemon('backup')) ?? '', /lvs_sync_daemon/);
  await s.stop();
});

test('no instance named: both daemons run and flows go straight into the kernel (keepalived.conf(5))', async () => {
  const conf = CONF().replace(' lvs_sync_daemon lo VI_1', ' lvs_sync_daemon lo');
  const { s, confs } = make(conf);
  await s.start();
  assert.match(confs[0], /DisableExternalCache on/);
  assert.deepEqual(s.lines(), ['master sync daemon (mcast=lo, syncid=0)', 'backup sync daemon (mcast=lo, syncid=0)']);
  await s.stop();
});

test('each keepvs instance has its own conntrackd directory, even with its control socket beside another one', () => {
  // two directors in one PID namespace (lab namespaces, containers sharing /run) with their sockets in one
  // directory: a shared conntrackd directory meant one pid file, and a restarting director killed the
  // other's conntrackd as its own stale one
  assert.notEqual(conntrackdDir('/tmp/pair/lb1.sock'), conntrackdDir('/tmp/pair/lb2.sock'));
  assert.equal(conntrackdDir('/run/keepvs/keepvs.sock'), '/run/keepvs/keepvs.conntrackd');
});
