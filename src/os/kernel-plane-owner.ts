/**
 * One keepvs drives the kernel plane of a network namespace. The tables are named (`ip keepvs`,
 * `ip6 keepvs`, the netdev DR tables) and each keepvs rebuilds them atomically at start, so two
 * daemons with different pid files in one namespace would each replace the other's services on every
 * tick. keepalived meets the same limit through IPVS (one table per namespace) and its pid files;
 * keepvs records the owner per namespace, keyed by the inode of /proc/self/ns/net, in a pid file that
 * every keepvs finds whatever its own pid file is.
 */
import {
  closeSync,
  constants,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { runningKeepvs } from './pid-file.js';
import { unsafeDirReason } from './safe-file.js';

export const KERNEL_PLANE_OWNER_DIR = '/run/keepvs';

export type KernelPlaneClaim =
  | { readonly kind: 'claimed'; readonly file: string }
  | { readonly kind: 'owned-by'; readonly pid: number; readonly file: string }
  | { readonly kind: 'unrecorded'; readonly file: string; readonly reason: string };

/** The owner file of the namespace this process runs in. */
export function kernelPlaneOwnerFile(dir = KERNEL_PLANE_OWNER_DIR): string {
  return join(dir, `kernel-plane-${statSync('/proc/self/ns/net').ino}.pid`);
}

/**
 * Records this process as the namespace's kernel-plane owner, unless a live keepvs already is.
 * The name is taken with link(2) from a private temporary file: atomic, so two keepvs starting at
 * once cannot both win, and never through a symlink planted at the name.
 */
export function claimKernelPlane(dir = KERNEL_PLANE_OWNER_DIR, pid = process.pid): KernelPlaneClaim {
  let file = join(dir, 'kernel-plane.pid');
  try {
    file = kernelPlaneOwnerFile(dir);
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    const why = unsafeDirReason(dir, false);
    if (why) return { kind: 'unrecorded', file, reason: why };
    for (let attempt = 0; attempt < 2; attempt++) {
      const tmp = `${file}.${pid}.tmp`;
      try {
        unlinkSync(tmp);
      } catch {
        // no leftover
      }
      const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
      try {
        writeSync(fd, `${pid}\n`);
      } finally {
        closeSync(fd);
      }
      try {
        linkSync(tmp, file);
        return { kind: 'claimed', file };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      } finally {
        unlinkSync(tmp);
      }
      const owner = runningKeepvs(file);
      if (owner !== undefined && inThisNetns(owner)) return { kind: 'owned-by', pid: owner, file };
      // stale: its keepvs is gone (SIGKILL, crash), or the pid is another namespace's keepvs now;
      // take the name over
      unlinkSync(file);
    }
    return { kind: 'unrecorded', file, reason: 'another keepvs took the name while this one started' };
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    return { kind: 'unrecorded', file, reason: err.code ?? err.message };
  }
}

/**
 * Whether `pid` runs in this network namespace. A crashed owner leaves its file; once its namespace
 * is gone the inode can name a new namespace, and with pid_max 32768 the pid can be a keepvs of
 * another namespace by then (the DR pair lab's lb2 found its lb1 named so and would not start). A
 * namespace that cannot be read (not root) counts as this one: the check stays on the safe side.
 */
function inThisNetns(pid: number): boolean {
  try {
    return statSync(`/proc/${pid}/ns/net`).ino === statSync('/proc/self/ns/net').ino;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ENOENT';
  }
}

/** Gives the namespace up at a graceful stop (only if the file still names `pid`). */
export function releaseKernelPlane(file: string, pid = process.pid): void {
  try {
    if (Number(readFileSync(file, 'utf8').trim()) === pid) unlinkSync(file);
  } catch {
    // already gone
  }
}
