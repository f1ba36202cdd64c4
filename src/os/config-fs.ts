/** Real ConfigFs for the config loader: node:fs plus fast-glob (include patterns). */
import { readFileSync, statSync } from 'node:fs';
import fg from 'fast-glob';
import type { ConfigFs } from '../config/fs-port.js';

export class NodeConfigFs implements ConfigFs {
  readFile(path: string): string | Error {
    try {
      return readFileSync(path, 'utf8');
    } catch (e) {
      return e instanceof Error ? e : new Error(String(e));
    }
  }
  glob(pattern: string): readonly string[] {
    try {
      // keepalived uses glob(3): no brace expansion here (done by the preprocessor), sorted results.
      return fg.sync(pattern, { absolute: true, onlyFiles: true, braceExpansion: false, dot: false }).sort();
    } catch {
      return [];
    }
  }
  stat(path: string): 'file' | 'dir' | undefined {
    try {
      const s = statSync(path);
      return s.isDirectory() ? 'dir' : 'file';
    } catch {
      return undefined;
    }
  }
}
