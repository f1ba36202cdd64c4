import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { freePort, stopKeepvs } from './harness.js';

const root = process.cwd();
const dir = mkdtempSync(join(tmpdir(), 'kv-e2e-'));
const conf = join(dir, 'keepalived.conf');
const servers: http.Server[] = [];
const rsPorts: number[] = [];
let vipPort = 0;
let apiPort = 0;
let daemon: ChildProcess;
let output = '';

function startRs(i: number): Promise<http.Server> {
  const s = http.createServer((req, res) => res.end(req.url === '/health' ? 'ok' : `rs${i}`));
  return new Promise((r) => s.listen(rsPorts[i], '127.0.0.1', () => r(s)));
}

function config(weight = 1): string {
  const rs = rsPorts
    .map(
      (p) =>
        `  real_server 127.0.0.1 ${p} {\n    weight ${weight}\n    HTTP_GET {\n      url {\n        path /health\n      }\n      connect_timeout 1\n      retry 0\n    }\n  }`,
    )
    .join('\n');
  return `global_defs {\n  router_id E2E\n}\nvirtual_server 127.0.0.1 ${vipPort} {\n  delay_loop 1\n  lvs_sched rr\n  protocol TCP\n${rs}\n}\n`;
}

function get(port: number, path = '/'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false, timeout: 3000 }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
  });
}

const status = async () => JSON.parse((await get(apiPort, '/api/v1/status')).body);

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 10000): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what} ${last ?? ''}\n${output.slice(-2000)}`);
}

before(async () => {
  for (let i = 0; i < 3; i++) rsPorts.push(await freePort());
  vipPort = await freePort();
  apiPort = await freePort();
  for (let i = 0; i < 3; i++) servers.push(await startRs(i));
  writeFileSync(conf, config());
  daemon = spawn(
    process.execPath,
    [
      join(root, 'bin/keepvs.js'),
      '-n',
      '-l',
      '-G',
      '-f',
      conf,
      '--socket',
      join(dir, 'keepvs.sock'),
      '--api',
      `127.0.0.1:${apiPort}`,
      '--api-token',
      'e2e-token',
      '-p',
      join(dir, 'keepvs.pid'),
      '-c',
      join(dir, 'checkers.pid'),
      '-r',
      join(dir, 'vrrp.pid'),
      // two proxy processes whatever the core count: the tests below check the summed view
      '--dataplane-workers=2',
      // the userspace proxy even as root (auto would take the kernel plane): loopback real servers
      '--dataplane=proxy',
    ],
    // dumps go to $TMPDIR as keepalived's: the planted-file test below uses this run's own directory
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TMPDIR: dir } },
  );
  daemon.stdout?.on('data', (d) => (output += d));
  daemon.stderr?.on('data', (d) => (output += d));
  await until('all real servers up', async () => {
    const s = await status();
    return s.lvs?.checks.servers.length === 3 && s.lvs.checks.servers.every((x: { up: boolean }) => x.up) && s;
  });
});

after(async () => {
  await stopKeepvs(daemon);
  for (const s of servers) {
    s.close();
    s.closeAllConnections();
  }
  rmSync(dir, { recursive: true, force: true });
});

test('traffic is balanced across the real servers', async () => {
  const seen = new Set<string>();
  // two proxy workers (one per core here), each with its own rr position: enough requests reach both
  for (let i = 0; i < 30; i++) seen.add((await get(vipPort)).body);
  assert.deepEqual([...seen].sort(), ['rs0', 'rs1', 'rs2']);
  assert.ok(existsSync(join(dir, 'keepvs.pid')));
  assert.ok(existsSync(join(dir, 'checkers.pid')));
});

test('a real server going down shows in the API and metrics within one check interval, and comes back', async () => {
  servers[1].close();
  servers[1].closeAllConnections();
  const t0 = Date.now();
  await until('rs1 down', async () =>
    (await status()).lvs.checks.servers.find(
      (s: { dest: string; up: boolean }) => s.dest.endsWith(`:${rsPorts[1]}`) && !s.up,
    ),
  );
  assert.ok(Date.now() - t0 < 2500, `took ${Date.now() - t0} ms`);
  const metrics = (await get(apiPort, '/metrics')).body;
  assert.match(
    metrics,
    new RegExp(`keepvs_real_server_up\\{service="tcp:127.0.0.1:${vipPort}",real_server="127.0.0.1:${rsPorts[1]}"\\} 0`),
  );
  for (let i = 0; i < 4; i++) assert.notEqual((await get(vipPort)).body, 'rs1');
  servers[1] = await startRs(1);
  await until('rs1 back', async () => (await status()).lvs.checks.servers.every((s: { up: boolean }) => s.up));
});

test('reload under continuous traffic loses no request; a bad config is rejected and the old one keeps running', async () => {
  let failures = 0;
  let done = 0;
  let stop = false;
  const load = (async () => {
    while (!stop) {
      try {
        const r = await get(vipPort);
        if (!/^rs\d$/.test(r.body)) failures++;
      } catch {
        failures++;
      }
      done++;
    }
  })();
  await new Promise((r) => setTimeout(r, 300));
  writeFileSync(conf, config(5));
  daemon.kill('SIGHUP');
  await until('weight 5 applied', async () =>
    (await status()).lvs.table.services[0].dests.every((d: { weight: number }) => d.weight === 5),
  );
  writeFileSync(conf, `${config(5)}\nvirtual_server 127.0.0.1 {\n`);
  daemon.kill('SIGHUP');
  await until('reload rejected event', async () =>
    JSON.parse((await get(apiPort, '/api/v1/events')).body).events.find(
      (e: { type: string; ok: boolean }) => e.type === 'config-reload' && !e.ok,
    ),
  );
  await new Promise((r) => setTimeout(r, 300));
  stop = true;
  await load;
  // a reload applies the diff in place: still the two proxy workers, none forked on top
  assert.equal((await proxyPids()).length, 2);
  assert.equal(failures, 0, `${failures} of ${done} requests failed`);
  assert.ok(done > 10);
  assert.equal((await status()).lvs.table.services[0].dests.length, 3);
  writeFileSync(conf, config(5));
});

test('a worker killed with SIGKILL is restarted and the service continues', async () => {
  const pid = Number(readFileSync(join(dir, 'checkers.pid'), 'utf8'));
  process.kill(pid, 'SIGKILL');
  await until('worker restarted', async () => {
    const s = await status();
    const w = s.workers.find((x: { role: string }) => x.role === 'lvs');
    return w.restarts === 1 && w.state === 'running' && w.pid !== pid;
  });
  await until('service answers again', async () => /^rs\d$/.test((await get(vipPort)).body));
});

test('API actions: drain needs the token, then takes a server out of rotation', async () => {
  const svc = `tcp:127.0.0.1:${vipPort}`;
  const dest = `127.0.0.1:${rsPorts[2]}`;
  const post = (token: string) =>
    new Promise<number>((resolve, reject) => {
      const req = http.request(
        {
          host: '127.0.0.1',
          port: apiPort,
          path: '/api/v1/actions/drain',
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end(JSON.stringify({ service: svc, dest }));
    });
  assert.equal(await post('wrong'), 401);
  assert.equal(await post('e2e-token'), 200);
  await until('drained', async () =>
    (await status()).lvs.table.services[0].dests.find(
      (d: { port: number; weight: number }) => d.port === rsPorts[2] && d.weight === 0,
    ),
  );
  for (let i = 0; i < 6; i++) assert.notEqual((await get(vipPort)).body, 'rs2');
});

test('keepvsadm -Ln lists the running table', async () => {
  const out = await new Promise<string>((resolve) => {
    const p = spawn(process.execPath, [join(root, 'bin/keepvsadm.js'), '--socket', join(dir, 'keepvs.sock'), '-Ln']);
    let s = '';
    p.stdout.on('data', (d) => (s += d));
    p.on('close', () => resolve(s));
  });
  assert.match(out, new RegExp(`^TCP  127\\.0\\.0\\.1:${vipPort} rr\\s*$`, 'm'));
  assert.match(out, new RegExp(`^  -> 127\\.0\\.0\\.1:${rsPorts[0]}\\s+Masq\\s+5\\s+\\d+\\s+\\d+`, 'm'));
});

test('a table change made with keepvsadm is logged and published as an admin event', async () => {
  const code = await new Promise<number | null>((resolve) => {
    // --set 0 0 0 leaves every timeout as it is: a harmless change to record
    const p = spawn(process.execPath, [
      join(root, 'bin/keepvsadm.js'),
      '--socket',
      join(dir, 'keepvs.sock'),
      '--set',
      '0',
      '0',
      '0',
    ]);
    p.on('close', resolve);
  });
  assert.equal(code, 0);
  await until('keepvsadm admin event', async () =>
    JSON.parse((await get(apiPort, '/api/v1/events')).body).events.find(
      (e: { type: string; action: string }) => e.type === 'admin' && e.action === 'keepvsadm set-timeouts',
    ),
  );
  await until('keepvsadm change logged', async () => output.includes('keepvsadm: set-timeouts timeouts') || undefined);
});

test('keepvsadm -A -t ADDR:0 -p under the proxy: every port is refused in the log and the API, no random-port listener', async () => {
  const before = (await status()).lvs.dataplane.services.length;
  await keepvsadm('-A', '-t', '127.0.0.2:0', '-p', '60');
  await until('all-ports diagnostic logged', async () => output.includes('[DP_UNSUPPORTED_ALL_PORTS]') || undefined);
  const s = await status();
  assert.ok(
    s.lvs.dataplane.diagnostics.some((d: { code: string }) => d.code === 'DP_UNSUPPORTED_ALL_PORTS'),
    'in the API',
  );
  assert.equal(s.lvs.dataplane.services.length, before, 'no listener for it');
  assert.match(await keepvsadm('-Ln'), /^TCP {2}127\.0\.0\.2:0 wlc persistent 60$/m);
  await keepvsadm('-D', '-t', '127.0.0.2:0');
});

function keepvsadm(...args: string[]): Promise<string> {
  return new Promise<string>((resolve) => {
    const p = spawn(process.execPath, [join(root, 'bin/keepvsadm.js'), '--socket', join(dir, 'keepvs.sock'), ...args]);
    let s = '';
    p.stdout.on('data', (d) => (s += d));
    p.on('close', () => resolve(s));
  });
}

/** sockets listening on 127.0.0.1:port (/proc/net/tcp: local address in hex, state 0A = LISTEN) */
const listenersOn = (port: number): number =>
  readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .filter((l) => l.includes(`0100007F:${port.toString(16).toUpperCase().padStart(4, '0')} 00000000:0000 0A`)).length;

const childPids = (pid: number): number[] =>
  readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);

/** the proxy workers: children of the supervisor (they outlive the LVS worker), as the API lists them */
async function proxyPids(): Promise<number[]> {
  const s = await status();
  const pids = s.workers.filter((w: { role: string }) => w.role.startsWith('proxy')).map((w: { pid: number }) => w.pid);
  const children = childPids(daemon.pid!);
  return pids.filter((p: number) => children.includes(p));
}

test('two proxy workers: connections held in both are summed in keepvsadm -Ln, listed by -Lnc and in the API', async () => {
  const s0 = await status();
  assert.equal(s0.lvs.dataplane.kind, 'proxy-cluster');
  assert.equal(s0.lvs.dataplane.workers, 2);
  const held: net.Socket[] = [];
  try {
    for (let i = 0; i < 8; i++) {
      const c = net.connect(vipPort, '127.0.0.1');
      c.on('error', () => {});
      await new Promise((r) => c.once('connect', r));
      held.push(c);
    }
    const activeOf = (out: string) =>
      [...out.matchAll(/^ {2}-> \S+\s+Masq\s+\d+\s+(\d+)\s+\d+/gm)].reduce((n, m) => n + Number(m[1]), 0);
    await until('8 ActiveConn summed over the workers', async () => activeOf(await keepvsadm('-Ln')) === 8);
    const listed = await keepvsadm('-Lnc');
    assert.equal(listed.match(/^TCP .*ESTABLISHED/gm)?.length, 8, listed);
    // the API shows the LVS worker's latest report (once a second)
    await until('8 active in the API', async () => {
      const api = await status();
      return (
        api.lvs.table.services[0].dests.reduce((n: number, d: { activeConns: number }) => n + d.activeConns, 0) === 8
      );
    });
  } finally {
    for (const c of held) c.destroy();
  }
  await until('connections gone from the count', async () => activeOf0(await keepvsadm('-Ln')));
});

const activeOf0 = (out: string) =>
  [...out.matchAll(/^ {2}-> \S+\s+Masq\s+\d+\s+(\d+)\s+\d+/gm)].every((m) => m[1] === '0');

test('keepvsadm --set reaches the proxy workers: -Lnc shows their expiry, -L --timeout the table', async () => {
  assert.equal(await keepvsadm('--set', '7', '0', '0'), '');
  try {
    assert.match(await keepvsadm('-L', '--timeout'), /^Timeout \(tcp tcpfin udp\): 7 120 300$/m);
    const c = net.connect(vipPort, '127.0.0.1');
    c.on('error', () => {});
    await new Promise((r) => c.once('connect', r));
    try {
      // the entry lives in whichever worker accepted it: its replica has the new tcp timeout
      const listed = await until('the held connection listed', async () => {
        const out = await keepvsadm('-Lnc');
        return /^TCP .*ESTABLISHED/m.test(out) && out;
      });
      const expiry = listed.match(/^TCP\s+(\d\d):(\d\d)\s+ESTABLISHED/m);
      assert.ok(expiry, listed);
      assert.ok(Number(expiry[1]) * 60 + Number(expiry[2]) <= 7, listed);
    } finally {
      c.destroy();
    }
  } finally {
    await keepvsadm('--set', '900', '0', '0');
  }
  assert.match(await keepvsadm('-L', '--timeout'), /^Timeout \(tcp tcpfin udp\): 900 120 300$/m);
});

test('a proxy worker killed with SIGKILL is forked again with the table, and traffic goes on', async () => {
  const before = await proxyPids();
  assert.equal(before.length, 2);
  assert.equal(listenersOn(vipPort), 2);
  process.kill(before[0]!, 'SIGKILL');
  const after = await until('a new proxy worker', async () => {
    const now = await proxyPids();
    return now.length === 2 && !now.includes(before[0]!) && now;
  });
  assert.ok(after.includes(before[1]!), 'the other worker was left alone');
  // one SO_REUSEPORT listener per worker on the VIP port: the new worker was given the service
  await until('two listeners again', async () => listenersOn(vipPort) === 2);
  await until('every connection answered', async () => {
    const out = await Promise.all(Array.from({ length: 20 }, () => get(vipPort)));
    return out.every((r) => /^rs[01]$/.test(r.body));
  });
  assert.match(output, /proxy worker \d exited \(SIGKILL\); forking it again/);
});

test('SIGUSR1/SIGUSR2 with a planted directory and a planted symlink: not followed, the daemon keeps running', async () => {
  const victim = join(dir, 'victim');
  writeFileSync(victim, 'precious\n');
  // keepalived's file names in $TMPDIR (keepalived.data, keepalived_check.data, keepalived.json)
  mkdirSync(join(dir, 'keepalived.data'));
  symlinkSync(victim, join(dir, 'keepalived.json'));
  daemon.kill('SIGUSR1');
  await until('the failed dump is logged', async () => output.includes('Dump not written') || undefined);
  assert.equal((await status()).version !== undefined, true);
  assert.equal(readFileSync(victim, 'utf8'), 'precious\n');
  assert.ok(lstatSync(join(dir, 'keepalived.json')).isFile(), 'the symlink was replaced by a regular file');
  assert.match(
    readFileSync(join(dir, 'keepalived_check.data'), 'utf8'),
    new RegExp(` VS VIP = 127.0.0.1, VPORT = ${vipPort}\n`),
  );
  daemon.kill('SIGUSR2');
  await until('stats dump', async () => existsSync(join(dir, 'keepalived.stats')) || undefined);
  assert.equal(daemon.exitCode, null);
});

test('SIGTERM stops cleanly and removes the pid files', async () => {
  const proxies = await proxyPids();
  assert.ok(proxies.length >= 2, `proxy workers under the supervisor: ${proxies}`);
  const exited = new Promise<number | null>((r) => daemon.once('exit', (code) => r(code)));
  daemon.kill('SIGTERM');
  assert.equal(await exited, 0);
  await until('proxy workers gone', async () => proxies.every((p: number) => !existsSync(`/proc/${p}/stat`)), 5000);
  assert.equal(existsSync(join(dir, 'keepvs.pid')), false);
  assert.equal(existsSync(join(dir, 'checkers.pid')), false);
});
