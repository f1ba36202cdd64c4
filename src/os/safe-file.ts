/**
 * Files written as root, created safely (the class of keepalived's CVE-2018-19044): never through a
 * symlink (O_NOFOLLOW), always a new inode (O_EXCL after unlinking the old name, which removes a
 * planted symlink itself rather than its target), in a directory no other user can write to.
 */
import {
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** Why `dir` is not safe to create files in (undefined: it is). Creates it 0700 when missing. */
export function unsafeDirReason(dir: string, create = true): string | undefined {
  if (create) mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  if (st.isSymbolicLink()) return `${dir} is a symbolic link`;
  if (!st.isDirectory()) return `${dir} is not a directory`;
  const uid = process.getuid?.() ?? 0;
  if (st.uid !== uid && st.uid !== 0) return `${dir} belongs to uid ${st.uid}`;
  // a sticky world-writable directory (/tmp) still lets others plant names: not private
  if (st.mode & 0o022) return `${dir} is writable by other users (mode ${(st.mode & 0o7777).toString(8)})`;
  return undefined;
}

function createExclusive(path: string, data: string, mode: number): void {
  const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
  try {
    writeSync(fd, data);
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes `data` to `path` as a fresh file with `mode`: in a private directory (unless `privateDir`
 * is false: pid files in /run), through a temporary
 * name created exclusively and renamed over the old name (rename replaces a symlink, never follows it).
 * Throws an Error whose message says what was unsafe.
 */
export function writeFileSafely(path: string, data: string, mode = 0o600, privateDir = true): void {
  const dir = dirname(path);
  if (privateDir) {
    const why = unsafeDirReason(dir);
    if (why) throw new Error(`refusing to write ${path}: ${why}`);
  } else mkdirSync(dir, { recursive: true, mode: 0o755 });
  const tmp = join(dir, `.${basename(path)}.${process.pid}.tmp`);
  try {
    unlinkSync(tmp);
  } catch {
    // no leftover
  }
  createExclusive(tmp, data, mode);
  try {
    renameSync(tmp, path);
  } catch (e) {
    unlinkSync(tmp);
    throw e;
  }
}

/**
 * Reads a file this process wrote with writeFileSafely: undefined when it is not there; throws when
 * it is a symlink, not a regular file, not ours, writable by others, or in a directory that is not
 * private (state read back as root must not be planted by another user).
 */
export function readFileSafely(path: string): string | undefined {
  const dir = dirname(path);
  let why: string | undefined;
  try {
    why = unsafeDirReason(dir, false);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  if (why) throw new Error(`refusing to read ${path}: ${why}`);
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`refusing to read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  try {
    const st = fstatSync(fd);
    const uid = process.getuid?.() ?? 0;
    if (!st.isFile()) throw new Error(`refusing to read ${path}: not a regular file`);
    if (st.uid !== uid) throw new Error(`refusing to read ${path}: it belongs to uid ${st.uid}`);
    if (st.mode & 0o022) throw new Error(`refusing to read ${path}: writable by other users`);
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}
