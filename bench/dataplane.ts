/**
 * Data-plane benchmark: the keepvs daemon (`keepvs -f keepalived.conf --dataplane=proxy`:
 * supervisor, LVS worker with its health checks, proxy workers) beside HAProxy (`mode tcp`), nginx
 * `stream` and nginx direct, all over the same three nginx real servers on loopback (rr), plus the
 * bare proxy cluster (bench/keepvs-proxy.ts, no daemon around it) as a second keepvs row, so that
 * the daemon's own overhead shows. Interleaved in rounds, order rotated each round, medians, ratios.
 * Run through bench/dataplane.sh. Env: ROUNDS (3), DURATION (5 s), WORKERS (keepvs's default, one
 * per core), IDLE_CONNS (9000), CHECKS (http: HTTP_GET on every real server and HAProxy
 * `check`; off: none), DELAY_LOOP (1 s), PATHS (comma list of direct,daemon,daemon-epoll,daemon-uring,
 * harness,haproxy,nginx; daemon-epoll and daemon-uring are the daemon with KEEPVS_PROXY_IO forced, an
 * A/B of the proxy's I/O backend in the same run; `daemon` takes keepvs's default),
 * HOLD (1: start everything, print each path's ports and pids, wait for SIGINT; for profiling).
 * IDLE_CONNS=0 leaves the idle-memory test out.
 * Every process it starts is killed by PID at the end.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { availableParallelism, cpus, hostname, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { type DaemonStatusJson, type DaemonUnderTest, freePort, startDaemon } from '../test/e2e/harness.js';

const ROUNDS = Number(process.env.ROUNDS ?? 3);
const DURATION = Number(process.env.DURATION ?? 5);
/** keepvs's own default (--dataplane-workers: one per core) unless WORKERS is given */
const WORKERS = Number(process.env.WORKERS ?? availableParallelism());
const IDLE_CONNS = Number(process.env.IDLE_CONNS ?? 9000);
const CHECKS = process.env.CHECKS ?? 'http';
const DELAY_LOOP = Number(process.env.DELAY_LOOP ?? 1);
const PATHS = (process.env.PATHS ?? 'direct,daemon,harness,haproxy,nginx').split(',');
const REAL_SERVERS = 3;
const HZ = 100; // USER_HZ for /proc/<pid>/stat
const STREAM_MODULE = '/usr/lib/nginx/modules/ngx_stream_module.so';

const children: ChildProcess[] = [];
const daemons: DaemonUnderTest[] = [];
let healthServer: net.Server | undefined;
const dir = mkdtempSync(join(tmpdir(), 'keepvs-bench-'));

/**
 * Both output pipes are always drained: a child writing to a full pipe blocks. (iperf3 -s prints a
 * few lines per connection; with its stdout never read it stopped after about 290 of them, in
 * write(2) with its listener closed, and every later iperf3 test was refused or reset.)
 */
function start(cmd: string, args: string[]): ChildProcess {
  const c = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const echo = (d: Buffer) => {
    if (process.env.VERBOSE) process.stderr.write(d);
  };
  c.stdout?.on('data', echo);
  c.stderr?.on('data', echo);
  children.push(c);
  return c;
}

async function waitPort(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise<boolean>((r) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        r(true);
      });
      s.once('error', () => r(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`port ${port} never opened`);
}

/** `pid` and all its descendants (every keepvs process: supervisor, LVS worker, proxy workers) */
function tree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    const p = out[i]!;
    try {
      for (const t of readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').trim().split(/\s+/))
        if (t) out.push(Number(t));
    } catch {
      // gone
    }
  }
  return out;
}

function cpuTicks(pids: number[]): number {
  let t = 0;
  for (const pid of pids) {
    try {
      const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
      t += Number(rest[11]) + Number(rest[12]); // utime, stime
    } catch {
      // process gone
    }
  }
  return t;
}

function rssKiB(pids: number[]): number {
  let t = 0;
  for (const pid of pids) {
    try {
      const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      t += Number(m?.[1] ?? 0);
    } catch {
      // gone
    }
  }
  return t;
}

interface Wrk {
  rps: number;
  mbps: number;
  p50: number;
  p99: number;
  requests: number;
}

function toMs(v: string): number {
  const m = /([\d.]+)(us|ms|s)/.exec(v);
  if (!m) return Number.NaN;
  const n = Number(m[1]);
  return m[2] === 'us' ? n / 1000 : m[2] === 's' ? n * 1000 : n;
}

function toMB(v: string): number {
  const m = /([\d.]+)([KMG]?B)/.exec(v);
  if (!m) return Number.NaN;
  const n = Number(m[1]);
  return m[2] === 'GB' ? n * 1024 : m[2] === 'KB' ? n / 1024 : m[2] === 'B' ? n / 1048576 : n;
}

async function wrk(url: string, conns: number, close: boolean, seconds = DURATION): Promise<Wrk> {
  const args = ['-t1', `-c${conns}`, `-d${seconds}s`, '--latency', url];
  if (close) args.unshift('-H', 'Connection: close');
  const c = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(c);
  let out = '';
  c.stdout?.on('data', (d: Buffer) => {
    out += d;
  });
  await once(c, 'exit');
  if (process.env.VERBOSE || /Non-2xx|Socket errors/.test(out))
    process.stderr.write(`${url}${close ? ' (close)' : ''}: ${out}`);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? Number.NaN);
  const mbps = toMB(/Transfer\/sec:\s+(\S+)/.exec(out)?.[1] ?? '');
  const p50 = toMs(/\s50%\s+(\S+)/.exec(out)?.[1] ?? '');
  const p99 = toMs(/\s99%\s+(\S+)/.exec(out)?.[1] ?? '');
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? Number.NaN);
  return { rps, mbps, p50, p99, requests };
}

/** iperf3's own words when a test gave no result: its JSON `error`, else stderr, else the exit status */
function iperfFailure(stdout: string, stderr: string, status: number | null): string {
  try {
    const j = JSON.parse(stdout) as { error?: string; end?: object };
    if (j.error) return j.error;
    return `exit status ${status}, a result without sum_received (end: ${JSON.stringify(j.end ?? null).slice(0, 300)})`;
  } catch {
    // not JSON (iperf3 died before printing it)
  }
  return stderr.trim().slice(0, 300) || `exit status ${status}, no JSON result in its output`;
}

/** One iperf3 stream (Gbit/s); a failed attempt prints iperf3's error and is tried again, twice. */
async function iperf(port: number): Promise<number> {
  const seconds = Math.min(DURATION, 5);
  for (let attempt = 1; ; attempt++) {
    const c = spawn('iperf3', ['-c', '127.0.0.1', '-p', String(port), '-t', String(seconds), '-J'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(c);
    let out = '';
    let err = '';
    c.stdout?.on('data', (d: Buffer) => {
      out += d;
    });
    c.stderr?.on('data', (d: Buffer) => {
      err += d;
    });
    // a server that never answers would hang the client for ever
    const timer = setTimeout(() => c.kill('SIGKILL'), (seconds + 15) * 1000);
    const [status] = (await once(c, 'exit')) as [number | null];
    clearTimeout(timer);
    let bps: unknown;
    try {
      bps = (JSON.parse(out) as { end?: { sum_received?: { bits_per_second?: unknown } } }).end?.sum_received
        ?.bits_per_second;
    } catch {
      bps = undefined;
    }
    if (status === 0 && typeof bps === 'number') return bps / 1e9;
    process.stderr.write(`iperf3 to ${port}, attempt ${attempt}/3: ${iperfFailure(out, err, status)}\n`);
    if (attempt >= 3) return Number.NaN;
    // iperf3 -s listens again only after the last test's cleanup
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/**
 * Memory of idle proxied connections: RSS growth of the proxy's processes with IDLE_CONNS open,
 * idle connections (all of it divided by the count), and the marginal cost of the second half
 * (one-time growth such as heap and pool sizing excluded).
 */
async function idleMemory(port: number, pids: () => number[]): Promise<{ total: number; marginal: number }> {
  const socks: net.Socket[] = [];
  const addConns = async (n: number) => {
    for (let i = 0; i < n; i++) {
      const s = net.connect(port, '127.0.0.1');
      s.on('error', () => {});
      socks.push(s);
      if (i % 200 === 199) await Promise.all(socks.slice(-200).map((x) => once(x, 'connect').catch(() => {})));
    }
    await new Promise((r) => setTimeout(r, 2000));
  };
  await new Promise((r) => setTimeout(r, 1000));
  const before = rssKiB(pids());
  const half = Math.floor(IDLE_CONNS / 2);
  await addConns(half);
  const mid = rssKiB(pids());
  await addConns(IDLE_CONNS - half);
  const after = rssKiB(pids());
  const open = socks.filter((s) => !s.destroyed && s.readyState === 'open').length;
  for (const s of socks) s.destroy();
  await new Promise((r) => setTimeout(r, 1500));
  if (open < IDLE_CONNS) process.stderr.write(`idle memory: only ${open}/${IDLE_CONNS} connections open\n`);
  return {
    total: ((after - before) * 1024) / IDLE_CONNS,
    marginal: ((after - mid) * 1024) / (IDLE_CONNS - half),
  };
}

const median = (xs: number[]): number => {
  const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
};

function nginxRealServer(port: number, name: string): void {
  writeFileSync(
    join(dir, `${name}.conf`),
    `worker_processes 1;
worker_rlimit_nofile 20000;
pid ${dir}/${name}.pid;
error_log ${dir}/${name}-error.log;
daemon off;
events { worker_connections 19000; }
http {
  access_log off;
  client_body_temp_path ${dir}/cb; proxy_temp_path ${dir}/px; fastcgi_temp_path ${dir}/fc;
  uwsgi_temp_path ${dir}/uw; scgi_temp_path ${dir}/sc;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  server {
    listen 127.0.0.1:${port} backlog=4096;
    location = /small { return 200 'hello\\n'; }
    location = /bulk { root ${dir}/www; }
  }
}
`,
  );
  start('nginx', ['-c', join(dir, `${name}.conf`), '-p', dir]);
}

/**
 * keepalived.conf as an operator writes it: rr over the three real servers, a check on each; the
 * iperf3 server is checked on its host's health port (connect_port), not on iperf3's own port
 */
function keepalivedConf(vip: number, reals: number[], iperfVip: number, iperfReal: number, health: number): string {
  const httpCheck = `    HTTP_GET {\n      url {\n        path /small\n        status_code 200\n      }\n      connect_timeout 1\n      retry 1\n      delay_before_retry 1\n    }\n`;
  const tcpCheck = `    TCP_CHECK {\n      connect_port ${health}\n      connect_timeout 1\n    }\n`;
  const rs = (port: number, check: string) =>
    `  real_server 127.0.0.1 ${port} {\n    weight 1\n${CHECKS === 'off' ? '' : check}  }\n`;
  return `global_defs {
  router_id BENCH
}
virtual_server 127.0.0.1 ${vip} {
  delay_loop ${DELAY_LOOP}
  lvs_sched rr
  lvs_method NAT
  protocol TCP
${reals.map((p) => rs(p, httpCheck)).join('')}}
virtual_server 127.0.0.1 ${iperfVip} {
  delay_loop ${DELAY_LOOP}
  lvs_sched rr
  lvs_method NAT
  protocol TCP
${rs(iperfReal, tcpCheck)}}
`;
}

const daemonReady = (n: number) => (s: DaemonStatusJson) =>
  (CHECKS === 'off' || (s.lvs?.checks.servers.length === n && s.lvs.checks.servers.every((x) => x.up))) &&
  (s.lvs?.dataplane.services.length ?? 0) === 2 &&
  (s.lvs?.dataplane.services.every((x) => x.listener === 'listening') ?? false) &&
  s.lvs?.dataplane.workers === WORKERS;

interface Path {
  readonly name: string;
  readonly http: number;
  readonly iperf: number;
  readonly pids: () => number[];
}

async function main(): Promise<void> {
  const ports = await Promise.all(Array.from({ length: 17 }, () => freePort()));
  const [iperfPort, kvHttp, kvIperf, hnHttp, hnIperf, haHttp, haIperf, ngHttp, ngIperf, healthPort] = ports;
  const reals = ports.slice(10, 10 + REAL_SERVERS);
  const backendPorts = { 'daemon-epoll': ports.slice(13, 15), 'daemon-uring': ports.slice(15, 17) };
  // nginx workers run as www-data: the temp tree must be readable
  chmodSync(dir, 0o755);
  mkdirSync(join(dir, 'www'));
  writeFileSync(join(dir, 'www', 'bulk'), Buffer.alloc(1024 * 1024, 120));
  for (const [i, p] of reals.entries()) nginxRealServer(p, `rs${i + 1}`);
  start('iperf3', ['-s', '-p', String(iperfPort)]);
  // iperf3 -s takes any connection to its port as a test's control connection: a health check's
  // connect-and-close is a failed "test" to it (an error, its listener closed and opened again, a
  // client arriving meanwhile refused). So the iperf3 host is checked as an operator would check
  // such a server, on a port of its own (keepvs connect_port, HAProxy `port`).
  const health = net.createServer((s) => s.destroy());
  health.listen(healthPort, '127.0.0.1');
  healthServer = health;
  await Promise.all([...reals, iperfPort!, healthPort!].map(waitPort));
  const load0 = loadavg();
  const paths: Path[] = [];
  if (PATHS.includes('direct')) paths.push({ name: 'direct', http: reals[0]!, iperf: iperfPort!, pids: () => [] });

  const daemonPaths: [string, string | undefined, number, number][] = [
    ['daemon', undefined, kvHttp!, kvIperf!],
    ['daemon-epoll', 'epoll', ...(backendPorts['daemon-epoll'] as [number, number])],
    ['daemon-uring', 'uring', ...(backendPorts['daemon-uring'] as [number, number])],
  ];
  for (const [name, io, http, iperfVip] of daemonPaths) {
    if (!PATHS.includes(name)) continue;
    const args = process.env.WORKERS ? [`--dataplane-workers=${WORKERS}`] : [];
    // the daemon and its proxy workers inherit the environment at spawn: the backend is forced there only
    const saved = process.env.KEEPVS_PROXY_IO;
    if (io) process.env.KEEPVS_PROXY_IO = io;
    try {
      const d = await startDaemon(
        keepalivedConf(http, reals, iperfVip, iperfPort!, healthPort!),
        args,
        daemonReady(REAL_SERVERS + 1),
      );
      daemons.push(d);
      const root = d.proc.pid!;
      paths.push({ name, http, iperf: iperfVip, pids: () => tree(root) });
    } finally {
      if (saved === undefined) delete process.env.KEEPVS_PROXY_IO;
      else process.env.KEEPVS_PROXY_IO = saved;
    }
  }
  if (PATHS.includes('harness')) {
    const kv = start(process.execPath, [
      new URL('./keepvs-proxy.js', import.meta.url).pathname,
      String(WORKERS),
      'rr',
      `${hnHttp}:${reals.join(',')}`,
      `${hnIperf}:${iperfPort}`,
    ]);
    const [line] = (await once(kv.stdout!, 'data')) as [Buffer];
    const pids = (JSON.parse(String(line)) as { pids: number[] }).pids;
    await waitPort(hnHttp!);
    paths.push({ name: 'harness', http: hnHttp!, iperf: hnIperf!, pids: () => pids });
  }
  if (PATHS.includes('haproxy')) {
    const check = CHECKS === 'off' ? '' : ` check inter ${DELAY_LOOP}s`;
    writeFileSync(
      join(dir, 'haproxy.cfg'),
      `global
  nbthread ${WORKERS}
  maxconn 9950
  tune.bufsize 65536
defaults
  mode tcp
  timeout connect 5s
  timeout client 300s
  timeout server 300s
listen http
  bind 127.0.0.1:${haHttp}
  balance roundrobin
${CHECKS === 'off' ? '' : '  option httpchk GET /small\n'}${reals.map((p, i) => `  server s${i + 1} 127.0.0.1:${p}${check}\n`).join('')}listen iperf
  bind 127.0.0.1:${haIperf}
  server s1 127.0.0.1:${iperfPort}${check}${CHECKS === 'off' ? '' : ` port ${healthPort}`}
`,
    );
    const ha = start('haproxy', ['-f', join(dir, 'haproxy.cfg'), '-db']);
    await waitPort(haHttp!);
    paths.push({ name: 'haproxy', http: haHttp!, iperf: haIperf!, pids: () => tree(ha.pid!) });
  }
  if (PATHS.includes('nginx')) {
    if (!existsSync(STREAM_MODULE))
      process.stderr.write(`nginx stream: ${STREAM_MODULE} missing (libnginx-mod-stream)\n`);
    else {
      writeFileSync(
        join(dir, 'stream.conf'),
        `load_module ${STREAM_MODULE};
worker_processes ${WORKERS};
worker_rlimit_nofile 20000;
pid ${dir}/stream.pid;
error_log ${dir}/stream-error.log;
daemon off;
events { worker_connections 19500; }
stream {
  upstream web { ${reals.map((p) => `server 127.0.0.1:${p};`).join(' ')} }
  server { listen 127.0.0.1:${ngHttp} backlog=4096 reuseport; proxy_pass web; proxy_timeout 300s; }
  server { listen 127.0.0.1:${ngIperf} reuseport; proxy_pass 127.0.0.1:${iperfPort}; proxy_timeout 300s; }
}
`,
      );
      const ng = start('nginx', ['-c', join(dir, 'stream.conf'), '-p', dir]);
      await waitPort(ngHttp!);
      paths.push({ name: 'nginx', http: ngHttp!, iperf: ngIperf!, pids: () => tree(ng.pid!) });
    }
  }

  type Row = Record<string, number[]>;
  const results: Record<string, Row> = Object.fromEntries(paths.map((p) => [p.name, {} as Row]));
  const add = (path: string, metric: string, v: number) => {
    const row = results[path]!;
    row[metric] ??= [];
    row[metric].push(v);
  };
  const proxies = paths.filter((p) => p.name !== 'direct');
  if (process.env.HOLD) {
    for (const p of paths) process.stderr.write(`${JSON.stringify({ ...p, pids: p.pids() })}\n`);
    process.stderr.write('holding: SIGINT to stop\n');
    await new Promise((r) => process.once('SIGINT', r));
    return;
  }
  // idle memory first, on fresh processes: after load, heaps shrink and the table's closed
  // connection entries expire while the idle connections are counted (RSS falls, figures go negative)
  const idle: Record<string, { total: number; marginal: number }> = {};
  if (IDLE_CONNS > 0) for (const p of proxies) idle[p.name] = await idleMemory(p.http, p.pids);
  // warm-up (JIT, pools) for every path: a daemon serves warm; not measured
  for (const p of paths) {
    await wrk(`http://127.0.0.1:${p.http}/small`, 64, false, 3);
    await wrk(`http://127.0.0.1:${p.http}/small`, 64, true, 2);
  }
  for (let round = 0; round < ROUNDS; round++) {
    // each round starts with another path, so no path always runs right after the same one
    const order = paths.map((_, i) => paths[(i + round) % paths.length]!);
    for (const p of order) {
      const pids = p.pids();
      const t0 = cpuTicks(pids);
      const ka = await wrk(`http://127.0.0.1:${p.http}/small`, 64, false);
      const cpuKa = ((cpuTicks(pids) - t0) / HZ) * 1e6;
      add(p.name, 'keep-alive req/s', ka.rps);
      add(p.name, 'keep-alive p50 ms', ka.p50);
      add(p.name, 'keep-alive p99 ms', ka.p99);
      if (pids.length) add(p.name, 'CPU us/request (keep-alive)', cpuKa / ka.requests);
      const t1 = cpuTicks(pids);
      const nc = await wrk(`http://127.0.0.1:${p.http}/small`, 64, true);
      const cpuNc = ((cpuTicks(pids) - t1) / HZ) * 1e6;
      add(p.name, 'new conn/s', nc.rps);
      add(p.name, 'new conn p99 ms', nc.p99);
      if (pids.length) add(p.name, 'CPU us/connection', cpuNc / nc.requests);
      const bulk = await wrk(`http://127.0.0.1:${p.http}/bulk`, 16, false);
      add(p.name, '1 MiB bulk MB/s', bulk.mbps);
      add(p.name, 'iperf3 Gbit/s', await iperf(p.iperf));
      process.stderr.write(`round ${round + 1}/${ROUNDS} ${p.name} done\n`);
    }
  }
  for (const p of IDLE_CONNS > 0 ? proxies : []) {
    add(p.name, `idle conn memory B/conn (${IDLE_CONNS}, all)`, idle[p.name]!.total);
    add(p.name, 'idle conn memory B/conn (marginal, 2nd half)', idle[p.name]!.marginal);
  }
  const load1 = loadavg();

  const names = paths.map((p) => p.name);
  const metrics = [...new Set(paths.flatMap((p) => Object.keys(results[p.name]!)))];
  const fmt = (v: number | undefined) =>
    v === undefined || Number.isNaN(v) ? '-' : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
  const value = (path: string, m: string) => (results[path]?.[m] ? median(results[path][m]) : undefined);
  const ratios = (
    [
      ['daemon', 'haproxy'],
      ['daemon-uring', 'daemon-epoll'],
      ['daemon-uring', 'haproxy'],
      ['daemon-epoll', 'haproxy'],
      ['harness', 'haproxy'],
      ['daemon', 'nginx'],
      ['daemon', 'harness'],
      ['daemon', 'direct'],
    ] as const
  ).filter(([a, b]) => names.includes(a) && names.includes(b));
  const label: Record<string, string> = {
    direct: 'direct',
    daemon: 'keepvs daemon',
    'daemon-epoll': 'keepvs-epoll',
    'daemon-uring': 'keepvs-uring',
    harness: 'keepvs harness',
    haproxy: 'HAProxy',
    nginx: 'nginx stream',
  };
  console.log(
    `# keepvs data-plane benchmark, ${new Date().toISOString()}, ${hostname()}, ${cpus().length} x ${cpus()[0]?.model ?? '?'}, Node ${process.version}`,
  );
  console.log(
    `# ${ROUNDS} interleaved rounds (order rotated each round), ${DURATION}s each, medians; ${WORKERS} workers/threads each (keepvs daemon ${process.env.WORKERS ? `--dataplane-workers=${WORKERS}` : 'default count'}), ` +
      `${REAL_SERVERS} nginx real servers (1 worker each), rr; checks ${CHECKS === 'off' ? 'off' : `on every real server every ${DELAY_LOOP}s (keepvs HTTP_GET/TCP_CHECK, HAProxy check)`}; ` +
      `HAProxy tune.bufsize 65536; wrk -t1 -c64 (bulk -c16); load average ${load0.map((l) => l.toFixed(2)).join(' ')} at start, ${load1.map((l) => l.toFixed(2)).join(' ')} at end`,
  );
  console.log(
    `| metric | ${names.map((n) => label[n]).join(' | ')} | ${ratios.map(([a, b]) => `${label[a]}/${label[b]}`).join(' | ')} |`,
  );
  console.log(`| --- |${' --- |'.repeat(names.length + ratios.length)}`);
  for (const m of metrics) {
    const cells = names.map((n) => fmt(value(n, m)));
    const rs = ratios.map(([a, b]) => {
      const x = value(a, m);
      const y = value(b, m);
      return x !== undefined && y ? (x / y).toFixed(2) : '-';
    });
    console.log(`| ${m} | ${cells.join(' | ')} | ${rs.join(' | ')} |`);
  }
}

async function cleanup(): Promise<void> {
  healthServer?.close();
  for (const d of daemons) await d.stop().catch(() => {});
  for (const c of children) {
    if (c.pid && c.exitCode === null && c.signalCode === null) {
      try {
        process.kill(c.pid, 'SIGTERM');
      } catch {
        // already gone
      }
    }
  }
  await new Promise((r) => setTimeout(r, 500));
  for (const c of children) {
    if (c.pid && c.exitCode === null && c.signalCode === null) {
      try {
        process.kill(c.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  rmSync(dir, { recursive: true, force: true });
}

main()
  .catch((e) => {
    console.error(e);
    process.exitCode = 1;
  })
  .finally(() => void cleanup());
