/** The file-system side of script security (src/config/script-security.ts): stat, realpath, PATH, users. */
import { accessSync, constants, lstatSync, readFileSync, realpathSync, type Stats, statSync } from 'node:fs';
import { join } from 'node:path';
import type { FileInfo, ScriptSecurityPort } from '../config/script-security.js';

const STRERROR: Record<string, string> = {
  ENOENT: 'No such file or directory',
  EACCES: 'Permission denied',
  ELOOP: 'Too many levels of symbolic links',
  ENOTDIR: 'Not a directory',
};

const info = (st: Stats): FileInfo => ({
  kind: st.isSymbolicLink() ? 'link' : st.isDirectory() ? 'dir' : st.isFile() ? 'file' : 'other',
  uid: st.uid,
  gid: st.gid,
  mode: st.mode & 0o7777,
});

function table(file: string): string[][] {
  try {
    return readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l && !l.startsWith('#'))
      .map((l) => l.split(':'));
  } catch {
    return [];
  }
}

export function systemScriptSecurityPort(env: NodeJS.ProcessEnv = process.env): ScriptSecurityPort {
  return {
    uid: process.getuid?.() ?? 0,
    gid: process.getgid?.() ?? 0,
    lstat: (p) => {
      try {
        return info(lstatSync(p));
      } catch {
        return undefined;
      }
    },
    stat: (p) => {
      try {
        return info(statSync(p));
      } catch {
        return undefined;
      }
    },
    realpath: (p) => {
      try {
        return { path: realpathSync(p) };
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
        return { error: STRERROR[code] ?? code };
      }
    },
    which: (name) => {
      for (const dir of (env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':').filter(Boolean)) {
        const p = join(dir, name);
        try {
          if (statSync(p).isFile()) {
            accessSync(p, constants.X_OK);
            return p;
          }
        } catch {
          // not here
        }
      }
      return undefined;
    },
    // names or numeric ids, as getpwnam/getgrnam users write them in script_user
    user: (name) => {
      const row = table('/etc/passwd').find((r) => r[0] === name || (/^\d+$/.test(name) && r[2] === name));
      if (row) return { uid: Number(row[2]), gid: Number(row[3]) };
      return /^\d+$/.test(name) ? { uid: Number(name), gid: Number(name) } : undefined;
    },
    group: (name) => {
      const row = table('/etc/group').find((r) => r[0] === name || (/^\d+$/.test(name) && r[2] === name));
      if (row) return Number(row[2]);
      return /^\d+$/.test(name) ? Number(name) : undefined;
    },
  };
}
