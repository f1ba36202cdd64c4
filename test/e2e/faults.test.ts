/**
 * Faults of the control plane with traffic flowing: the supervisor's last good configuration
 * for worker restarts, the data plane outliving an LVS worker crash, operator state across
 * restarts. Lean cases (seconds each); figures under load are in bench/faults.ts.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import type http from 'node:http';
import { after, before, test } from 'node:test';
import {
  alive,
  closeLoop,
  type DaemonUnderTest,
  freePort,
  get,
  httpRealServer,
  LongLived,
  startDaemon,
  until,
} from './harness.js';

const servers: http.Server[] = [];
const rsPorts: number[] = [];
let vipPort = 0;
let d: DaemonUnderTest;

function config(opts: { weight?: number; extra?: string; globals?: string; only?: number[] } = {}): string {
  const rs = rsPorts
    .filter((_, i) => !opts.only || opts.only.includes(i))
    .map(
      (p) =>
        `  real_server 127.0.0.1 ${p} {\n    weight ${opts.weight ?? 1}\n    TCP_CHECK {\n      connect_timeout 1\n    }\n  }`,
    )
    .join('\n');
  return `global_defs {\n  router_id FAULTS\n${opts.globals ?? ''}}\nvirtual_server 127.0.0.1 ${vipPort} {\n  delay_loop 1\n  lvs_sched rr\n  protocol TCP\n${rs}\n}\n${opts.extra ?? ''}`;
}

const lvsWorker = async () => (await d.status()).workers.find((w) => w.role === 'lvs')!;

before(async () => {
  for (let i = 0; i < 2; i++) rsPorts.push(await freePort());
  vipPort = await freePort();
  for (let i = 0; i < 2; i++) servers.push(await httpRealServer(rsPorts[i]!, `rs${i}`));
  d = await startDaemon(
    config(),
    ['--dataplane-workers=2'],
    (s) => s.lvs?.checks.servers.every((x) => x.up) === true && s.lvs.checks.servers.length === 2,
  );
});

/** proxy workers a test left without a supervisor (a failed restart): killed at the end */
const orphans: number[] = [];

after(async () => {
  await d?.stop();
  for (const p of orphans) if (alive(p)) process.kill(p, 'SIGKILL');
  for (const s of servers) {
    s.closeAllConnections();
    s.close();
  }
});

test('bad edit, then an LVS worker crash: the worker restarts on the last good configuration', async () => {
  writeFileSync(d.conf, `${config()}\nvirtual_server {\n`);
  d.proc.kill('SIGHUP');
  await until(
    'reload rejected',
    async () => /Reload rejected/.test(d.output),
    5000,
    () => d.output,
  );
  const pid = (await lvsWorker()).pid!;
  process.kill(pid, 'SIGKILL');
  await until(
    'LVS worker running again',
    async () => {
      const w = await lvsWorker();
      return w.pid !== pid && w.state === 'running';
    },
    10000,
    () => d.output,
  );
  assert.match((await get(vipPort)).body, /^rs[01]$/);
  // the fixed file is taken at the next SIGHUP
  writeFileSync(d.conf, config({ weight: 3 }));
  d.proc.kill('SIGHUP');
  await until(
    'new weight',
    async () => (await d.status()).lvs?.table.services[0]?.dests.every((x) => x.weight === 3),
    5000,
    () => d.output,
  );
  writeFileSync(d.conf, config());
  d.proc.kill('SIGHUP');
  await until('weight 1 again', async () =>
    (await d.status()).lvs?.table.services[0]?.dests.every((x) => x.weight === 1),
  );
});

const proxyPids = async () =>
  (await d.status()).workers.filter((w) => w.role.startsWith('proxy')).map((w) => w.pid ?? 0);
const totalConns = async () =>
  (await d.status()).lvs?.table.services[0]?.dests.reduce((n, x) => n + x.stats.conns, 0) ?? -1;

test('LVS worker SIGKILL: the proxy workers go on with the last table and are adopted, connections and counters kept', async () => {
  const proxies = await proxyPids();
  assert.equal(proxies.length, 2);
  const held = await Promise.all(Array.from({ length: 6 }, () => LongLived.open(vipPort)));
  try {
    for (const c of held) assert.match(await c.ask(), /^rs[01]$/);
    await until(
      '6 active',
      async () => (await d.status()).lvs?.table.services[0]?.dests.reduce((n, x) => n + x.activeConns, 0) === 6,
    );
    const before = await totalConns();
    const load = closeLoop(vipPort, /^rs[01]$/);
    const pid = (await lvsWorker()).pid!;
    process.kill(pid, 'SIGKILL');
    await until('a new LVS worker', async () => {
      const w = await lvsWorker();
      return w.pid !== pid && w.state === 'running';
    });
    await new Promise((r) => setTimeout(r, 500));
    const { done, failed } = await load.stop();
    assert.equal(failed, 0, `${failed} of ${done} new connections failed`);
    assert.deepEqual(await proxyPids(), proxies, 'the same proxy processes');
    for (const c of held) assert.match(await c.ask(), /^rs[01]$/, 'a long-lived connection broke');
    assert.ok(held.every((c) => !c.broken));
    // counters and connection counts come from the adopted replicas
    await until('counters kept and 6 still active', async () => {
      const s = await d.status();
      const dests = s.lvs?.table.services[0]?.dests ?? [];
      return dests.reduce((n, x) => n + x.activeConns, 0) === 6 && (await totalConns()) >= before + done;
    });
    assert.match(d.output, /adopted 1 virtual services from 2 running proxy workers/);
    // every process reports its heap (the soak in bench/faults.ts watches it)
    await until('heap of every process', async () => {
      const s = await d.status();
      return (s.heapUsed ?? 0) > 0 && s.workers.every((w) => (w.heapUsed ?? 0) > 0);
    });
  } finally {
    for (const c of held) c.close();
  }
});

test('a worker stopped for good (-R) comes back on the next good reload', async () => {
  const r = await startDaemon(config(), ['--dataplane-workers=1', '-R'], (s) =>
    s.workers.some((w) => w.role === 'lvs' && w.state === 'running'),
  );
  try {
    const pid = (await r.status()).workers.find((w) => w.role === 'lvs')!.pid!;
    process.kill(pid, 'SIGKILL');
    await until('stopped', async () => (await r.status()).workers.find((w) => w.role === 'lvs')?.state === 'stopped');
    // and a proxy worker given up on (-R) too
    const proxy = (await r.status()).workers.find((w) => w.role === 'proxy0')!.pid!;
    process.kill(proxy, 'SIGKILL');
    await until(
      'proxy stopped',
      async () => (await r.status()).workers.find((w) => w.role === 'proxy0')?.state === 'stopped',
    );
    r.proc.kill('SIGHUP');
    await until(
      'running after the reload',
      async () => {
        const ws = (await r.status()).workers;
        return (
          ws.find((w) => w.role === 'lvs')?.state === 'running' &&
          ws.find((w) => w.role === 'proxy0')?.state === 'running'
        );
      },
      10000,
      () => r.output,
    );
    assert.match(await r.keepvsadm('-Ln'), /TCP/);
  } finally {
    await r.stop();
  }
});

const destsOf = async (port = vipPort) =>
  (await d.status()).lvs?.table.services.find((s) => s.id === `tcp:127.0.0.1:${port}`)?.dests ?? [];
const weightOf = async (rsPort: number) => (await destsOf()).find((x) => x.port === rsPort)?.weight;

async function stopRs(i: number): Promise<void> {
  const s = servers[i]!;
  s.closeAllConnections();
  await new Promise((r) => s.close(r));
}
async function startRs(i: number): Promise<void> {
  servers[i] = await httpRealServer(rsPorts[i]!, `rs${i}`);
}

test('keepvsadm -e: the weight stays through unrelated syncs, until that real server’s checker changes it', async () => {
  const [p0, p1] = rsPorts as [number, number];
  assert.equal(await d.keepvsadm('-e', '-t', `127.0.0.1:${vipPort}`, '-r', `127.0.0.1:${p0}`, '-m', '-w', '7'), '');
  await until('weight 7', async () => (await weightOf(p0)) === 7);
  // another real server goes down and up: two syncs that do not concern rs0
  await stopRs(1);
  await until(
    'rs1 out',
    async () => (await weightOf(p1)) === undefined,
    10000,
    () => d.output,
  );
  assert.equal(await weightOf(p0), 7, 'reverted by an unrelated sync');
  await startRs(1);
  await until(
    'rs1 back',
    async () => (await weightOf(p1)) === 1,
    10000,
    () => d.output,
  );
  assert.equal(await weightOf(p0), 7);
  // a reload that does not change rs0 keeps it too (keepalived's init_service_rs)
  d.proc.kill('SIGHUP');
  await until('reloaded', async () => (d.output.match(/Reloading configuration/g)?.length ?? 0) >= 3);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(await weightOf(p0), 7, 'reverted by an unrelated reload');
  // rs0's own checker changes it: down, then up with its configured weight
  await stopRs(0);
  await until(
    'rs0 out',
    async () => (await weightOf(p0)) === undefined,
    10000,
    () => d.output,
  );
  await startRs(0);
  await until(
    'rs0 back with its configured weight',
    async () => (await weightOf(p0)) === 1,
    10000,
    () => d.output,
  );
});

test('keepvsadm -a to a configured service: kept at SIGHUP (keepalived removes only what it configured)', async () => {
  const extra = await freePort();
  const s = await httpRealServer(extra, 'rs-extra');
  try {
    assert.equal(
      await d.keepvsadm('-a', '-t', `127.0.0.1:${vipPort}`, '-r', `127.0.0.1:${extra}`, '-m', '-w', '2'),
      '',
    );
    writeFileSync(d.conf, config({ weight: 4 }));
    d.proc.kill('SIGHUP');
    await until(
      'configured weights 4',
      async () => (await weightOf(rsPorts[0]!)) === 4,
      5000,
      () => d.output,
    );
    assert.equal(await weightOf(extra), 2, 'the hand-added real server went at SIGHUP');
    assert.equal(await d.keepvsadm('-d', '-t', `127.0.0.1:${vipPort}`, '-r', `127.0.0.1:${extra}`), '');
    await until('hand real server deleted', async () => (await weightOf(extra)) === undefined);
  } finally {
    s.closeAllConnections();
    s.close();
    writeFileSync(d.conf, config());
    d.proc.kill('SIGHUP');
    await until('configured weights 1', async () => (await weightOf(rsPorts[0]!)) === 1);
  }
});

test('operator state survives an LVS worker restart: -A services, -a real servers, -e weights, API drains', async () => {
  const [p0, p1] = rsPorts as [number, number];
  const vip2 = await freePort();
  const extra = await freePort();
  const s = await httpRealServer(extra, 'rs-extra');
  try {
    assert.equal(await d.keepvsadm('-A', '-t', `127.0.0.1:${vip2}`, '-s', 'rr'), '');
    assert.equal(await d.keepvsadm('-a', '-t', `127.0.0.1:${vip2}`, '-r', `127.0.0.1:${extra}`, '-m'), '');
    assert.equal(await d.keepvsadm('-e', '-t', `127.0.0.1:${vipPort}`, '-r', `127.0.0.1:${p0}`, '-m', '-w', '5'), '');
    const drained = await d.act('drain', { service: `tcp:127.0.0.1:${vipPort}`, dest: `127.0.0.1:${p1}` });
    assert.equal(drained.status, 200, drained.body);
    await until('drained', async () => (await weightOf(p1)) === 0);
    assert.equal((await get(vip2)).body, 'rs-extra');
    const pid = (await lvsWorker()).pid!;
    process.kill(pid, 'SIGKILL');
    await until('a new LVS worker', async () => {
      const w = await lvsWorker();
      return w.pid !== pid && w.state === 'running';
    });
    // a few syncs of the new worker (its checkers start)
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(await weightOf(p1), 0, 'the drain was lost');
    assert.equal(await weightOf(p0), 5, 'the -e weight was lost');
    assert.equal((await destsOf(vip2)).length, 1, 'the -A service was lost');
    assert.equal((await get(vip2)).body, 'rs-extra');
    for (let i = 0; i < 6; i++) assert.equal((await get(vipPort)).body, 'rs0', 'the drained server took traffic');
  } finally {
    await d.act('restore', { service: `tcp:127.0.0.1:${vipPort}`, dest: `127.0.0.1:${p1}` });
    await d.keepvsadm('-D', '-t', `127.0.0.1:${vip2}`);
    s.closeAllConnections();
    s.close();
  }
});

test('SIGSTOP of the LVS worker: the proxy workers go on serving; SIGCONT and it catches up', async () => {
  const held = await Promise.all(Array.from({ length: 4 }, () => LongLived.open(vipPort)));
  try {
    const pid = (await lvsWorker()).pid!;
    const load = closeLoop(vipPort, /^rs[01]$/);
    process.kill(pid, 'SIGSTOP');
    try {
      await new Promise((r) => setTimeout(r, 2000));
      for (const c of held) assert.match(await c.ask(), /^rs[01]$/);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    const { done, failed } = await load.stop();
    assert.equal(failed, 0, `${failed} of ${done} failed while the LVS worker was stopped`);
    assert.ok(done > 20, `only ${done} requests in 2 s`);
    assert.equal((await lvsWorker()).pid, pid, 'not restarted');
    assert.match(await d.keepvsadm('-Ln'), new RegExp(`TCP  127.0.0.1:${vipPort} rr`));
  } finally {
    for (const c of held) c.close();
  }
});

test('50 reloads in 10 s with real changes under traffic: no failed request, no broken connection', async () => {
  const held = await Promise.all(Array.from({ length: 5 }, () => LongLived.open(vipPort)));
  const load = closeLoop(vipPort, /^rs[01]$/);
  try {
    const before = (d.output.match(/Reloading configuration/g) ?? []).length;
    const reloads = () => (d.output.match(/Reloading configuration/g) ?? []).length - before;
    for (let i = 0; i < 50; i++) {
      const slot = new Promise((r) => setTimeout(r, 200));
      writeFileSync(d.conf, config({ weight: 1 + (i % 3) }));
      d.proc.kill('SIGHUP');
      // signals sent faster than the supervisor handles them merge into one: wait for each
      await until(`reload ${i + 1}`, async () => reloads() > i, 5000);
      if (i % 10 === 0) for (const c of held) assert.match(await c.ask(), /^rs[01]$/);
      await slot;
    }
    const { done, failed } = await load.stop();
    assert.equal(failed, 0, `${failed} of ${done} failed`);
    for (const c of held) assert.match(await c.ask(), /^rs[01]$/, 'a long-lived connection broke');
    // the last file is what runs (weight 1 + 49 % 3 = 2)
    await until('last weights', async () => (await weightOf(rsPorts[0]!)) === 2);
  } finally {
    await load.stop();
    for (const c of held) c.close();
    writeFileSync(d.conf, config());
    d.proc.kill('SIGHUP');
  }
});

const reloads = () => d.output.split('Reloading configuration').length - 1;

/** SIGHUP with `text` as the file; resolves once the supervisor has taken it. */
async function reloadWith(text: string): Promise<void> {
  const n = reloads();
  writeFileSync(d.conf, text);
  d.proc.kill('SIGHUP');
  await until('the reload', async () => reloads() > n);
}

test('expire_nodest_conn turned on by a reload: connections to a real server the next reload removes are closed', async () => {
  const held = await Promise.all(Array.from({ length: 6 }, () => LongLived.open(vipPort)));
  try {
    const first = await Promise.all(held.map((c) => c.ask()));
    assert.ok(first.includes('rs1') && first.includes('rs0'), first.join(','));
    await reloadWith(config({ globals: '  expire_nodest_conn\n' }));
    await new Promise((r) => setTimeout(r, 300));
    await reloadWith(config({ globals: '  expire_nodest_conn\n', only: [0] }));
    await until('rs1 out of the table', async () => (await weightOf(rsPorts[1]!)) === undefined);
    await until(
      'connections to the removed real server closed',
      async () => held.every((c, i) => first[i] !== 'rs1' || c.broken),
      5000,
      () => d.output,
    );
    for (const [i, c] of held.entries()) if (first[i] === 'rs0') assert.equal(await c.ask(), 'rs0');
  } finally {
    for (const c of held) c.close();
    await reloadWith(config());
    await until('both real servers back', async () => (await destsOf()).length === 2);
  }
});

test('operator state survives a restart of keepvs itself: -A services, -a real servers, -e weights, API drains', async () => {
  const [p0, p1] = rsPorts as [number, number];
  const vip2 = await freePort();
  const extra = await freePort();
  const s = await httpRealServer(extra, 'rs-extra');
  try {
    assert.equal(await d.keepvsadm('-A', '-t', `127.0.0.1:${vip2}`, '-s', 'rr'), '');
    assert.equal(await d.keepvsadm('-a', '-t', `127.0.0.1:${vip2}`, '-r', `127.0.0.1:${extra}`, '-m'), '');
    assert.equal(await d.keepvsadm('-e', '-t', `127.0.0.1:${vipPort}`, '-r', `127.0.0.1:${p0}`, '-m', '-w', '5'), '');
    const drained = await d.act('drain', { service: `tcp:127.0.0.1:${vipPort}`, dest: `127.0.0.1:${p1}` });
    assert.equal(drained.status, 200, drained.body);
    await until('drained', async () => (await weightOf(p1)) === 0);
    const old = d;
    await old.stop(true);
    d = await startDaemon(
      config(),
      ['--dataplane-workers=2'],
      (st) => st.lvs?.checks.servers.length === 2 && st.lvs.checks.servers.every((x) => x.up),
      { dir: old.dir, apiPort: old.apiPort },
    );
    // a few syncs of the new keepvs (its checkers start)
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(await weightOf(p1), 0, 'the drain was lost');
    assert.equal(await weightOf(p0), 5, 'the -e weight was lost');
    assert.equal((await destsOf(vip2)).length, 1, 'the -A service was lost');
    assert.equal((await get(vip2)).body, 'rs-extra');
    for (let i = 0; i < 6; i++) assert.equal((await get(vipPort)).body, 'rs0', 'the drained server took traffic');
  } finally {
    await d.act('restore', { service: `tcp:127.0.0.1:${vipPort}`, dest: `127.0.0.1:${p1}` });
    await d.keepvsadm('-e', '-t', `127.0.0.1:${vipPort}`, '-r', `127.0.0.1:${p0}`, '-m', '-w', '1');
    await d.keepvsadm('-D', '-t', `127.0.0.1:${vip2}`);
    s.closeAllConnections();
    s.close();
  }
});

/** Listening TCP sockets on `port` (ss: one per SO_REUSEPORT listener). */
const listeners = (port: number): number =>
  execFileSync('ss', ['-Hltn', `sport = :${port}`], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean).length;

test('SIGKILL of the supervisor, keepvs started again: the proxy workers serve on and are adopted, no request fails', async () => {
  const held = await Promise.all(Array.from({ length: 3 }, () => LongLived.open(vipPort)));
  const proxies = await proxyPids();
  orphans.push(...proxies);
  assert.equal(listeners(vipPort), 2);
  const lvsPid = (await lvsWorker()).pid ?? -1;
  const load = closeLoop(vipPort, /^rs[01]$/);
  try {
    await new Promise((r) => setTimeout(r, 300));
    d.proc.kill('SIGKILL');
    await until('the LVS worker gone', async () => !alive(lvsPid));
    // nobody in charge: the data plane forwards on with its last table, as IPVS does
    await new Promise((r) => setTimeout(r, 500));
    assert.ok(proxies.every(alive), 'a proxy worker died with its supervisor');
    const old = d;
    // what systemd's Restart= does: the same command again (same pid files, socket, runtime dir)
    d = await startDaemon(
      config(),
      ['--dataplane-workers=2'],
      (s) => s.lvs?.checks.servers.every((x) => x.up) === true && s.lvs.checks.servers.length === 2,
      { dir: old.dir, apiPort: old.apiPort },
    );
    await new Promise((r) => setTimeout(r, 500));
    const { done, failed } = await load.stop();
    assert.equal(failed, 0, `${failed} of ${done} requests failed`);
    assert.deepEqual(await proxyPids(), proxies, 'the proxy workers were not adopted');
    assert.equal(listeners(vipPort), 2, 'a second set of listeners shares the port');
    assert.match(d.output, /adopted 2 proxy workers/);
    for (const c of held) assert.match(await c.ask(), /^rs[01]$/, 'a long-lived connection broke');
    // adopted workers still take table changes, and stop with the new supervisor
    await d.keepvsadm('-e', '-t', `127.0.0.1:${vipPort}`, '-r', `127.0.0.1:${rsPorts[0]}`, '-w', '4');
    await until('weight 4 in the table', async () => (await weightOf(rsPorts[0]!)) === 4);
  } finally {
    await load.stop();
    for (const c of held) c.close();
  }
  await d.stop();
  await until('adopted proxy workers stopped with the new supervisor', async () => proxies.every((p) => !alive(p)));
});
