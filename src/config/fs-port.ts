/** The file-system port the config loader reads through (real one: src/os/config-fs.ts). Synchronous by design. */
export interface ConfigFs {
  /** File contents, or an Error describing why it cannot be read. */
  readFile(path: string): string | Error;
  /** Absolute paths matching a glob pattern (already absolute), sorted; [] when none. */
  glob(pattern: string): readonly string[];
  /** 'file' / 'dir' / undefined when absent. */
  stat(path: string): 'file' | 'dir' | undefined;
}

/** In-memory ConfigFs for tests and for parseConfigText (absolute paths as keys). */
export class MemoryConfigFs implements ConfigFs {
  private readonly files: Map<string, string>;

  constructor(files: Record<string, string> = {}) {
    this.files = new Map(Object.entries(files));
  }
  readFile(path: string): string | Error {
    const text = this.files.get(path);
    return text === undefined ? new Error(`ENOENT: no such file '${path}'`) : text;
  }
  glob(pattern: string): readonly string[] {
    const re = globToRegExp(pattern);
    return [...this.files.keys()].filter((p) => re.test(p)).sort();
  }
  stat(path: string): 'file' | 'dir' | undefined {
    if (this.files.has(path)) return 'file';
    const prefix = path.endsWith('/') ? path : `${path}/`;
    for (const k of this.files.keys()) if (k.startsWith(prefix)) return 'dir';
    return undefined;
  }
}

/** Minimal glob (`*`, `?`, `[...]`) to RegExp; `*` does not cross `/`. */
export function globToRegExp(pattern: string): RegExp {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) re += '\\[';
      else {
        let body = pattern.slice(i + 1, end);
        if (body.startsWith('!')) body = `^${body.slice(1)}`;
        re += `[${body.replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`${re}$`);
}

export const hasGlobChars = (s: string): boolean => /[*?[]/.test(s);

/** A ConfigFs with some files replaced or added (the config API's dry runs of the managed file). */
export class OverlayConfigFs implements ConfigFs {
  constructor(
    private readonly base: ConfigFs,
    private readonly overlay: ReadonlyMap<string, string>,
  ) {}
  readFile(path: string): string | Error {
    return this.overlay.get(path) ?? this.base.readFile(path);
  }
  glob(pattern: string): readonly string[] {
    const re = globToRegExp(pattern);
    const extra = [...this.overlay.keys()].filter((p) => re.test(p));
    return [...new Set([...this.base.glob(pattern), ...extra])].sort();
  }
  stat(path: string): 'file' | 'dir' | undefined {
    return this.overlay.has(path) ? 'file' : this.base.stat(path);
  }
}
