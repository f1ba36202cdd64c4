// Entry point of the `keepvsadm` binary: ipvsadm's arguments and output, talking to keepvs.
import { readFileSync } from 'node:fs';
import { type ControlResponse, DEFAULT_SOCKET } from '../control/protocol.js';
import { controlRequest } from '../control/server.js';
import type { ServiceSnapshot, TableOp } from '../lb/types.js';
import { serviceId } from '../lb/types.js';
import { VERSION } from '../version.js';
import { opsFor, serviceKeyOf } from './keepvsadm/command.js';
import {
  formatConnections,
  formatDaemons,
  formatList,
  formatSave,
  formatTimeouts,
  sortedTable,
} from './keepvsadm/format.js';
import { hostsFileNames } from './keepvsadm/hosts.js';
import { type Command, IPVSADM_USAGE, parseIpvsadmArgs } from './keepvsadm/parse.js';

function fail(message: string, code = 2): number {
  process.stderr.write(`${message}\n`);
  return code;
}

async function request(socket: string, body: object, timeoutMs?: number): Promise<ControlResponse> {
  try {
    return await controlRequest(socket, { v: 1, ...body }, timeoutMs);
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    return {
      ok: false,
      error: `keepvsadm: cannot connect to keepvs at ${socket}: ${why} (is keepvs running? see --socket)`,
    };
  }
}

async function names(numeric: boolean) {
  if (numeric) return undefined;
  let hosts = new Map<string, string>();
  try {
    hosts = hostsFileNames(readFileSync(process.env.KEEPVS_HOSTS_FILE ?? '/etc/hosts', 'utf8'));
  } catch {
    // no hosts file: numeric addresses
  }
  const { portByNumber } = await import('./keepvsadm/ports.js');
  return {
    host: (a: string) => hosts.get(a.toLowerCase()),
    port: (p: number, proto: string) => portByNumber(p, proto),
  };
}

async function applyOps(socket: string, ops: TableOp[], lines?: number[]): Promise<number> {
  const r = await request(socket, { cmd: 'apply', ops });
  if (!r.ok) return fail(r.error);
  if (!('results' in r)) return fail('unexpected response from keepvs');
  let status = 0;
  r.results.forEach((res, i) => {
    if (!res.ok) {
      // ipvsadm prints the kernel's error text alone
      process.stderr.write(`${lines ? `line ${lines[i]}: ` : ''}${(res.error ?? 'error').split(':')[0]}\n`);
      status = 2;
    }
  });
  return status;
}

async function main(argv: string[]): Promise<number> {
  let socket = process.env.KEEPVS_SOCKET ?? DEFAULT_SOCKET;
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--socket') socket = argv[++i] ?? socket;
    else if (argv[i].startsWith('--socket=')) socket = argv[i].slice(9);
    else rest.push(argv[i]);
  }
  const parsed = parseIpvsadmArgs(rest);
  if ('error' in parsed) {
    // popt's errors come with ipvsadm's "Try" line (tryhelp_exit); its own checks print the text alone
    const popt = /: (unknown option|missing argument)$/.test(parsed.error);
    return fail(
      popt ? `${parsed.error}\nTry \`keepvsadm -h' or 'keepvsadm --help' for more information.` : parsed.error,
    );
  }
  const c: Command = parsed;
  switch (c.cmd) {
    case 'help':
      process.stdout.write(IPVSADM_USAGE);
      return 0;
    case 'version':
      process.stdout.write(`keepvsadm ${VERSION} (ipvsadm v1.31 compatible)\n`);
      return 0;
    case 'start-daemon':
    case 'stop-daemon': {
      // ipvsadm.c: --mcast-interface defaults to DEF_MCAST_IFN (eth0), --syncid to 0
      const state = c.daemonState as 'master' | 'backup';
      const r = await request(
        socket,
        c.cmd === 'stop-daemon'
          ? { cmd: 'stop-daemon', state }
          : {
              cmd: 'start-daemon',
              daemon: {
                state,
                interface: c.mcastInterface ?? 'eth0',
                syncId: c.syncId ?? 0,
                ...(c.syncMaxlen !== undefined ? { maxlen: c.syncMaxlen } : {}),
                ...(c.mcastGroup !== undefined ? { group: c.mcastGroup } : {}),
                ...(c.mcastPort !== undefined ? { port: c.mcastPort } : {}),
                ...(c.mcastTtl !== undefined ? { ttl: c.mcastTtl } : {}),
              },
            },
        // starting conntrackd and a takeover's commit can take seconds
        20_000,
      );
      return r.ok ? 0 : fail(r.error);
    }
    case 'restore': {
      const input = await new Promise<string>((resolve) => {
        let s = '';
        process.stdin.setEncoding('utf8');
        process.stdin.on('data', (d) => (s += d));
        process.stdin.on('end', () => resolve(s));
      });
      // ipvsadm.c restore_table: one line at a time, each applied before the next is read; the
      // first bad line stops the restore, the lines before it stay applied
      let n = 0;
      for (const raw of input.split('\n')) {
        n++;
        const words = raw.trim().split(/\s+/).filter(Boolean);
        if (words[0] === 'ipvsadm' || words[0] === 'keepvsadm') words.shift();
        if (words.length === 0 || words[0].startsWith('#')) continue;
        const lc = parseIpvsadmArgs(words);
        if ('error' in lc) return fail(`line ${n}: ${lc.error}`);
        const o = await opsFor(lc);
        if (typeof o === 'string') return fail(`line ${n}: ${o}`);
        const status = await applyOps(
          socket,
          o,
          o.map(() => n),
        );
        if (status !== 0) return status;
      }
      return 0;
    }
    case 'list':
    case 'save': {
      if (c.connections) {
        const r = await request(socket, { cmd: 'connections' });
        if (!r.ok) return fail(r.error);
        if (!('connections' in r)) return fail('unexpected response');
        process.stdout.write(formatConnections(r.connections, { numeric: c.numeric, exact: false, format: 'default' }));
        return 0;
      }
      const r = await request(socket, { cmd: 'snapshot' });
      if (!r.ok) return fail(r.error);
      if (!('snapshot' in r)) return fail('unexpected response');
      const t = c.sort ? sortedTable(r.snapshot) : r.snapshot;
      const o = { numeric: c.numeric, exact: c.exact, format: c.format, names: await names(c.numeric) };
      if (c.cmd === 'save') process.stdout.write(formatSave(t, o));
      else if (c.timeout) process.stdout.write(formatTimeouts(t));
      else if (c.daemon) process.stdout.write(formatDaemons(t));
      else {
        let only: ServiceSnapshot | undefined;
        if (c.service) {
          const key = await serviceKeyOf(c);
          if (typeof key === 'string') return fail(key);
          only = t.services.find((s) => s.id === serviceId(key));
          if (!only) return fail('No such service');
        }
        process.stdout.write(formatList(t, o, only));
      }
      return 0;
    }
    default: {
      const ops = await opsFor(c);
      if (typeof ops === 'string') return fail(ops);
      return applyOps(socket, ops);
    }
  }
}

// `keepvsadm -Ln | head`: the reader went away. ipvsadm dies of SIGPIPE there without a word (the
// shell reports 141); Node ignores SIGPIPE and raises EPIPE instead, so exit the same way, quietly.
for (const out of [process.stdout, process.stderr]) {
  out.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(141);
    throw e;
  });
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`keepvsadm: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 2;
  },
);
