/**
 * Fault benchmark: keepvs on loopback under load (wrk keep-alive and `Connection: close`, plus 20
 * long-lived connections asking every 100 ms), one fault per case, each case run right after a
 * baseline case with the same load and no fault (interleaved), ratios printed. Faults: SIGKILL of
 * the LVS worker, of a proxy worker and of the supervisor (then started again, as systemd would);
 * SIGSTOP of the LVS worker; a real server killed, hung (SIGSTOP: it accepts and never answers;
 * a true black hole needs root) and resetting every connection; bad edit then LVS worker crash;
 * 50 reloads in 10 s with real changes. Then a soak: paced new connections (target 2,000/s) for
 * SOAK_S seconds (default 180) with a reload every 5 s, fds and RSS of every keepvs process at the
 * start and the end, and each one's V8 heap after a forced GC (bench/gc-probe.ts, preloaded by this
 * benchmark only) at 10 s, half way and the end. Figures: failed requests, broken long-lived connections, time to recover.
 * Run: `npx tsc -p . && node dist/bench/faults.js` (needs nginx-light and wrk). Env: CASE_S, SOAK_S,
 * SOAK_RATE, ONLY (substring of a case name, or `soak` for the soak alone).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { type DaemonUnderTest, freePort, LongLived, startDaemon, until } from '../test/e2e/harness.js';

const CASE_S = Number(process.env.CASE_S ?? 8);
const SOAK_S = Number(process.env.SOAK_S ?? 180);
const SOAK_RATE = Number(process.env.SOAK_RATE ?? 2000);
const dir = mkdtempSync(join(tmpdir(), 'keepvs-faults-'));
const GC_DIR = join(dir, 'gc');
const GC_PROBE = fileURLToPath(new URL('./gc-probe.js', import.meta.url));
const children: ChildProcess[] = [];

// ---- real servers: one nginx each, so that one can be killed, stopped or replaced
interface Rs {
  port: number;
  proc?: ChildProcess;
  resetter?: net.Server;
}
const rss: Rs[] = [];

function nginxConf(port: number): string {
  const d = join(dir, `rs${port}`);
  return `worker_processes 1;
pid ${d}.pid;
error_log ${d}.err;
daemon off;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${d}cb; proxy_temp_path ${d}px; fastcgi_temp_path ${d}fc;
  uwsgi_temp_path ${d}uw; scgi_temp_path ${d}sc;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  server {
    listen 127.0.0.1:${port} backlog=4096 reuseport;
    location / { return 200 'rs${port}\\n'; }
  }
}
`;
}

async function waitPort(port: number): Promise<void> {
  await until(
    `port ${port}`,
    () =>
      new Promise<boolean>((r) => {
        const s = net.connect(port, '127.0.0.1');
        s.once('connect', () => {
          s.destroy();
          r(true);
        });
        s.once('error', () => r(false));
      }),
    10000,
  );
}

async function startRs(rs: Rs): Promise<void> {
  const conf = join(dir, `rs${rs.port}.conf`);
  writeFileSync(conf, nginxConf(rs.port));
  rs.proc = spawn('nginx', ['-c', conf, '-p', dir], { stdio: 'ignore' });
  children.push(rs.proc);
  await waitPort(rs.port);
}

/** nginx master and worker pids of a real server */
function nginxPids(rs: Rs): number[] {
  const master = rs.proc?.pid;
  if (!master) return [];
  try {
    const kids = readFileSync(`/proc/${master}/task/${master}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
    return [master, ...kids.map(Number)];
  } catch {
    return [master];
  }
}

async function killRs(rs: Rs): Promise<void> {
  for (const p of nginxPids(rs)) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // gone
    }
  }
  if (rs.proc && rs.proc.exitCode === null) await once(rs.proc, 'exit');
  rs.proc = undefined;
}

/** A server on `port` that resets every connection (retried while the killed nginx lets the port go). */
async function resetter(port: number): Promise<net.Server> {
  for (let i = 0; ; i++) {
    const s = net.createServer((c) => c.resetAndDestroy());
    const ok = await new Promise<boolean>((r) => {
      s.once('error', () => r(false));
      s.listen(port, '127.0.0.1', () => r(true));
    });
    if (ok) return s;
    if (i >= 50) throw new Error(`port ${port} stays in use`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// ---- load
interface WrkResult {
  requests: number;
  errors: number;
  non2xx: number;
}

function wrk(port: number, close: boolean, seconds: number): Promise<WrkResult> {
  const args = ['-t1', '-c16', `-d${seconds}s`, `http://127.0.0.1:${port}/`];
  if (close) args.unshift('-H', 'Connection: close');
  const c = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'ignore'] });
  children.push(c);
  let out = '';
  c.stdout?.on('data', (d: Buffer) => (out += d));
  return once(c, 'exit').then(() => {
    const se = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
    return {
      requests: Number(/(\d+) requests in/.exec(out)?.[1] ?? 0),
      errors: se ? Number(se[1]) + Number(se[2]) + Number(se[3]) + Number(se[4]) : 0,
      non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0),
    };
  });
}

/** 20 long-lived connections asking every 100 ms; broken = closed or a request unanswered */
function longLived(port: number): { stop(): Promise<{ broken: number; unanswered: number }> } {
  let running = true;
  let unanswered = 0;
  const conns: LongLived[] = [];
  const loop = (async () => {
    for (let i = 0; i < 20; i++) conns.push(await LongLived.open(port));
    while (running) {
      const answers = await Promise.all(conns.map((c) => c.ask()));
      unanswered += answers.filter((a) => !a.startsWith('rs')).length;
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop.catch(() => {});
      const broken = conns.filter((c) => c.broken).length;
      for (const c of conns) c.close();
      return { broken, unanswered };
    },
  };
}

/** paced new connections (GET, close): `rate` per second, counted failures */
function paced(port: number, rate: number): { stop(): Promise<{ done: number; failed: number }> } {
  let done = 0;
  let failed = 0;
  let inflight = 0;
  const agent = false;
  const t0 = performance.now();
  let issued = 0;
  const one = () => {
    inflight++;
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent, timeout: 5000 }, (res) => {
      res.resume();
      res.on('end', () => {
        if (res.statusCode !== 200) failed++;
        done++;
        inflight--;
      });
    });
    req.on('error', () => {
      failed++;
      done++;
      inflight--;
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
  };
  const t = setInterval(() => {
    // as many as the clock says are due (late timers catch up), never more than 2 s of backlog in
    // flight: the client itself must not be the fault
    const due = Math.floor(((performance.now() - t0) / 1000) * rate);
    for (; issued < due && inflight < rate * 2; issued++) one();
    issued = Math.max(issued, due - rate); // a stall beyond 1 s is not made up in a burst
  }, 5);
  return {
    async stop() {
      clearInterval(t);
      await until('in-flight requests', async () => inflight === 0, 10000).catch(() => {});
      return { done, failed };
    },
  };
}

// ---- keepvs
let vip = 0;
let d: DaemonUnderTest;

function config(weights = [1, 1, 1]): string {
  const rs = rss
    .map(
      (r, i) =>
        `  real_server 127.0.0.1 ${r.port} {\n    weight ${weights[i] ?? 1}\n    HTTP_GET {\n      url {\n        path /\n        status_code 200\n      }\n      connect_timeout 1\n      retry 1\n      delay_before_retry 1\n    }\n  }`,
    )
    .join('\n');
  return `global_defs {\n  router_id FAULTS\n}\nvirtual_server 127.0.0.1 ${vip} {\n  delay_loop 1\n  lvs_sched wrr\n  protocol TCP\n${rs}\n}\n`;
}

const allUp = (s: Awaited<ReturnType<DaemonUnderTest['status']>>) =>
  s.lvs?.checks.servers.length === rss.length && s.lvs.checks.servers.every((x) => x.up);

/** `again`: in the killed daemon's directory (same pid files and socket), as systemd's Restart= */
async function boot(again?: { dir: string; apiPort: number }): Promise<void> {
  d = await startDaemon(config(), ['--dataplane-workers=2'], allUp, again);
}

/** every keepvs process with its V8 heap in use (as it reports it to the status API, every 2 s) */
async function processes(): Promise<{ role: string; pid: number; heap: number }[]> {
  const s = await d.status();
  return [
    { role: 'supervisor', pid: d.proc.pid ?? 0, heap: s.heapUsed ?? 0 },
    ...s.workers.map((w) => ({ role: w.role, pid: w.pid ?? 0, heap: w.heapUsed ?? 0 })),
  ].filter((p) => p.pid > 0);
}

function fds(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return 0;
  }
}

function rssKiB(pid: number): number {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

const roleOf = async (role: string) => (await d.status()).workers.find((w) => w.role === role);

/** ms from `t0` until `ok` holds (polled every 50 ms, up to 30 s); -1 if it never does */
async function recovery(t0: number, ok: () => Promise<boolean>): Promise<number> {
  const end = t0 + 30000;
  while (Date.now() < end) {
    try {
      if (await ok()) return Date.now() - t0;
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return -1;
}

interface CaseResult {
  name: string;
  requests: number;
  failed: number;
  broken: number;
  recoverMs: number | null;
}

type Fault = (() => Promise<() => Promise<number | null>>) | null;

/** One load run of CASE_S seconds; `fault` fires after 2 s and returns how to measure recovery. */
async function run(name: string, fault: Fault, seconds = CASE_S): Promise<CaseResult> {
  const ll = longLived(vip);
  await new Promise((r) => setTimeout(r, 300));
  const ka = wrk(vip, false, seconds);
  const cl = wrk(vip, true, seconds);
  let recoverMs: number | null = null;
  if (fault) {
    await new Promise((r) => setTimeout(r, 2000));
    const measure = await fault();
    recoverMs = await measure();
  }
  const [a, b] = await Promise.all([ka, cl]);
  const l = await ll.stop();
  return {
    name,
    requests: a.requests + b.requests,
    failed: a.errors + a.non2xx + b.errors + b.non2xx + l.unanswered,
    broken: l.broken,
    recoverMs,
  };
}

const lvsRunningAgain = (pid: number) => async () =>
  recovery(Date.now(), async () => {
    const w = await roleOf('lvs');
    return w?.state === 'running' && w.pid !== pid;
  });

const cases: { name: string; fault: Fault; seconds?: number }[] = [
  {
    name: 'SIGKILL LVS worker',
    fault: async () => {
      const pid = (await roleOf('lvs'))!.pid!;
      process.kill(pid, 'SIGKILL');
      return lvsRunningAgain(pid);
    },
  },
  {
    name: 'SIGSTOP LVS worker 3 s',
    fault: async () => {
      const pid = (await roleOf('lvs'))!.pid!;
      process.kill(pid, 'SIGSTOP');
      await new Promise((r) => setTimeout(r, 3000));
      process.kill(pid, 'SIGCONT');
      const t0 = Date.now();
      return () => recovery(t0, async () => /TCP/.test(await d.keepvsadm('-Ln')));
    },
  },
  {
    name: 'SIGKILL proxy worker',
    fault: async () => {
      const w = (await roleOf('proxy0'))!;
      process.kill(w.pid!, 'SIGKILL');
      const t0 = Date.now();
      return () =>
        recovery(t0, async () => {
          const s = await d.status();
          const n = s.workers.find((x) => x.role === 'proxy0');
          return n?.state === 'running' && n.pid !== w.pid && s.lvs?.dataplane.workers === 2;
        });
    },
  },
  {
    name: 'bad edit, then SIGKILL LVS worker',
    fault: async () => {
      writeFileSync(d.conf, `${config()}\nvirtual_server {\n`);
      d.proc.kill('SIGHUP');
      await new Promise((r) => setTimeout(r, 300));
      const pid = (await roleOf('lvs'))!.pid!;
      process.kill(pid, 'SIGKILL');
      const measure = lvsRunningAgain(pid);
      return async () => {
        const ms = await measure();
        writeFileSync(d.conf, config());
        d.proc.kill('SIGHUP');
        return ms;
      };
    },
  },
  {
    name: '50 reloads in 10 s, real changes',
    seconds: 14,
    fault: async () => {
      for (let i = 0; i < 50; i++) {
        writeFileSync(d.conf, config([1 + (i % 3), 1 + ((i + 1) % 3), 1]));
        d.proc.kill('SIGHUP');
        await new Promise((r) => setTimeout(r, 200));
      }
      writeFileSync(d.conf, config());
      d.proc.kill('SIGHUP');
      return async () => null;
    },
  },
  {
    name: 'real server killed',
    fault: async () => {
      const rs = rss[2]!;
      await killRs(rs);
      const t0 = Date.now();
      const out = await recovery(t0, async () => (await d.status()).lvs?.table.services[0]?.dests.length === 2);
      await startRs(rs);
      return async () => out;
    },
  },
  {
    name: 'real server hung (SIGSTOP)',
    fault: async () => {
      const rs = rss[2]!;
      const pids = nginxPids(rs);
      for (const p of pids) process.kill(p, 'SIGSTOP');
      const t0 = Date.now();
      const out = await recovery(t0, async () => (await d.status()).lvs?.table.services[0]?.dests.length === 2);
      for (const p of pids) process.kill(p, 'SIGCONT');
      return async () => out;
    },
  },
  {
    name: 'real server resetting',
    fault: async () => {
      const rs = rss[2]!;
      await killRs(rs);
      rs.resetter = await resetter(rs.port);
      const t0 = Date.now();
      const out = await recovery(t0, async () => (await d.status()).lvs?.table.services[0]?.dests.length === 2);
      await new Promise((r) => rs.resetter!.close(r));
      rs.resetter = undefined;
      await startRs(rs);
      return async () => out;
    },
  },
  {
    name: 'SIGKILL supervisor (restarted)',
    fault: async () => {
      d.proc.kill('SIGKILL');
      const t0 = Date.now();
      return async () => {
        await until('old processes gone', async () => d.proc.signalCode !== null, 5000);
        // systemd would start it again: a new keepvs, which adopts the proxy workers left forwarding
        await boot({ dir: d.dir, apiPort: d.apiPort });
        return Date.now() - t0;
      };
    },
  },
];

async function waitHealthy(): Promise<void> {
  await until(
    'all real servers up',
    async () => allUp(await d.status()),
    30000,
    () => d.output,
  );
  // checkers that saw a fault settle
  await new Promise((r) => setTimeout(r, 1500));
}

/** pid -> V8 heap in use after a forced GC, from every process that has the probe (GC_DIR) */
async function gcSample(): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  await Promise.all(
    (await processes()).map(
      (p) =>
        new Promise<void>((resolve) => {
          let text = '';
          const s = net.connect(join(GC_DIR, `${p.pid}.sock`));
          s.setEncoding('utf8');
          s.on('data', (d: string) => (text += d));
          s.on('error', () => resolve());
          s.on('close', () => {
            try {
              out.set(p.pid, (JSON.parse(text) as { heapUsed: number }).heapUsed);
            } catch {
              // no probe in that process
            }
            resolve();
          });
          s.setTimeout(5000, () => s.destroy());
        }),
    ),
  );
  return out;
}

async function main(): Promise<void> {
  chmodSync(dir, 0o755);
  // every keepvs process this benchmark starts loads the GC probe (inherited by the workers' forks)
  process.env.KEEPVS_BENCH_GC_DIR = GC_DIR;
  process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} --import=${GC_PROBE}`.trim();
  for (let i = 0; i < 3; i++) rss.push({ port: await freePort() });
  vip = await freePort();
  for (const r of rss) await startRs(r);
  await boot();
  const started = `${new Date().toISOString()}, load average ${loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}`;
  const rows: string[] = [];
  const only = process.env.ONLY;
  for (const c of cases) {
    if (only && !c.name.includes(only)) continue;
    await waitHealthy();
    const base = await run(`${c.name} (baseline)`, null, c.seconds);
    await waitHealthy();
    const f = await run(c.name, c.fault, c.seconds);
    rows.push(
      `| ${c.name} | ${f.requests} | ${(f.requests / Math.max(1, base.requests)).toFixed(2)} | ${f.failed} (baseline ${base.failed}) | ${f.broken} of 20 (baseline ${base.broken}) | ${f.recoverMs === null ? '-' : f.recoverMs < 0 ? 'not in 30 s' : `${f.recoverMs} ms`} |`,
    );
    process.stderr.write(`${rows.at(-1)}\n`);
  }
  // soak
  let soak = '';
  if (SOAK_S > 0 && (!only || only === 'soak')) {
    await waitHealthy();
    const sample = async () => (await processes()).map((p) => ({ ...p, fds: fds(p.pid), rss: rssKiB(p.pid) }));
    const at0 = await sample();
    const gc0 = await gcSample();
    const load = paced(vip, SOAK_RATE);
    const ll = longLived(vip);
    let reloads = 0;
    const reloader = setInterval(() => {
      reloads++;
      writeFileSync(d.conf, config([1 + (reloads % 2), 1, 1]));
      d.proc.kill('SIGHUP');
    }, 5000);
    // the first 10 s warm up (JIT, pools); growth is measured from there
    await new Promise((r) => setTimeout(r, 10000));
    const at10 = await sample();
    const gc10 = await gcSample();
    await new Promise((r) => setTimeout(r, ((SOAK_S - 10) / 2) * 1000));
    const gcMid = await gcSample();
    await new Promise((r) => setTimeout(r, ((SOAK_S - 10) / 2) * 1000));
    clearInterval(reloader);
    const r = await load.stop();
    const l = await ll.stop();
    const atEnd = await sample();
    const gcEnd = await gcSample();
    // idle again: every connection entry gone (TIME_WAIT entries live for IPVS's 120 s), then the
    // heaps compare with the idle ones before the load
    const drainStart = Date.now();
    await until(
      'connection entries expired',
      async () =>
        (await d.status()).lvs?.table.services.every((s) => s.dests.every((x) => x.activeConns + x.inactConns === 0)),
      300_000,
    ).catch(() => {});
    const drainedS = ((Date.now() - drainStart) / 1000).toFixed(0);
    const gcIdle = await gcSample();
    const fdIdle = new Map((await sample()).map((p) => [p.pid, p.fds]));
    const mib = (b: number) => (b / 1048576).toFixed(1);
    const kib = (b: number) => `${b >= 0 ? '+' : ''}${(b / 1024).toFixed(0)}`;
    soak = [
      `soak: ${SOAK_S} s, target ${SOAK_RATE} new connections/s, achieved ${(r.done / SOAK_S).toFixed(0)}/s, ${reloads} reloads; failed ${r.failed} of ${r.done}; long-lived broken ${l.broken} of 20, unanswered ${l.unanswered}`,
      '| process | fds at 0 / 10 s / end | V8 heap MiB at 0 / 10 s / end | RSS MiB at 0 / 10 s / end |',
      '| --- | --- | --- | --- |',
      ...atEnd.map((p) => {
        const a = at0.find((x) => x.role === p.role);
        const b = at10.find((x) => x.role === p.role);
        return `| ${p.role} | ${a?.fds} / ${b?.fds} / ${p.fds} | ${mib(a?.heap ?? 0)} / ${mib(b?.heap ?? 0)} / ${mib(p.heap)} | ${mib((a?.rss ?? 0) * 1024)} / ${mib((b?.rss ?? 0) * 1024)} / ${mib(p.rss * 1024)} |`;
      }),
      '',
      `V8 heap in use after two forced full GCs (bench/gc-probe.ts): idle before the load / at 10 s / at ${(10 + (SOAK_S - 10) / 2).toFixed(0)} s / at the end (load stopped) / idle again (every connection entry expired, ${drainedS} s later); growth = idle after - idle before:`,
      '| process | heap after GC MiB: idle / 10 s / mid / end / idle after | growth KiB (mid -> end) | fds idle before -> after |',
      '| --- | --- | --- | --- |',
      ...atEnd.map((p) => {
        const g = (s: Map<number, number>) => s.get(p.pid);
        const diff = (a: number | undefined, b: number | undefined) =>
          a !== undefined && b !== undefined ? kib(b - a) : '-';
        const f0 = at0.find((x) => x.role === p.role)?.fds ?? 0;
        const f1 = fdIdle.get(p.pid) ?? 0;
        const show = (v: number | undefined) => (v === undefined ? '-' : mib(v));
        return `| ${p.role} | ${[gc0, gc10, gcMid, gcEnd, gcIdle].map((s) => show(g(s))).join(' / ')} | ${diff(g(gc0), g(gcIdle))} (${diff(g(gcMid), g(gcEnd))}) | ${f0} -> ${f1} (${f1 - f0 >= 0 ? '+' : ''}${f1 - f0}) |`;
      }),
    ].join('\n');
  }
  const out = [
    `# keepvs fault benchmark, ${started}, Node ${process.version}; 3 nginx real servers, 2 proxy workers; per case ${CASE_S} s of wrk -c16 keep-alive + wrk -c16 Connection: close + 20 long-lived connections, the fault at 2 s, each case after a baseline run without it`,
    '| case | requests | vs baseline | failed requests | broken long-lived | recovered in |',
    '| --- | --- | --- | --- | --- | --- |',
    ...rows,
    '',
    soak,
  ].join('\n');
  process.stdout.write(`${out}\n`);
}

async function cleanup(): Promise<void> {
  await d?.stop().catch(() => {});
  for (const r of rss) r.resetter?.close();
  for (const c of children)
    if (c.pid && c.exitCode === null && c.signalCode === null) {
      try {
        process.kill(c.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  for (const r of rss)
    for (const p of nginxPids(r)) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // gone
      }
    }
  rmSync(dir, { recursive: true, force: true });
}

process.on('uncaughtException', (e) => {
  process.stderr.write(`${e.stack ?? e}\n`);
  process.exitCode = 1;
  void cleanup();
});

main()
  .catch((e) => {
    process.stderr.write(`${e instanceof Error ? e.stack : e}\n`);
    process.exitCode = 1;
  })
  .finally(() => void cleanup());
