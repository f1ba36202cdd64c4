/**
 * Pid files as keepalived uses them (pidfile.c, keepalived_running()): a second daemon with the same
 * pid file finds the first one alive and does not start ("daemon is already running"). keepvs also
 * checks that the live process is a keepvs, so a stale file whose pid was reused by another program
 * is taken over.
 */
import { readFileSync, unlinkSync } from 'node:fs';
import { writeFileSafely } from './safe-file.js';

/** The pid recorded in `path` if that process is alive and is a keepvs (not this process). */
export function runningKeepvs(path: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  const pid = Number(text.trim());
  if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid) return undefined;
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return undefined;
  }
  return isKeepvs(pid) ? pid : undefined;
}

/** /proc/PID/cmdline names keepvs (bin/keepvs.js, its workers under a keepvs checkout, or the title). */
function isKeepvs(pid: number): boolean {
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    const comm = readFileSync(`/proc/${pid}/comm`, 'utf8');
    return /keepvs/.test(cmdline) || /^keepvs/.test(comm);
  } catch {
    return false;
  }
}

/** Writes our pid (a fresh file renamed over the old name, never through a symlink). */
export function writePidFile(path: string, pid: number): void {
  writeFileSafely(path, `${pid}\n`, 0o644, false);
}

export function removePidFile(path: string, ifPid?: number): void {
  try {
    if (ifPid !== undefined && Number(readFileSync(path, 'utf8').trim()) !== ifPid) return;
    unlinkSync(path);
  } catch {
    // already gone
  }
}
