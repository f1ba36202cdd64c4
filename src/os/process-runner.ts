import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { ProcessRunner, RunOptions, RunResult } from '../util/ports.js';

const KILL_GRACE_MS = 1000;

/** Looks a user or group up in /etc/passwd or /etc/group; numeric ids pass through. */
export function resolveId(name: string, database: '/etc/passwd' | '/etc/group'): number | undefined {
  if (/^\d+$/.test(name)) return Number(name);
  let text: string;
  try {
    text = readFileSync(database, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f[0] === name && f[2] !== undefined) return Number(f[2]);
  }
  return undefined;
}

/** Primary group of a user, from /etc/passwd. */
function primaryGid(user: string): number | undefined {
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const f = line.split(':');
      if (f[0] === user || f[2] === user) return Number(f[3]);
    }
  } catch {
    // fall through
  }
  return undefined;
}

/**
 * Runs programs by argv with child_process.spawn (no shell, so no injection through arguments),
 * optionally as another user, killing the whole process group on timeout.
 */
export class ChildProcessRunner implements ProcessRunner {
  run(argv: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    return new Promise((resolve) => {
      if (argv.length === 0) {
        resolve({ exitCode: null, signal: null, timedOut: false, stdout: '', spawnError: 'empty command' });
        return;
      }
      let uid: number | undefined;
      let gid: number | undefined;
      if (options.user !== undefined) {
        uid = resolveId(options.user, '/etc/passwd');
        if (uid === undefined) {
          resolve({
            exitCode: null,
            signal: null,
            timedOut: false,
            stdout: '',
            spawnError: `unknown user ${options.user}`,
          });
          return;
        }
        gid = options.group !== undefined ? resolveId(options.group, '/etc/group') : primaryGid(options.user);
        if (gid === undefined) {
          resolve({
            exitCode: null,
            signal: null,
            timedOut: false,
            stdout: '',
            spawnError: `unknown group ${options.group ?? `of ${options.user}`}`,
          });
          return;
        }
      }
      const capture = options.captureBytes ?? 0;
      let stdout = '';
      let timedOut = false;
      let settled = false;
      const child = spawn(argv[0], argv.slice(1), {
        stdio: ['ignore', capture > 0 ? 'pipe' : 'ignore', 'ignore'],
        env: options.env ? { ...process.env, ...options.env } : process.env,
        uid,
        gid,
        detached: true, // own process group, so a timeout kills grandchildren too
        signal: options.signal,
      });
      const killGroup = (sig: NodeJS.Signals) => {
        if (child.pid === undefined) return;
        try {
          process.kill(-child.pid, sig);
        } catch {
          // already gone
        }
      };
      let timer: NodeJS.Timeout | undefined;
      let killTimer: NodeJS.Timeout | undefined;
      if (options.timeoutMs !== undefined) {
        timer = setTimeout(() => {
          timedOut = true;
          killGroup('SIGTERM');
          killTimer = setTimeout(() => killGroup('SIGKILL'), KILL_GRACE_MS);
        }, options.timeoutMs);
      }
      child.stdout?.on('data', (chunk: Buffer) => {
        if (stdout.length < capture)
          stdout += chunk.toString('utf8', 0, Math.min(chunk.length, capture - stdout.length));
      });
      const finish = (r: RunResult) => {
        if (settled) return;
        settled = true;
        if (timer) clearTimeout(timer);
        if (killTimer) clearTimeout(killTimer);
        resolve(r);
      };
      child.on('error', (e: NodeJS.ErrnoException) =>
        finish({ exitCode: null, signal: null, timedOut, stdout, spawnError: e.code ?? e.message }),
      );
      child.on('close', (code, signal) => finish({ exitCode: code, signal, timedOut, stdout }));
    });
  }
}
