/**
 * The network lab for the kernel-plane UDP tests (ops-lab, udp-lab): lab.sh with three real servers,
 * UDP echo-style servers on them, keepvs on lb1, keepvsadm, and a UDP client in the client namespace.
 * Each test file passes its own LAB_PREFIX, configuration and ports; only lab addresses are used.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { until as untilTrue } from '../../e2e/harness.js';
import { keepvsadm, LAB, type LabKeepvs, startLabKeepvs } from '../lab-daemon.js';
import { addDrLabAddresses } from './dr-lab-addresses.js';

export const canRunLab = process.getuid?.() === 0 && existsSync(LAB) && existsSync('/usr/sbin/nft');
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A real server: every datagram on its ports is answered with "<name> <source address seen>", IPv4
 * and IPv6. DR ports (`port@`) bind the VIPs: a wildcard UDP socket answers from the route's source
 * address, not from the VIP the datagram came to (a DR real server's own concern, as for DNS
 * servers). A file `down-<name>-<port>` in the lab directory makes that port silent (a failed
 * service that still holds its socket, so no ICMP port unreachable either).
 */
const rsServer = (v4: string, v6: string, dir: string) => `import dgram from 'node:dgram';
import { existsSync } from 'node:fs';
const [name, ...ports] = process.argv.slice(2);
for (const p of ports)
  for (const type of ['udp4', 'udp6']) {
    const s = dgram.createSocket({ type, ipv6Only: type === 'udp6' });
    const port = Number(p.replace('@', ''));
    const down = ${JSON.stringify(dir)} + '/down-' + name + '-' + port;
    s.on('message', (m, r) => { if (!existsSync(down)) s.send(name + ' ' + r.address, r.port, r.address); });
    s.bind(port, p.endsWith('@') ? (type === 'udp4' ? '${v4}' : '${v6}') : undefined);
  }
`;

/**
 * \`sockets\` sockets one after the other, each sending n datagrams one after the other (each waits
 * for its reply, 1 s): which real server answered, which client address it saw, where replies came from.
 */
const CLIENT = `import dgram from 'node:dgram';
const [host, port, n, sockets] = process.argv.slice(2);
const out = { names: [], sockets: [], ports: [], from: new Set(), seen: new Set(), lost: 0 };
function one(s, names, i) {
  return new Promise((resolve) => {
    const t = setTimeout(() => { out.lost++; s.off('message', on); resolve(); }, 1000);
    function on(m, r) {
      clearTimeout(t); s.off('message', on);
      const [name, seen] = String(m).split(' ');
      names.push(name); out.names.push(name); out.seen.add(seen); out.from.add(r.address + ' ' + r.port);
      resolve();
    }
    s.on('message', on);
    s.send('q' + i, Number(port), host);
  });
}
for (let k = 0; k < Number(sockets); k++) {
  const s = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  await new Promise((r) => s.bind(0, r));
  out.ports.push(s.address().port);
  const names = [];
  for (let i = 0; i < Number(n); i++) await one(s, names, i);
  out.sockets.push(names);
  s.close();
}
process.stdout.write(JSON.stringify({ ...out, from: [...out.from], seen: [...out.seen] }));
`;

/** One socket sending a datagram every `interval` ms until stdin closes; prints "<ms> <name>" per reply. */
const STREAM = `import dgram from 'node:dgram';
const [host, port, interval] = process.argv.slice(2);
const s = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
const t0 = Date.now(); let i = 0;
s.on('message', (m) => process.stdout.write((Date.now() - t0) + ' ' + String(m).split(' ')[0] + '\\n'));
s.bind(0, () => {
  const t = setInterval(() => s.send('s' + i++, Number(port), host), Number(interval));
  process.stdin.on('end', () => { clearInterval(t); s.close(); });
  process.stdin.resume();
});
`;

/** A running stream: the replies so far ([ms since start, real server]) and how to end it. */
export interface UdpStream {
  replies(): [number, string][];
  stop(): Promise<void>;
}

export interface UdpResult {
  /** the real servers' names, in reply order, every socket */
  names: string[];
  /** the same, per socket */
  sockets: string[][];
  /** each socket's local port */
  ports: number[];
  /** "address port" the replies came from */
  from: string[];
  /** the client addresses the real servers saw */
  seen: string[];
  lost: number;
}

export interface UdpLabOptions {
  /** LAB_PREFIX, unique per test file */
  prefix: string;
  vip4: string;
  vip6: string;
  config: string;
  /** the real servers' UDP ports; `port@` binds the VIPs (DR) */
  rsPorts: readonly string[];
  /** extra addresses on lb1: [address/len, device] (full-NAT local addresses) */
  lb1Addresses?: readonly (readonly [string, string])[];
}

export interface UdpLab {
  readonly dir: string;
  sh(cmd: string, ...args: string[]): string;
  inNs(host: string, ...argv: string[]): string;
  adm(...args: string[]): string;
  send(vip: string, port: number, n: number, sockets?: number): UdpResult;
  stream(vip: string, port: number, intervalMs: number): UdpStream;
  until(what: string, f: () => boolean, ms?: number): Promise<number>;
  /** make real server rs<i>'s port silent (true) or answering again */
  silence(i: number, port: number, on: boolean): void;
  /** keepvs output so far */
  log(): string;
  up(ready: (lab: UdpLab) => Promise<void>): Promise<void>;
  down(): void;
}

export function udpLab(o: UdpLabOptions): UdpLab {
  const dir = mkdtempSync(join(tmpdir(), `kv-${o.prefix}-`));
  const env = { ...process.env, LAB_PREFIX: o.prefix, LAB_RS: '3', LAB_DR: '0' };
  const sock = join(dir, 'keepvs.sock');
  const procs: ChildProcess[] = [];
  let kv: LabKeepvs | undefined;
  const sh = (cmd: string, ...args: string[]) => execFileSync(cmd, args, { env, encoding: 'utf8' });
  const spawnIn = (host: string, ...argv: string[]): ChildProcess => {
    const p = spawn('ip', ['netns', 'exec', `${o.prefix}-${host}`, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    procs.push(p);
    return p;
  };
  const lab: UdpLab = {
    dir,
    sh,
    inNs: (host, ...argv) => sh('ip', 'netns', 'exec', `${o.prefix}-${host}`, ...argv),
    adm: (...args) => keepvsadm(sock, ...args),
    send: (vip, port, n, sockets = 1) =>
      JSON.parse(lab.inNs('client', process.execPath, join(dir, 'client.mjs'), vip, `${port}`, `${n}`, `${sockets}`)),
    stream(vip, port, intervalMs) {
      const p = spawn(
        'ip',
        [
          'netns',
          'exec',
          `${o.prefix}-client`,
          process.execPath,
          join(dir, 'stream.mjs'),
          vip,
          `${port}`,
          `${intervalMs}`,
        ],
        { stdio: ['pipe', 'pipe', 'inherit'] },
      );
      procs.push(p);
      let out = '';
      p.stdout?.on('data', (d) => (out += d));
      const exited = new Promise<void>((r) => p.on('exit', () => r()));
      return {
        replies: () =>
          out
            .split('\n')
            .filter((l) => l.includes(' '))
            .map((l) => [Number(l.split(' ')[0]), l.split(' ')[1]] as [number, string]),
        async stop() {
          p.stdin?.end();
          await exited;
        },
      };
    },
    until(what, f, ms = 20000) {
      const t0 = Date.now();
      return untilTrue(what, f, ms, () => lab.log()).then(() => Date.now() - t0);
    },
    silence(i, port, on) {
      const f = join(dir, `down-rs${i}-${port}`);
      if (on) writeFileSync(f, '');
      else rmSync(f, { force: true });
    },
    log: () => kv?.log() ?? '',
    async up(ready) {
      writeFileSync(join(dir, 'rs.mjs'), rsServer(o.vip4, o.vip6, dir));
      writeFileSync(join(dir, 'client.mjs'), CLIENT);
      writeFileSync(join(dir, 'stream.mjs'), STREAM);
      writeFileSync(join(dir, 'keepalived.conf'), o.config);
      sh('bash', LAB, 'up');
      addDrLabAddresses(sh, o.prefix, o.vip4, o.vip6, 3);
      for (const [a, dev] of o.lb1Addresses ?? [])
        sh('ip', '-n', `${o.prefix}-lb1`, 'addr', 'add', a, 'dev', dev, ...(a.includes(':') ? ['nodad'] : []));
      for (const i of [1, 2, 3]) spawnIn(`rs${i}`, process.execPath, join(dir, 'rs.mjs'), `rs${i}`, ...o.rsPorts);
      kv = startLabKeepvs({ ns: `${o.prefix}-lb1`, dir, sock });
      await ready(lab).catch((e) => {
        throw new Error(`${e}; keepvs log:\n${lab.log().slice(-3000)}`);
      });
    },
    down() {
      kv?.proc.kill('SIGTERM');
      for (const p of procs) p.kill('SIGKILL');
      try {
        sh('bash', LAB, 'down');
      } catch {}
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return lab;
}
