import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  CONFIG_TEST_CANNOT_RUN,
  CONFIG_TEST_LENIENT_ERRORS,
  CONFIG_TEST_OK,
  CONFIG_TEST_PROBLEMS,
  CONFIG_TEST_SECURITY,
  runConfigTest,
} from '../../src/cli/config-test.js';
import { DEFAULT_CONFIG_FILE, parseKeepvsArgs } from '../../src/cli/keepvs-args.js';
import { MemoryConfigFs } from '../../src/config/fs-port.js';
import { secureScripts } from '../../src/config/script-security.js';
import { fakePort } from './script-fakes.js';

const args = (...a: string[]) => {
  const r = parseKeepvsArgs(a);
  assert.ok(r.ok, r.ok ? '' : r.error.message);
  return r.value;
};
const bad = (...a: string[]) => {
  const r = parseKeepvsArgs(a);
  assert.ok(!r.ok);
  assert.equal(r.error.exitCode, 2);
  return r.error.message;
};

test('keepvs args: defaults', () => {
  const o = args();
  assert.equal(o.command, 'run');
  assert.equal(o.useFile, DEFAULT_CONFIG_FILE);
  assert.deepEqual(o.api, { host: '127.0.0.1', port: 9180 });
  assert.equal(o.dataplane, 'auto');
  assert.equal(o.pidFile, '/run/keepvs.pid');
});

test('keepvs args: keepalived options, short, long, attached and combined', () => {
  const o = args(
    '-f',
    '/k.conf',
    '-P',
    '-n',
    '-lD',
    '-S',
    '3',
    '-p',
    '/p',
    '-r',
    '/r',
    '-c',
    '/c',
    '-i',
    'lb1',
    '-R',
    '-G',
    '-g/var/log/k',
  );
  assert.deepEqual(
    [
      o.useFile,
      o.vrrpOnly,
      o.dontFork,
      o.logConsole,
      o.logDetail,
      o.logFacility,
      o.pidFile,
      o.vrrpPidFile,
      o.checkersPidFile,
    ],
    ['/k.conf', true, true, true, true, '3', '/p', '/r', '/c'],
  );
  assert.deepEqual([o.configId, o.dontRespawn, o.noSyslog, o.logFile], ['lb1', true, true, '/var/log/k']);
  const l = args('--use-file=/a.conf', '--check', '--log-facility', 'local5', '--config-id=x', '--log-file');
  assert.deepEqual(
    [l.useFile, l.checkOnly, l.logFacility, l.configId, l.logFile],
    ['/a.conf', true, 'local5', 'x', '/tmp/keepalived.log'],
  );
  assert.equal(args('-f/b.conf').useFile, '/b.conf');
});

test('keepvs args: -t / --config-test[=FILE], --dump-conf / -d, --help, --version', () => {
  assert.equal(args('-t').command, 'config-test');
  assert.deepEqual([args('-t', '-f', '/x').useFile, args('-t', '-f', '/x').command], ['/x', 'config-test']);
  // keepalived's meaning: -t=FILE is the file the report goes to, not the configuration
  assert.deepEqual(
    [args('--config-test=/y.log', '-f', '/x').useFile, args('--config-test=/y.log').configTestLog],
    ['/x', '/y.log'],
  );
  assert.equal(args('-t/z.log').configTestLog, '/z.log');
  assert.deepEqual(
    [args('-t', '--lenient').lenient, args('-t', '--no-interface-check').noInterfaceCheck],
    [true, true],
  );
  assert.equal(args('--dump-conf').command, 'dump-conf');
  assert.equal(args('-d', '-f', '/x').command, 'dump-conf');
  assert.equal(args('-h').command, 'help');
  assert.equal(args('--version').command, 'version');
  assert.equal(args('-v', '-h').command, 'help');
});

test('keepvs args: keepvs options and demo subcommand', () => {
  const o = args('--socket', '/run/keepvs.sock', '--api', '[::1]:9000', '--api-token=s3cret', '--dataplane', 'nft');
  assert.deepEqual(
    [o.socket, o.api, o.apiToken, o.dataplane],
    ['/run/keepvs.sock', { host: '::1', port: 9000 }, 's3cret', 'nft'],
  );
  assert.deepEqual(args('--api', '0.0.0.0:80').api, { host: '0.0.0.0', port: 80 });
  const d = args('-l', 'demo', '--port', '8080');
  assert.deepEqual([d.command, d.demoArgs], ['demo', ['--port', '8080']]);
});

test('keepvs args: clear errors with exit status 2', () => {
  assert.match(bad('--bogus'), /unrecognized option '--bogus'/);
  assert.match(bad('-Z'), /invalid option -- 'Z'/);
  assert.match(bad('-f'), /requires an argument -- 'f'/);
  assert.match(bad('--use-file'), /requires an argument/);
  assert.match(bad('--dont-fork=yes'), /doesn't allow an argument/);
  assert.match(bad('-S', 'local9'), /invalid log facility/);
  assert.match(bad('--api', 'localhost'), /invalid --api/);
  assert.match(bad('--api', 'h:70000'), /invalid --api/);
  assert.match(bad('--dataplane', 'ipvs'), /invalid --dataplane/);
  assert.match(bad('-P', '-C'), /mutually exclusive/);
  assert.match(bad('stray'), /unexpected argument 'stray'/);
  assert.match(bad('--bogus'), /Try 'keepvs --help'/);
});

const lines = () => {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { stdout: (l: string) => out.push(l), stderr: (l: string) => err.push(l) } };
};

test('runConfigTest: every diagnostic printed; exit status as keepalived -t (0, 4 cannot run, 5 reported), --lenient 0/3', () => {
  const fs = new MemoryConfigFs({
    '/k/ok.conf': 'global_defs {\n router_idd x\n}\n',
    '/k/bad.conf': 'vrrp_instance V {\n interface eth0\n virtual_router_id 300\n priority 0\n}\n',
    '/k/clean.conf': 'virtual_server 10.0.0.1 80 {\n lb_algo rr\n protocol TCP\n real_server 10.0.0.2 80 {\n }\n}\n',
  });
  const a = lines();
  // an unknown keyword: keepalived -t exits 5 (CONFIG_UNKNOWN_KEYWORD)
  assert.equal(runConfigTest({ useFile: '/k/ok.conf' }, { fs, ...a.io }), CONFIG_TEST_PROBLEMS);
  assert.equal(runConfigTest({ useFile: '/k/ok.conf', lenient: true }, { fs, ...lines().io }), CONFIG_TEST_OK);
  // lb_algo is accepted silently by keepalived: a note, exit 0
  const n = lines();
  assert.equal(runConfigTest({ useFile: '/k/clean.conf' }, { fs, ...n.io }), CONFIG_TEST_OK);
  assert.match(n.err[0], /note: 'lb_algo' is deprecated/);
  assert.match(
    a.err[0],
    /^\/k\/ok\.conf:2:2: warning: unknown keyword 'router_idd' in global_defs; did you mean 'router_id'\? \[KV110\]$/,
  );
  assert.match(a.err.at(-1)!, /0 errors, 1 warning; configuration runs as repaired/);
  const b = lines();
  assert.equal(runConfigTest({ useFile: '/k/bad.conf' }, { fs, ...b.io }), CONFIG_TEST_CANNOT_RUN);
  assert.equal(
    runConfigTest({ useFile: '/k/bad.conf', lenient: true }, { fs, ...lines().io }),
    CONFIG_TEST_LENIENT_ERRORS,
  );
  assert.ok(
    b.err.some((l) => /:3:20: error: 'virtual_router_id' 300 is out of range 1\.\.255 \[KV201\]/.test(l)),
    b.err.join('\n'),
  );
  assert.ok(b.err.some((l) => /:4:11: error: .*priority.* \[KV201\]/.test(l)));
  const c = lines();
  assert.equal(runConfigTest({ useFile: '/k/none.conf' }, { fs, ...c.io }), CONFIG_TEST_CANNOT_RUN);
  assert.match(c.err[0], /KV001/);
});

test('runConfigTest: interfaces missing on this host are reported as keepalived does, unless --no-interface-check', () => {
  const fs = new MemoryConfigFs({
    '/k/if.conf':
      'vrrp_instance V {\n interface eth9\n virtual_router_id 3\n track_interface {\n  eth8\n }\n virtual_ipaddress {\n  10.0.0.1 dev eth7\n }\n}\n',
  });
  const exists = (n: string) => n === 'eth0';
  const a = lines();
  assert.equal(
    runConfigTest({ useFile: '/k/if.conf' }, { fs, interfaceExists: exists, ...a.io }),
    CONFIG_TEST_PROBLEMS, // keepalived 2.2.7 -t exits 5 here (its per-interface reports are general errors)
  );
  const text = a.err.join('\n');
  assert.match(text, /interface eth9 for vrrp_instance V doesn't exist \[KV322\]/);
  assert.match(text, /:5:3: warning: \(V\) tracked interface eth8 doesn't exist/);
  assert.match(text, /:8:3: warning: interface eth7 for ip address 10\.0\.0\.1 doesn't exist/);
  const b = lines();
  assert.equal(
    runConfigTest({ useFile: '/k/if.conf', noInterfaceCheck: true }, { fs, interfaceExists: exists, ...b.io }),
    CONFIG_TEST_OK,
  );
});

test('runConfigTest: scripts run as root without enable_script_security exit 6, as keepalived -t', () => {
  const conf =
    'vrrp_script chk {\n script "/k/chk"\n}\n' +
    'vrrp_instance V {\n interface eth0\n virtual_router_id 3\n track_script {\n  chk\n }\n virtual_ipaddress {\n  10.0.0.1\n }\n}\n';
  const fs = new MemoryConfigFs({ '/k/s.conf': conf });
  const port = fakePort({ '/k': { kind: 'dir', mode: 0o777 }, '/k/chk': {} });
  const a = lines();
  assert.equal(
    runConfigTest({ useFile: '/k/s.conf' }, { fs, afterLoad: (r) => secureScripts(r, port), ...a.io }),
    CONFIG_TEST_SECURITY,
  );
  assert.match(a.err.join('\n'), /SECURITY VIOLATION .*\[KV321\]/);
  assert.equal(runConfigTest({ useFile: '/k/s.conf' }, { fs, ...lines().io }), CONFIG_TEST_OK);
});

test('runConfigTest: --dump-conf prints the model as JSON; config id defaults to the host name label', () => {
  const fs = new MemoryConfigFs({ '/k/a.conf': '@lb1 global_defs {\n@lb1  router_id one\n@lb1 }\n' });
  const a = lines();
  assert.equal(runConfigTest({ useFile: '/k/a.conf', dump: true }, { fs, hostname: 'lb1.example.com', ...a.io }), 0);
  assert.equal(JSON.parse(a.out.join('\n')).globalDefs.routerId, 'one');
  const b = lines();
  runConfigTest({ useFile: '/k/a.conf', dump: true, configId: 'lb2' }, { fs, hostname: 'lb1', ...b.io });
  assert.equal(JSON.parse(b.out.join('\n')).globalDefs.routerId, undefined);
});

test('keepvs binary: -t on a seed fixture, usage error, --help', () => {
  const root = join(import.meta.dirname, '..', '..', '..');
  const bin = join(root, 'bin', 'keepvs.js');
  const run = (...a: string[]) => spawnSync(process.execPath, [bin, ...a], { encoding: 'utf8', timeout: 20000 });
  const t = run('-t', '-f', join(root, 'test', 'fixtures', 'conf', 'seed-wugk-master.conf'));
  assert.equal(t.status, 5, t.stderr); // keepalived -t: 5 on this file (unknown keywords)
  assert.match(t.stderr, /seed-wugk-master\.conf:15:5: warning: unknown keyword 'lvs_sync_daemon_inteface'/);
  const u = run('--nope');
  assert.equal(u.status, 2);
  assert.match(u.stderr, /unrecognized option/);
  const h = run('--help');
  assert.equal(h.status, 0);
  assert.match(h.stdout, /--config-test/);
  const d = run('--dump-conf', '-f', join(root, 'test', 'fixtures', 'conf', 'seed-netseek.conf'));
  assert.equal(d.status, 0);
  assert.equal(JSON.parse(d.stdout).virtualServers[0].scheduler, 'wrr');
});
