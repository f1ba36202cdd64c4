import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import fg from 'fast-glob';
import type { ConfigFs } from '../config/preprocess.js';

/** The config loader's view of the real file system. */
export const nodeConfigFs: ConfigFs = {
  readFile(path) {
    try {
      return { text: readFileSync(path, 'utf8') };
    } catch (e) {
      return { error: (e as NodeJS.ErrnoException).code ?? String(e) };
    }
  },
  glob(pattern) {
    // keepalived expands csh-style braces and shell wildcards (glob(3) with GLOB_BRACE)
    return fg.sync(pattern, { onlyFiles: true, absolute: true, dot: false }).sort();
  },
  dirname,
  resolve(base, path) {
    return isAbsolute(path) ? path : resolve(base, path);
  },
};
