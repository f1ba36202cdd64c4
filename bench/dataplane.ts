/**
 * Data-plane benchmark: direct to nginx, through keepvs, through HAProxy (mode tcp), side by side,
 * interleaved in rounds, medians reported with ratios keepvs/HAProxy and keepvs/direct.
 * Run through bench/dataplane.sh. Env: ROUNDS (3), DURATION (5 s), WORKERS (2), IDLE_CONNS (9000).
 * Every process it starts is killed by PID at the end.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { cpus, hostname, tmpdir } from 'node:os';
import { join } from 'node:path';

const ROUNDS = Number(process.env.ROUNDS ?? 3);
const DURATION = Number(process.env.DURATION ?? 5);
const WORKERS = Number(process.env.WORKERS ?? 2);
const IDLE_CONNS = Number(process.env.IDLE_CONNS ?? 9000);
const HZ = 100; // USER_HZ for /proc/<pid>/stat

const children: ChildProcess[] = [];
const dir = mkdtempSync(join(tmpdir(), 'keepvs-bench-'));

async function freePort(): Promise<number> {
  const s = net.createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function start(cmd: string, args: string[]): ChildProcess {
  const c = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  c.stderr?.on('data', (d: Buffer) => {
    if (process.env.VERBOSE) process.stderr.write(d);
  });
  children.push(c);
  return c;
}

async function waitPort(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
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

function iperf(port: number): number {
  const out = execFileSync(
    'iperf3',
    ['-c', '127.0.0.1', '-p', String(port), '-t', String(Math.min(DURATION, 5)), '-J'],
    {
      encoding: 'utf8',
    },
  );
  return (JSON.parse(out).end.sum_received.bits_per_second as number) / 1e9;
}

/**
 * Memory of idle proxied connections: RSS growth of the proxy's processes with IDLE_CONNS open,
 * idle connections (all of it divided by the count), and the marginal cost of the second half
 * (one-time growth such as heap and pool sizing excluded).
 */
async function idleMemory(port: number, pids: number[]): Promise<{ total: number; marginal: number }> {
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
  const before = rssKiB(pids);
  const half = Math.floor(IDLE_CONNS / 2);
  await addConns(half);
  const mid = rssKiB(pids);
  await addConns(IDLE_CONNS - half);
  const after = rssKiB(pids);
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
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
};

async function main(): Promise<void> {
  const [nginxPort, iperfPort, kvHttp, kvIperf, haHttp, haIperf] = await Promise.all(
    Array.from({ length: 6 }, () => freePort()),
  );
  // nginx: one worker, small and 1 MiB responses
  // nginx workers run as www-data: the temp tree must be readable
  chmodSync(dir, 0o755);
  mkdirSync(join(dir, 'www'));
  writeFileSync(join(dir, 'www', 'bulk'), Buffer.alloc(1024 * 1024, 120));
  writeFileSync(
    join(dir, 'nginx.conf'),
    `worker_processes 1;
worker_rlimit_nofile 20000;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log;
daemon off;
events { worker_connections 19000; }
http {
  access_log off;
  client_body_temp_path ${dir}/cb; proxy_temp_path ${dir}/px; fastcgi_temp_path ${dir}/fc;
  uwsgi_temp_path ${dir}/uw; scgi_temp_path ${dir}/sc;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  server {
    listen 127.0.0.1:${nginxPort} backlog=4096;
    location = /small { return 200 'hello\\n'; }
    location = /bulk { root ${dir}/www; }
  }
}
`,
  );
  start('nginx', ['-c', join(dir, 'nginx.conf'), '-p', dir]);
  start('iperf3', ['-s', '-p', String(iperfPort)]);
  writeFileSync(
    join(dir, 'haproxy.cfg'),
    `global
  nbthread ${WORKERS}
  maxconn 9990
  tune.bufsize 65536
defaults
  mode tcp
  timeout connect 5s
  timeout client 300s
  timeout server 300s
listen http
  bind 127.0.0.1:${haHttp}
  server s1 127.0.0.1:${nginxPort}
listen iperf
  bind 127.0.0.1:${haIperf}
  server s1 127.0.0.1:${iperfPort}
`,
  );
  const ha = start('haproxy', ['-f', join(dir, 'haproxy.cfg'), '-db']);
  const kv = start(process.execPath, [
    new URL('./keepvs-proxy.js', import.meta.url).pathname,
    String(WORKERS),
    `${kvHttp}:${nginxPort}`,
    `${kvIperf}:${iperfPort}`,
  ]);
  const [line] = (await once(kv.stdout!, 'data')) as [Buffer];
  const kvPids = (JSON.parse(String(line)) as { pids: number[] }).pids;
  await Promise.all([nginxPort!, iperfPort!, kvHttp!, haHttp!].map(waitPort));
  const haPids = [ha.pid!];

  const paths = [
    { name: 'direct', http: nginxPort!, iperf: iperfPort!, pids: [] as number[] },
    { name: 'keepvs', http: kvHttp!, iperf: kvIperf!, pids: kvPids },
    { name: 'haproxy', http: haHttp!, iperf: haIperf!, pids: haPids },
  ];
  type Row = Record<string, number[]>;
  const results: Record<string, Row> = Object.fromEntries(paths.map((p) => [p.name, {} as Row]));
  const add = (path: string, metric: string, v: number) => {
    const row = results[path]!;
    row[metric] ??= [];
    row[metric].push(v);
  };
  // idle memory first, on fresh processes: after load, heaps shrink and the table's closed
  // connection entries expire while the idle connections are counted (RSS falls, figures go negative)
  const idle: Record<string, { total: number; marginal: number }> = {};
  for (const p of paths.slice(1)) idle[p.name] = await idleMemory(p.http, p.pids);
  // warm-up (JIT, pools) for every path: a daemon serves warm; not measured
  for (const p of paths) {
    await wrk(`http://127.0.0.1:${p.http}/small`, 64, false, 3);
    await wrk(`http://127.0.0.1:${p.http}/small`, 64, true, 2);
  }
  for (let round = 0; round < ROUNDS; round++) {
    // each round starts with another path, so no path always runs right after the same one
    const order = paths.map((_, i) => paths[(i + round) % paths.length]!);
    for (const p of order) {
      const t0 = cpuTicks(p.pids);
      const ka = await wrk(`http://127.0.0.1:${p.http}/small`, 64, false);
      const cpuKa = ((cpuTicks(p.pids) - t0) / HZ) * 1e6;
      add(p.name, 'keep-alive req/s', ka.rps);
      add(p.name, 'keep-alive p50 ms', ka.p50);
      add(p.name, 'keep-alive p99 ms', ka.p99);
      if (p.pids.length) add(p.name, 'CPU us/request (keep-alive)', cpuKa / ka.requests);
      const t1 = cpuTicks(p.pids);
      const nc = await wrk(`http://127.0.0.1:${p.http}/small`, 64, true);
      const cpuNc = ((cpuTicks(p.pids) - t1) / HZ) * 1e6;
      add(p.name, 'new conn/s', nc.rps);
      add(p.name, 'new conn p99 ms', nc.p99);
      if (p.pids.length) add(p.name, 'CPU us/connection', cpuNc / nc.requests);
      const bulk = await wrk(`http://127.0.0.1:${p.http}/bulk`, 16, false);
      add(p.name, '1 MiB bulk MB/s', bulk.mbps);
      add(p.name, 'iperf3 Gbit/s', iperf(p.iperf));
      process.stderr.write(`round ${round + 1}/${ROUNDS} ${p.name} done\n`);
    }
  }
  for (const p of paths.slice(1)) {
    add(p.name, `idle conn memory B/conn (${IDLE_CONNS}, all)`, idle[p.name]!.total);
    add(p.name, 'idle conn memory B/conn (marginal, 2nd half)', idle[p.name]!.marginal);
  }

  const metrics = Object.keys(results.keepvs!);
  const fmt = (v: number | undefined) =>
    v === undefined || Number.isNaN(v) ? '-' : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
  console.log(
    `# keepvs data-plane benchmark, ${new Date().toISOString()}, ${hostname()}, ${cpus().length} x ${cpus()[0]?.model ?? '?'}, Node ${process.version}`,
  );
  console.log(
    `# ${ROUNDS} interleaved rounds (order rotated each round), ${DURATION}s each, medians; keepvs ${WORKERS} workers, HAProxy nbthread ${WORKERS} tune.bufsize 65536, nginx 1 worker; wrk -t1 -c64 (bulk -c16)`,
  );
  console.log('| metric | direct | keepvs | HAProxy | keepvs/HAProxy | keepvs/direct |');
  console.log('| --- | --- | --- | --- | --- | --- |');
  for (const m of metrics) {
    const d = results.direct![m] ? median(results.direct![m]) : undefined;
    const k = median(results.keepvs![m]!);
    const h = results.haproxy![m] ? median(results.haproxy![m]) : undefined;
    console.log(
      `| ${m} | ${fmt(d)} | ${fmt(k)} | ${fmt(h)} | ${h ? (k / h).toFixed(2) : '-'} | ${d ? (k / d).toFixed(2) : '-'} |`,
    );
  }
}

async function cleanup(): Promise<void> {
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
