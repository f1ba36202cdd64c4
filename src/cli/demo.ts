/**
 * `keepvs demo`: the main job on an embedded default, on loopback and without root. Three small
 * HTTP real servers, keepvs in front of them (userspace data plane, HTTP_GET checks every second),
 * a few requests showing the balancing, then one real server stopped and restarted to show it
 * leaving and rejoining the pool. The dashboard stays up until Ctrl-C (or --duration).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OverlayConfigFs } from '../config/fs-port.js';
import { loadConfig } from '../config/index.js';
import { startDaemon } from '../daemon/main.js';
import type { DaemonOptions } from '../daemon/options.js';
import { NodeConfigFs } from '../os/config-fs.js';
import { daemonOptions } from './daemon-options.js';
import type { KeepvsOptions } from './keepvs-args.js';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

function startRealServer(name: string, port: number): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    res.setHeader('content-type', 'text/plain');
    res.end(req.url === '/health' ? 'ok\n' : `hello from ${name}\n`);
  });
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(server)));
}

function get(port: number): Promise<string> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false, timeout: 2000 }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve(body.trim()));
    });
    req.on('error', (e) => resolve(`error: ${(e as NodeJS.ErrnoException).code}`));
    req.on('timeout', () => req.destroy());
  });
}

export function demoConfig(vipPort: number, rsPorts: number[]): string {
  const servers = rsPorts
    .map(
      (p) => `    real_server 127.0.0.1 ${p} {
        weight 1
        HTTP_GET {
            url {
                path /health
                status_code 200
            }
            connect_timeout 1
            retry 1
            delay_before_retry 1
        }
    }`,
    )
    .join('\n');
  return `! keepvs demo: generated configuration (keepalived.conf syntax)
global_defs {
    router_id KEEPVS_DEMO
}

virtual_server 127.0.0.1 ${vipPort} {
    delay_loop 1
    lvs_sched rr
    lvs_method NAT
    protocol TCP
${servers}
}
`;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `keepvs demo [--duration S] [--api HOST:PORT|off]` */
export function parseDemoArgs(
  args: readonly string[],
): { duration?: number; api?: { host: string; port: number } | null } | string {
  const out: { duration?: number; api?: { host: string; port: number } | null } = {};
  for (let i = 0; i < args.length; i++) {
    const [name, inline] = args[i].split('=', 2);
    const value = inline ?? args[++i];
    if (name === '--duration') {
      const n = Number(value);
      if (!(n > 0)) return `invalid --duration '${value}' (seconds > 0)`;
      out.duration = n;
    } else if (name === '--api') {
      if (value === 'off') out.api = null;
      else {
        const m = /^([^:]+):(\d+)$/.exec(value ?? '');
        if (!m) return `invalid --api '${value}' (HOST:PORT or off)`;
        out.api = { host: m[1], port: Number(m[2]) };
      }
    } else return `unknown demo option '${args[i]}' (--duration S, --api HOST:PORT|off)`;
  }
  return out;
}

export async function runDemo(options: KeepvsOptions): Promise<number> {
  const say = (t: string) => process.stdout.write(`${t}\n`);
  const args = parseDemoArgs(options.demoArgs);
  if (typeof args === 'string') {
    process.stderr.write(`keepvs demo: ${args}\n`);
    return 2;
  }
  const o = {
    ...daemonOptions(options, ''),
    ...(args.api !== undefined ? { api: args.api } : {}),
    duration: args.duration,
  };
  const dir = mkdtempSync(join(tmpdir(), 'keepvs-demo-'));
  const rsPorts = [await freePort(), await freePort(), await freePort()];
  const vipPort = await freePort();
  const servers = await Promise.all(rsPorts.map((p, i) => startRealServer(`rs${i + 1}`, p)));
  const configFile = join(dir, 'keepalived.conf');
  writeFileSync(configFile, demoConfig(vipPort, rsPorts));
  // the default dashboard port when it is free, else any free port
  const api = o.api && o.api.port === 9180 && !(await portFree(9180)) ? { host: '127.0.0.1', port: 0 } : o.api;
  const opts: DaemonOptions = {
    ...o,
    configFile,
    socket: join(dir, 'keepvs.sock'),
    pidFile: join(dir, 'keepvs.pid'),
    vrrpPidFile: join(dir, 'keepvs_vrrp.pid'),
    checkersPidFile: join(dir, 'keepvs_checkers.pid'),
    noSyslog: true,
    api: o.api === null ? null : (api ?? null),
  };
  const load = (overlay?: ReadonlyMap<string, string>) =>
    loadConfig(configFile, {
      fs: overlay ? new OverlayConfigFs(new NodeConfigFs(), overlay) : new NodeConfigFs(),
      configId: 'demo',
    });
  const h = await startDaemon(opts, load);
  if (typeof h === 'number') return h;
  say('keepvs demo');
  say(`  real servers : ${rsPorts.map((p, i) => `rs${i + 1}=127.0.0.1:${p}`).join('  ')}`);
  say(`  virtual svc  : TCP 127.0.0.1:${vipPort} (rr, HTTP_GET checks every 1 s)`);
  say(`  config       : ${configFile}`);
  if (h.apiUrl) say(`  dashboard    : ${h.apiUrl}/   (API ${h.apiUrl}/api/v1/status, metrics ${h.apiUrl}/metrics)`);
  say(`  keepvsadm    : node bin/keepvsadm.js --socket ${opts.socket} -Ln`);
  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    say('stopping demo');
    await h.supervisor.stop(500);
    await h.api?.close();
    for (const s of servers) s.close();
    rmSync(dir, { recursive: true, force: true });
    process.exitCode = code;
    setTimeout(() => process.exit(code), 300).unref();
  };
  process.on('SIGINT', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));
  const until = o.duration ? Date.now() + o.duration * 1000 : Number.POSITIVE_INFINITY;
  const round = async (label: string) => {
    const answers: string[] = [];
    for (let i = 0; i < 6; i++) answers.push(await get(vipPort));
    say(`${label}: ${answers.map((a) => a.replace('hello from ', '')).join(' ')}`);
  };
  await sleep(1500);
  await round('balanced (6 requests)');
  say('stopping rs2 ...');
  await new Promise<void>((r) => {
    servers[1].close(() => r());
    servers[1].closeAllConnections();
  });
  await sleep(3500);
  const st = h.supervisor.status();
  const rs2 = st.lvs?.checks.servers.find((s) => s.dest.endsWith(`:${rsPorts[1]}`));
  say(`rs2 health: ${rs2?.up ? 'up' : 'down'} (${rs2?.checkers[0]?.reason ?? 'n/a'})`);
  await round('without rs2          ');
  say('starting rs2 again ...');
  servers[1] = await startRealServer('rs2', rsPorts[1]);
  await sleep(2500);
  await round('rs2 back             ');
  say(h.apiUrl ? `running; open ${h.apiUrl}/ (Ctrl-C to stop)` : 'running (Ctrl-C to stop)');
  while (!stopping && Date.now() < until) await sleep(200);
  await stop(0);
  return 0;
}
