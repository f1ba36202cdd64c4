/**
 * keepvs as the lab tests run it: inside one namespace of ../shared/lab/lab.sh, with pid files and a
 * control socket of its own (so runs never meet each other or a system keepalived), its output kept
 * for failure messages and written next to them when it exits.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const LAB = join(process.cwd(), '..', 'shared', 'lab', 'lab.sh');
export const KEEPVS = join(process.cwd(), 'bin', 'keepvs.js');
export const KEEPVSADM = join(process.cwd(), 'bin', 'keepvsadm.js');

export interface LabKeepvsOptions {
  /** the namespace, e.g. `${prefix}-lb1` */
  ns: string;
  /** the test's scratch folder: pid files, the default config and socket, the log */
  dir: string;
  /** tells this run's files apart from another keepvs's (or an earlier run's) in `dir` */
  name?: string;
  /** default: `dir`/keepalived.conf */
  conf?: string;
  /** default: `dir`/`name`.sock */
  sock?: string;
  /** more flags: --dataplane, --api, -D ... */
  args?: readonly string[];
  /** its own process group, so a group signal takes the supervisor and every child at once */
  detached?: boolean;
  /** its environment (default: this process's) */
  env?: NodeJS.ProcessEnv;
}

export interface LabKeepvs {
  readonly proc: ChildProcess;
  readonly sock: string;
  /** the exit code (null when killed by a signal) */
  readonly exited: Promise<number | null>;
  /** stdout and stderr so far */
  log(): string;
  /** keepvsadm against this keepvs's socket; throws on a non-zero exit */
  adm(...args: string[]): string;
}

export function startLabKeepvs(o: LabKeepvsOptions): LabKeepvs {
  const name = o.name ?? 'keepvs';
  const sock = o.sock ?? join(o.dir, `${name}.sock`);
  const argv = [
    ...['netns', 'exec', o.ns, process.execPath, KEEPVS, '-n', '-l'],
    ...['-f', o.conf ?? join(o.dir, 'keepalived.conf'), '--socket', sock],
    ...['-p', join(o.dir, `${name}.pid`), '-c', join(o.dir, `${name}-checkers.pid`)],
    ...['-r', join(o.dir, `${name}-vrrp.pid`), ...(o.args ?? [])],
  ];
  const proc = spawn('ip', argv, { stdio: ['ignore', 'pipe', 'pipe'], detached: o.detached ?? false, env: o.env });
  let out = '';
  proc.stdout?.on('data', (d) => (out += d));
  proc.stderr?.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) =>
    proc.once('exit', (code) => {
      try {
        writeFileSync(join(o.dir, `${name}.log`), out);
      } catch {} // the test may have removed its folder already
      resolve(code);
    }),
  );
  return { proc, sock, exited, log: () => out, adm: (...args) => keepvsadm(sock, ...args) };
}

/** keepvsadm against the keepvs listening on `sock`; throws (with its stderr) on a non-zero exit. */
export function keepvsadm(sock: string, ...args: string[]): string {
  return execFileSync(process.execPath, [KEEPVSADM, ...args], {
    env: { ...process.env, KEEPVS_SOCKET: sock },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}
