/**
 * keepalived.conf preprocessing (keepalived.conf(5) "ADVANCED CONFIGURATION"): comments, include,
 * `$NAME=value` parameters (also multi-line), `@id` / `@^id` conditional lines, `~SEQ` / `~LST`
 * line generators. Produces logical lines that still carry their file and line.
 */
import type { DiagnosticSink } from './diagnostics.js';
import type { SourceLoc } from './model.js';

/** File-system port for the config loader (real one: src/os/config-fs.ts). */
export interface ConfigFs {
  /** file text, or an error message */
  readFile(path: string): { text: string } | { error: string };
  /** absolute paths matching a glob pattern (brace expansion included), sorted */
  glob(pattern: string): string[];
  dirname(path: string): string;
  resolve(base: string, path: string): string;
}

export interface PreprocessOptions {
  configId: string;
  env: Readonly<Record<string, string>>;
  /** deterministic `${_RANDOM}` in tests */
  random?: () => number;
}

export interface LogicalLine {
  readonly text: string;
  readonly loc: SourceLoc;
}

const MAX_INCLUDE_DEPTH = 32;
const MAX_EXPANSION_DEPTH = 32;
/** A guard against configs that would generate absurd numbers of lines. */
const MAX_LINES = 5_000_000;

/** Removes a `#` or `!` comment that is not inside quotes. */
export function stripComment(line: string): string {
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '#' || c === '!') return line.slice(0, i);
  }
  return line;
}

interface Definition {
  lines: string[];
}

export class Preprocessor {
  private readonly defs = new Map<string, Definition>();
  private readonly out: LogicalLine[] = [];
  readonly files: string[] = [];
  private readonly stack: string[] = [];

  constructor(
    private readonly fs: ConfigFs,
    private readonly diag: DiagnosticSink,
    private readonly opts: PreprocessOptions,
  ) {}

  run(path: string, text?: string): LogicalLine[] {
    this.processFile(path, text, { file: path, line: 0, col: 0 });
    return this.out;
  }

  private processFile(path: string, givenText: string | undefined, from: SourceLoc): void {
    if (this.stack.includes(path)) {
      this.diag.report('KV003', from, `include loop: ${[...this.stack, path].join(' -> ')}`);
      return;
    }
    if (this.stack.length >= MAX_INCLUDE_DEPTH) {
      this.diag.report('KV003', from, `includes nested deeper than ${MAX_INCLUDE_DEPTH}`);
      return;
    }
    let text = givenText;
    if (text === undefined) {
      const r = this.fs.readFile(path);
      if ('error' in r) {
        this.diag.report(
          'KV001',
          from.line ? from : { file: path, line: 0, col: 0 },
          `cannot read ${path}: ${r.error}`,
        );
        return;
      }
      text = r.text;
    }
    this.files.push(path);
    this.stack.push(path);
    const lines = text.split(/\r?\n/);
    let pendingDef: { name: string; def: Definition } | undefined;
    for (let i = 0; i < lines.length; i++) {
      const loc: SourceLoc = { file: path, line: i + 1, col: 1 };
      let raw = stripComment(lines[i]).trimEnd();
      if (pendingDef) {
        const cont = raw.endsWith('\\');
        if (cont) raw = raw.slice(0, -1);
        if (raw.trim() !== '') pendingDef.def.lines.push(raw.trim());
        if (!cont) pendingDef = undefined;
        continue;
      }
      const trimmed = raw.trim();
      if (trimmed === '') continue;
      const col = raw.length - raw.trimStart().length + 1;
      loc.col satisfies number;
      const at: SourceLoc = { file: path, line: i + 1, col };
      // include is recognised before parameters and conditionals (keepalived.conf(5))
      const inc = /^(include[rmwba]?)\s+(.+)$/.exec(trimmed);
      if (inc) {
        this.include(inc[1], unquote(inc[2].trim()), path, at);
        continue;
      }
      const def = /^\$([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(trimmed);
      if (def) {
        const value = def[2];
        if (value.endsWith('\\')) {
          const d: Definition = { lines: [] };
          const first = value.slice(0, -1).trim();
          if (first) d.lines.push(first);
          this.defs.set(def[1], d);
          pendingDef = { name: def[1], def: d };
        } else this.defs.set(def[1], { lines: [value.trim()] });
        continue;
      }
      this.emit(trimmed, at, 0);
      if (this.out.length > MAX_LINES) {
        this.diag.report('KV006', at, `configuration expands to more than ${MAX_LINES} lines`);
        break;
      }
    }
    this.stack.pop();
  }

  private include(kind: string, pattern: string, fromFile: string, at: SourceLoc): void {
    const abs = this.fs.resolve(this.fs.dirname(fromFile), pattern);
    const matches = /[*?[{]/.test(pattern) ? this.fs.glob(abs) : [abs];
    if (matches.length === 0) {
      // plain `include` never fails in keepalived; the strict variants do
      const strict = kind !== 'include';
      this.diag.report('KV002', at, `${kind} ${pattern}: no file matches`, strict ? 'error' : 'warning');
      return;
    }
    for (const m of matches) this.processFile(m, undefined, at);
  }

  /** Conditionals, ~SEQ/~LST and parameter substitution, then the line goes out. */
  private emit(text: string, at: SourceLoc, depth: number): void {
    if (depth > MAX_EXPANSION_DEPTH) {
      this.diag.report('KV006', at, 'parameter expansion nested too deeply (recursive definition?)');
      return;
    }
    const cond = /^@(\^?)([A-Za-z0-9_.-]+)\s*(.*)$/.exec(text);
    if (cond) {
      const matches = cond[2] === this.opts.configId;
      if (matches === (cond[1] === '^')) return;
      text = cond[3];
      if (text === '') return;
    }
    const gen = /^~(SEQx?|LST)\(/.exec(text);
    if (gen) {
      this.generate(gen[1], text, at, depth);
      return;
    }
    // a line that is just a multi-line definition expands to its lines
    const whole = /^\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?$/.exec(text);
    if (whole) {
      const d = this.defs.get(whole[1]);
      if (d && d.lines.length !== 1) {
        for (const l of d.lines) this.emit(l, at, depth + 1);
        return;
      }
    }
    const expanded = this.substitute(text, at, depth);
    if (expanded !== text && /[$~@]/.test(expanded) && expanded.includes('\n')) {
      for (const l of expanded.split('\n')) if (l.trim()) this.emit(l.trim(), at, depth + 1);
      return;
    }
    for (const l of expanded.split('\n')) if (l.trim()) this.out.push({ text: l.trim(), loc: at });
  }

  private substitute(text: string, at: SourceLoc, depth: number): string {
    let result = text;
    for (let round = 0; round < MAX_EXPANSION_DEPTH; round++) {
      const next = result.replace(
        /\$\{([A-Za-z_][A-Za-z0-9_]*)((?:\s[^}]*)?)\}|\$([A-Za-z_][A-Za-z0-9_]*)(?=\s|$)/g,
        (m, braced: string | undefined, extra: string | undefined, bare: string | undefined) => {
          const name = braced ?? bare ?? '';
          const v = this.lookup(name, (extra ?? '').trim(), at);
          return v === undefined ? m : v;
        },
      );
      if (next === result) return result;
      result = next;
    }
    this.diag.report('KV006', at, 'parameter expansion does not terminate (recursive definition?)');
    void depth;
    return result;
  }

  private lookup(name: string, extra: string, at: SourceLoc): string | undefined {
    switch (name) {
      case '_PWD':
        return this.fs.dirname(at.file);
      case '_INSTANCE':
        return this.opts.configId;
      case '_HASH':
        return '#';
      case '_BANG':
        return '!';
      case '_ENV':
        return this.opts.env[extra] ?? '';
      case '_RANDOM': {
        const [lo, hi] = extra ? extra.split(/\s+/).map(Number) : [0, 32767];
        const min = Number.isFinite(lo) ? lo : 0;
        const max = Number.isFinite(hi) ? hi : 32767;
        const r = (this.opts.random ?? Math.random)();
        return String(min + Math.floor(r * (max - min + 1)));
      }
    }
    const d = this.defs.get(name);
    return d ? d.lines.join('\n') : undefined;
  }

  /** `~SEQ(var, [start, [step,]] end) rest` and `~LST(var, v1, v2, ...) rest` */
  private generate(kind: string, text: string, at: SourceLoc, depth: number): void {
    const close = text.indexOf(')');
    if (close < 0) {
      this.diag.report('KV006', at, `~${kind}( without closing parenthesis`);
      return;
    }
    const inner = this.substitute(text.slice(kind.length + 2, close), at, depth);
    const rest = text.slice(close + 1).trim();
    const parts = splitArgs(inner);
    const name = parts.shift()?.trim() ?? '';
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
      this.diag.report('KV006', at, `~${kind}: bad variable name '${name}'`);
      return;
    }
    let values: string[];
    if (kind === 'LST') {
      values = parts.map((p) => p.trim().replace(/^\{(.*)\}$/, '$1'));
    } else {
      const nums = parts.map((p) => Number(p.trim()));
      if (nums.length < 1 || nums.length > 3 || nums.some((n) => !Number.isInteger(n))) {
        this.diag.report('KV006', at, `~${kind}: expected integers (start, step, end), got '${inner}'`);
        return;
      }
      let start = 1;
      let end: number;
      let step: number;
      if (nums.length === 1) [end] = nums;
      else if (nums.length === 2) [start, end] = nums;
      else [start, , end] = nums;
      step = nums.length === 3 ? nums[1] : end >= start ? 1 : -1;
      if (step === 0 || Math.sign(step) !== Math.sign(end - start || step)) {
        this.diag.report('KV006', at, `~${kind}: step ${step} never reaches ${end} from ${start}`);
        return;
      }
      values = [];
      for (let v = start; step > 0 ? v <= end : v >= end; v += step) {
        values.push(kind === 'SEQx' ? v.toString(16) : String(v));
        if (values.length > MAX_LINES) break;
      }
    }
    const saved = this.defs.get(name);
    for (const v of values) {
      this.defs.set(name, { lines: [v] });
      this.emit(rest, at, depth + 1);
      if (this.out.length > MAX_LINES) break;
    }
    if (saved) this.defs.set(name, saved);
    else this.defs.delete(name);
  }
}

function splitArgs(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const c of s) {
    if (c === '{') depth++;
    if (c === '}') depth--;
    if (c === ',' && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out;
}

function unquote(s: string): string {
  const m = /^(["'])(.*)\1$/.exec(s);
  return m ? m[2] : s;
}
