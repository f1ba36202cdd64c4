import type { FileInfo, ScriptSecurityPort } from '../../src/config/script-security.js';

/** A fake file system: path -> file info; everything is root's unless given. */
export function fakePort(
  files: Record<string, Partial<FileInfo>>,
  users: Record<string, { uid: number; gid: number }> = {},
): ScriptSecurityPort {
  const get = (p: string): FileInfo | undefined => {
    if (p === '/') return { kind: 'dir', uid: 0, gid: 0, mode: 0o755 };
    const f = files[p];
    return f ? { kind: 'file', uid: 0, gid: 0, mode: 0o755, ...f } : undefined;
  };
  return {
    uid: 0,
    gid: 0,
    lstat: get,
    stat: get,
    realpath: (p) => (get(p) ? { path: p } : { error: 'No such file or directory' }),
    which: (n) => (get(`/usr/bin/${n}`) ? `/usr/bin/${n}` : undefined),
    user: (n) => (n === 'root' ? { uid: 0, gid: 0 } : users[n]),
    group: (n) => (n === 'root' ? 0 : undefined),
  };
}
