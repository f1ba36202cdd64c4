/**
 * Health-check throughput: keepvs checking N real servers every second with TCP_CHECK and
 * HTTP_GET (2 checkers per real server), against a baseline that does the same connects and
 * GETs in a bare loop (no scheduler/policy). The real servers live in a child process (one Node
 * process listening on N loopback ports), so the CPU figures are the checker's own.
 *
 *   npx tsc -p . && node dist/bench/checks.js [--servers 1000] [--seconds 10]
 */
import { type ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';
import { CheckManager } from '../src/check/check-manager.js';
import type { Checker } from '../src/config/model.js';
import { NodeDialer } from '../src/os/dialer.js';
import { ChildProcessRunner } from '../src/os/process-runner.js';
import { SystemClock } from '../src/util/clock.js';
import { EventBus } from '../src/util/events.js';
import { MemoryLogger } from '../src/util/logger.js';

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
};
const N = arg('servers', 1000);
const SECONDS = arg('seconds', 10);
const loc = { file: 'bench', line: 1, col: 1 };
const REPLY = 'HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok';

async function serve(): Promise<void> {
  const ports: number[] = [];
  for (let i = 0; i < N; i++) {
    const srv = net.createServer((s) => {
      s.on('error', () => {});
      s.once('data', () => s.end(REPLY));
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', 4096, r));
    ports.push((srv.address() as net.AddressInfo).port);
  }
  process.stdout.write(`${JSON.stringify(ports)}\n`);
}

function startServers(): Promise<{ child: ChildProcess; ports: number[] }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [new URL(import.meta.url).pathname, '--serve', '--servers', String(N)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let buf = '';
    child.stdout!.on('data', (d) => {
      buf += d;
      if (buf.includes('\n')) resolve({ child, ports: JSON.parse(buf) });
    });
    child.on('error', reject);
  });
}

interface Measure {
  probesPerSec: number;
  cpuPct: number;
}

async function measure(count: () => number): Promise<Measure> {
  await new Promise((r) => setTimeout(r, 1500)); // one delay_loop of warm-up
  const c0 = count();
  const u0 = process.cpuUsage();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  const u = process.cpuUsage(u0);
  const secs = (performance.now() - t0) / 1000;
  return { probesPerSec: (count() - c0) / secs, cpuPct: ((u.user + u.system) / 1e6 / secs) * 100 };
}

async function keepvs(ports: number[]): Promise<Measure & { up: number }> {
  const timing = { connectTimeout: 2, retry: 1, delayBeforeRetry: 1, warmup: 0, delayLoop: 1 };
  const checkers = (): Checker[] => [
    { type: 'TCP_CHECK', loc, alpha: false, logAllFailures: false, ...timing },
    {
      type: 'HTTP_GET',
      loc,
      alpha: false,
      logAllFailures: false,
      ...timing,
      urls: [{ path: '/', statusCodes: [[200, 299]], regexNoMatch: false, loc }],
      httpProtocol: '1.0',
      enableSni: false,
      fastRecovery: false,
    },
  ];
  const realServers = ports.map((port) => ({
    address: '127.0.0.1',
    family: 4 as const,
    port,
    weight: 1,
    method: 'NAT' as const,
    uthreshold: 0,
    lthreshold: 0,
    inhibitOnFailure: false,
    alpha: false,
    checkers: checkers(),
    loc,
  }));
  const config = {
    files: [],
    globalDefs: {},
    staticIpaddresses: [],
    staticRoutes: [],
    staticRules: [],
    vrrpScripts: [],
    trackFiles: [],
    trackProcesses: [],
    syncGroups: [],
    vrrpInstances: [],
    virtualServerGroups: [],
    virtualServers: [
      {
        key: { kind: 'address', address: '198.18.0.100', family: 4, port: 80 },
        protocol: 'TCP',
        scheduler: 'wlc',
        schedFlags: [],
        ops: false,
        method: 'NAT',
        delayLoop: 1,
        haSuspend: false,
        alpha: false,
        omega: false,
        quorum: 1,
        hysteresis: 0,
        inhibitOnFailure: false,
        sorryServerInhibit: false,
        realServers,
        loc,
      },
    ],
  } as unknown as import('../src/config/model.js').Config;
  const m = new CheckManager({
    config,
    clock: new SystemClock(),
    dialer: new NodeDialer(),
    runner: new ChildProcessRunner(),
    logger: new MemoryLogger(),
    events: new EventBus(),
  });
  m.start();
  const r = await measure(() => m.snapshot().scheduler.probesDone);
  const view = m.health().services['tcp:198.18.0.100:80'].dests;
  const up = Object.values(view).filter((d) => d.up).length;
  const timeouts = m.snapshot().scheduler.timeouts;
  m.stop();
  if (timeouts) console.log(`  (keepvs: ${timeouts} probe timeouts)`);
  return { ...r, up };
}

/** Baseline: the same connects/GETs fired by plain setTimeout loops, staggered identically. */
async function baseline(ports: number[]): Promise<Measure> {
  let done = 0;
  let stop = false;
  const timers: NodeJS.Timeout[] = [];
  const tcp = (port: number) =>
    new Promise<void>((res) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        res();
      });
      s.on('error', () => res());
    });
  const get = (port: number) =>
    new Promise<void>((res) => {
      const s = net.connect(port, '127.0.0.1', () => s.write('GET / HTTP/1.0\r\nHost: x\r\n\r\n'));
      s.on('data', () => {});
      s.on('end', () => {
        s.destroy();
        res();
      });
      s.on('error', () => res());
    });
  const loops = ports.flatMap((p) => [() => tcp(p), () => get(p)]);
  loops.forEach((probe, i) => {
    const tick = () => {
      if (stop) return;
      probe().then(() => {
        done++;
        if (!stop) timers.push(setTimeout(tick, 1000));
      });
    };
    timers.push(setTimeout(tick, (i / loops.length) * 1000));
  });
  const r = await measure(() => done);
  stop = true;
  for (const t of timers) clearTimeout(t);
  return r;
}

async function main() {
  if (process.argv.includes('--serve')) return serve();
  const { child, ports } = await startServers();
  try {
    const target = N * 2;
    console.log(`${N} real servers x (TCP_CHECK + HTTP_GET), delay_loop 1 s: target ${target} probes/s, ${SECONDS} s`);
    const k = await keepvs(ports);
    const b = await baseline(ports);
    const row = (name: string, x: Measure) =>
      console.log(
        `${name.padEnd(9)} ${x.probesPerSec.toFixed(0).padStart(6)} probes/s (${((x.probesPerSec / target) * 100).toFixed(1)}% of target)  CPU ${x.cpuPct.toFixed(1)}% of one core`,
      );
    row('keepvs', k);
    row('baseline', b);
    console.log(`keepvs real servers up: ${k.up}/${N}`);
    console.log(
      `ratio keepvs/baseline: rate ${(k.probesPerSec / b.probesPerSec).toFixed(2)}x, CPU ${(k.cpuPct / b.cpuPct).toFixed(2)}x`,
    );
  } finally {
    child.kill('SIGTERM');
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
