/**
 * Files keepvs writes that other processes read (the managed configuration file): written to a
 * fresh temp file in the same directory (exclusive, no-follow), fsynced, renamed over the target,
 * then the directory is fsynced, so a reader sees the old file or the new one, never a part.
 * Safe as root: a symlink or non-regular file at the target, or a directory others may write
 * into without the sticky bit, is refused rather than followed.
 */
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  fsyncSync,
  lstatSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';

export class UnsafeFileError extends Error {}

function checkDir(dir: string): void {
  const st = statSync(dir);
  if (!st.isDirectory()) throw new UnsafeFileError(`${dir} is not a directory`);
  const uid = process.getuid?.() ?? -1;
  const othersWrite = (st.mode & 0o002) !== 0 || ((st.mode & 0o020) !== 0 && st.uid !== uid);
  if (othersWrite && (st.mode & 0o1000) === 0)
    throw new UnsafeFileError(`${dir} is writable by other users; refusing to write configuration there`);
}

/** The file's text, undefined when absent; a symlink or non-regular file is refused. */
export function readRegularFile(path: string): string | undefined {
  let st: ReturnType<typeof lstatSync>;
  try {
    st = lstatSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  if (!st.isFile()) throw new UnsafeFileError(`${path} is not a regular file (symlink or other); refusing to use it`);
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}

export function writeFileAtomic(path: string, text: string, mode = 0o644): void {
  const dir = dirname(path);
  checkDir(dir);
  try {
    if (!lstatSync(path).isFile()) throw new UnsafeFileError(`${path} is not a regular file; refusing to replace it`);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
  try {
    try {
      const buf = Buffer.from(text, 'utf8');
      let off = 0;
      while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      // already renamed or gone
    }
    throw e;
  }
  const dfd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    fsyncSync(dfd);
  } finally {
    closeSync(dfd);
  }
}
