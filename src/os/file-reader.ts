/** FileReader port on node:fs (FILE_CHECK). */
import { readFile } from 'node:fs/promises';
import type { FileReader } from '../check/types.js';

export class NodeFileReader implements FileReader {
  async readText(path: string): Promise<string | undefined> {
    try {
      return await readFile(path, 'utf8');
    } catch {
      return undefined;
    }
  }
}
