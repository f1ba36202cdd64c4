import { dirname, resolve } from 'node:path';
import { parseConfigText } from '../../src/config/index.js';
import type { LoadResult } from '../../src/config/model.js';
import type { ConfigFs } from '../../src/config/preprocess.js';

/** An in-memory file system for include tests. */
export function memFs(files: Record<string, string>): ConfigFs {
  return {
    readFile: (p) => (p in files ? { text: files[p] } : { error: 'ENOENT' }),
    glob: (pattern) => {
      const re = new RegExp(
        `^${pattern
          .replace(/[.+^$()|\\]/g, '\\$&')
          .replace(/\*/g, '[^/]*')
          .replace(/\?/g, '.')
          .replace(/\{([^}]*)\}/g, (_m, alts: string) => `(${alts.split(',').join('|')})`)}$`,
      );
      return Object.keys(files)
        .filter((f) => re.test(f))
        .sort();
    },
    dirname,
    resolve: (base, p) => resolve(base, p),
  };
}

export function parse(text: string, extra: Record<string, string> = {}, configId = 'lb1'): LoadResult {
  return parseConfigText(text, '/etc/keepalived/keepalived.conf', { fs: memFs(extra), configId, random: () => 0.5 });
}

export const codes = (r: LoadResult): string[] => r.diagnostics.map((d) => d.code);
