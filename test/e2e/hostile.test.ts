// Hostile local conditions against a running keepvs: a second daemon on the same pid file, a planted
// symlink at the API token file, a typo'd block name in a reload, keepvsadm writing into a closed pipe.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { freePort } from './harness.js';

const root = process.cwd();
const dir = mkdtempSync(join(tmpdir(), 'kv-hostile-'));
const run = join(dir, 'run');
const conf = join(dir, 'keepalived.conf');
const victim = join(dir, 'victim');
let apiPort = 0;
let vipA = 0;
let vipB = 0;
let rsPort = 0;
let daemon: ChildProcess;
let output = '';
let rs: http.Server;
let notKeepvs: ChildProcess;

const vs = (kw: string, port: number) =>
  `${kw} 127.0.0.1 ${port} {\n  lvs_sched rr\n  protocol TCP\n  real_server 127.0.0.1 ${rsPort} {\n  }\n}\n`;

const daemonArgs = (pid: string) => [
  join(root, 'bin/keepvs.js'),
  '-n',
  '-l',
  '-G',
  '-C',
  '-f',
  conf,
  '--socket',
  join(run, 'keepvs.sock'),
  '--api',
  `127.0.0.1:${apiPort}`,
  '-p',
  pid,
  '-c',
  join(dir, 'checkers.pid'),
  '-r',
  join(dir, 'vrrp.pid'),
  '--dataplane-workers=1',
  // the userspace proxy even as root: auto would install kernel rules in this host's namespace
  '--dataplane=proxy',
];

function get(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port: apiPort, path, agent: false, timeout: 3000 }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}
const services = async (): Promise<string[]> =>
  JSON.parse(await get('/api/v1/status')).lvs.table.services.map((s: { id: string }) => s.id);

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 30000): Promise<T> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v) return v;
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}\n${output.slice(-2000)}`);
}

function runTool(args: string[], opts: { closeStdout?: boolean } = {}) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const p = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    if (opts.closeStdout) p.stdout.destroy();
    else p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    // a second daemon that does start would run forever: stop it and report
    const timer = setTimeout(() => p.kill('SIGKILL'), 30_000);
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

before(async () => {
  apiPort = await freePort();
  vipA = await freePort();
  vipB = await freePort();
  rsPort = await freePort();
  rs = http.createServer((_q, r) => r.end('ok'));
  await new Promise<void>((r) => rs.listen(rsPort, '127.0.0.1', r));
  writeFileSync(conf, vs('virtual_server', vipA) + vs('virtual_server', vipB));
  // a local user plants a symlink where the API token will be written
  writeFileSync(victim, 'precious\n');
  mkdirSync(run, { mode: 0o700 });
  symlinkSync(victim, join(run, 'api-token'));
  // a stale pid file: the pid belongs to a live process that is not keepvs
  notKeepvs = spawn('sleep', ['60'], { stdio: 'ignore' });
  writeFileSync(join(dir, 'keepvs.pid'), `${notKeepvs.pid}\n`);
  daemon = spawn(process.execPath, daemonArgs(join(dir, 'keepvs.pid')), { stdio: ['ignore', 'pipe', 'pipe'] });
  daemon.stdout?.on('data', (d) => (output += d));
  daemon.stderr?.on('data', (d) => (output += d));
  await until('both services listed', async () => (await services()).length === 2);
});

after(async () => {
  if (daemon.exitCode === null) {
    const gone = new Promise((r) => daemon.once('exit', r));
    daemon.kill('SIGTERM');
    await gone;
  }
  rs.close();
  notKeepvs.kill();
  rmSync(dir, { recursive: true, force: true });
});

test('a stale pid file is taken over; a second keepvs on the same pid file does not start', async () => {
  assert.equal(readFileSync(join(dir, 'keepvs.pid'), 'utf8').trim(), String(daemon.pid));
  const second = await runTool(daemonArgs(join(dir, 'keepvs.pid')));
  assert.equal(second.code, 0, second.stderr);
  assert.match(second.stdout + second.stderr, /daemon is already running/);
  assert.equal(readFileSync(join(dir, 'keepvs.pid'), 'utf8').trim(), String(daemon.pid));
  assert.equal(daemon.exitCode, null);
  assert.equal((await services()).length, 2);
});

test('the API token file replaces a planted symlink instead of writing through it', () => {
  assert.equal(readFileSync(victim, 'utf8'), 'precious\n');
  const st = lstatSync(join(run, 'api-token'));
  assert.equal(st.isFile(), true);
  assert.equal(st.mode & 0o777, 0o600);
  assert.match(readFileSync(join(run, 'api-token'), 'utf8'), /^[\w-]{20,}\n$/);
});

test("a reload that a typo'd block name would turn into a deletion is refused; --force-reload applies it", async () => {
  writeFileSync(conf, vs('virtual_server', vipA) + vs('virtuad_server', vipB));
  daemon.kill('SIGHUP');
  await until('refusal logged', async () => /Reload refused: it would remove virtual_server/.test(output));
  assert.match(output, /keepalived\.conf:\d+:\d+: warning: unknown keyword 'virtuad_server'/);
  assert.equal((await services()).length, 2);
  const events = JSON.parse(await get('/api/v1/events')).events;
  assert.ok(events.some((e: { type: string; ok: boolean }) => e.type === 'config-reload' && !e.ok));
  const forced = await runTool([
    join(root, 'bin/keepvs.js'),
    '--force-reload',
    '--api',
    `127.0.0.1:${apiPort}`,
    '--socket',
    join(run, 'keepvs.sock'),
  ]);
  assert.equal(forced.code, 0, forced.stderr);
  await until('the forced reload removed the service', async () => (await services()).length === 1);
});

test('keepvsadm -Ln into a closed pipe exits quietly (no EPIPE stack trace)', async () => {
  for (let i = 0; i < 3; i++) {
    const r = await runTool([join(root, 'bin/keepvsadm.js'), '--socket', join(run, 'keepvs.sock'), '-Ln'], {
      closeStdout: true,
    });
    assert.equal(r.stderr, '');
    assert.ok(r.code === 141 || r.code === 0, `exit ${r.code}`);
  }
});
