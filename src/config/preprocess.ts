/**
 * Preprocessor (KA-man5 "ADVANCED CONFIGURATION", lib/parser.c): comments, include* with globs
 * and brace expansion, `$NAME=` parameters (multi-line too) and their expansion, predefined
 * `${_...}` parameters, `@id` / `@^id` conditional lines, `~SEQ` / `~SEQx` / `~LST` repetition.
 * Output: logical lines of tokens, each tagged with the file and line it came from.
 */
import { posix as path } from 'node:path';
import { seededRandom } from '../util/seeded-random.js';
import type { DiagnosticBag } from './diagnostics.js';
import type { ConfigFs } from './fs-port.js';
import { hasGlobChars } from './fs-port.js';
import { stripComment, type Token, tokenizeLine } from './lexer.js';
import type { SourceLoc } from './model.js';

export interface LogicalLine {
  readonly file: string;
  readonly line: number;
  readonly tokens: readonly Token[];
}

export interface PreprocessOptions {
  readonly fs: ConfigFs;
  readonly bag: DiagnosticBag;
  /** `-i/--config-id`; undefined = no `@id` line is selected, every `@^id` line is */
  readonly configId?: string;
  readonly env?: Readonly<Record<string, string>>;
  /** uniform [0,1) source for ${_RANDOM}; a fixed generator when absent (pure core) */
  readonly random?: () => number;
  /** cap on generated logical lines (default 1,000,000) */
  readonly maxLines?: number;
}

const MAX_INCLUDE_DEPTH = 32;
const MAX_EXPANSION_DEPTH = 32;
const DEFAULT_MAX_LINES = 1_000_000;
const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const DEF_RE = /^\s*\$([A-Za-z0-9_]+)=(.*)$/;
const INCLUDE_KEYWORDS = new Set(['include', 'includer', 'includem', 'includew', 'includeb', 'includea']);

interface IncludeChecks {
  readable: boolean;
  match: boolean;
  wildcard: boolean;
  brace: boolean;
}

/** Index of the first non-whitespace character, or -1 for a blank line. */
function firstNonSpace(s: string): number {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c !== 32 && c !== 9 && c !== 13 && c !== 10 && c !== 11 && c !== 12) return i;
  }
  return -1;
}

/** Upper bound on brace-expansion results for one include pattern. */
export const MAX_BRACE_RESULTS = 4096;

/** Csh-style brace expansion: `a{b,c}d` -> [abd, acd]; nested braces supported; capped at `limit` results. */
export function braceExpand(pattern: string, limit = MAX_BRACE_RESULTS): string[] {
  const out: string[] = [];
  braceExpandInto(pattern, out, limit);
  return out;
}

function braceExpandInto(pattern: string, out: string[], limit: number): void {
  if (out.length >= limit) return;
  const expanded = braceExpandOnce(pattern);
  if (expanded.length === 1 && expanded[0] === pattern) {
    out.push(pattern);
    return;
  }
  for (const p of expanded) braceExpandInto(p, out, limit);
}

/** Expands the first top-level brace group only. */
function braceExpandOnce(pattern: string): string[] {
  let depth = 0;
  let open = -1;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '{') {
      if (depth === 0) open = i;
      depth++;
    } else if (c === '}' && depth > 0) {
      depth--;
      if (depth === 0) {
        const body = pattern.slice(open + 1, i);
        const alternatives = splitTopLevel(body, ',');
        if (alternatives.length < 2) continue;
        const head = pattern.slice(0, open);
        const tail = pattern.slice(i + 1);
        return alternatives.map((alt) => head + alt + tail);
      }
    }
  }
  return [pattern];
}

/** Splits on `sep` outside braces and parentheses. */
function splitTopLevel(s: string, sep: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const c of s) {
    if (c === '{' || c === '(') depth++;
    else if ((c === '}' || c === ')') && depth > 0) depth--;
    if (c === sep && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out;
}

export class Preprocessor {
  readonly lines: LogicalLine[] = [];
  readonly files: string[] = [];
  private readonly params = new Map<string, string>();
  private readonly stack: string[] = [];
  private readonly random: () => number;
  private generated = 0;
  private tooLargeReported = false;
  private readonly maxLines: number;

  constructor(private readonly opts: PreprocessOptions) {
    this.random = opts.random ?? seededRandom(0);
    this.maxLines = opts.maxLines ?? DEFAULT_MAX_LINES;
  }

  /** Reads and preprocesses a file (path absolute). */
  processFile(file: string, from?: SourceLoc, strict?: IncludeChecks): void {
    const text = this.opts.fs.readFile(file);
    if (text instanceof Error) {
      const loc = from ?? { file, line: 0, col: 0 };
      if (!from) this.opts.bag.report('KV001', loc, `cannot read configuration file '${file}': ${text.message}`);
      else if (strict?.readable) this.opts.bag.report('KV002', loc, `included file '${file}' cannot be read`);
      else this.opts.bag.report('KV003', loc, `included file '${file}' cannot be read; skipped`);
      return;
    }
    this.processText(text, file, from);
  }

  processText(text: string, file: string, from?: SourceLoc): void {
    if (this.stack.includes(file)) {
      this.opts.bag.report(
        'KV004',
        from ?? { file, line: 0, col: 0 },
        `include loop: '${file}' is already being read (${[...this.stack, file].join(' -> ')})`,
      );
      return;
    }
    if (this.stack.length >= MAX_INCLUDE_DEPTH) {
      this.opts.bag.report(
        'KV005',
        from ?? { file, line: 0, col: 0 },
        `includes nested more than ${MAX_INCLUDE_DEPTH} deep`,
      );
      return;
    }
    this.stack.push(file);
    this.files.push(file);
    const checks: IncludeChecks = { readable: false, match: false, wildcard: false, brace: false };
    // A UTF-8 byte-order mark (files saved by some Windows editors) is not part of the first keyword.
    const raw = (text.charCodeAt(0) === 0xfeff ? text.slice(1) : text).split('\n');
    for (let i = 0; i < raw.length; i++) {
      const lineNo = i + 1;
      const physical = stripComment(raw[i]);
      const start = firstNonSpace(physical);
      if (start < 0) continue;
      const loc: SourceLoc = { file, line: lineNo, col: start + 1 };
      const lead = physical.charCodeAt(start);

      // include lines are recognised before conditionals and parameters (KA-man5).
      const first = lead === 105 /* i */ ? (/^\s*(\S+)/.exec(physical)?.[1] ?? '') : '';
      if (INCLUDE_KEYWORDS.has(first)) {
        this.handleInclude(first, physical, loc, checks);
        continue;
      }
      if (first === 'include_check') {
        this.handleIncludeCheck(physical, loc, checks);
        continue;
      }

      let body = physical;
      const cond = lead === 64 /* @ */ ? /^(\s*)@(\^?)(\S*)(.*)$/.exec(body) : null;
      if (cond) {
        const [, lead, negate, id, rest] = cond;
        if (id === '') this.opts.bag.report('KV031', loc, "'@' without a config id; line ignored");
        const matches = id !== '' && id === this.opts.configId;
        if (id === '' || (negate ? matches : !matches)) continue;
        body = lead + ' '.repeat(id.length + 1 + negate.length) + rest;
      }

      const def = body.includes('$') ? DEF_RE.exec(body) : null;
      if (def) {
        i = this.handleDefinition(def[1], def[2], raw, i, loc);
        continue;
      }
      this.emit(body, loc, 0);
    }
    this.stack.pop();
  }

  private handleIncludeCheck(line: string, loc: SourceLoc, checks: IncludeChecks): void {
    const words = line.trim().split(/\s+/).slice(1);
    if (words.length === 0) {
      checks.readable = checks.match = checks.wildcard = checks.brace = true;
      return;
    }
    for (const w of words) {
      const on = !w.startsWith('-');
      const name = w.replace(/^[+-]/, '');
      if (name === 'readable') checks.readable = on;
      else if (name === 'match') checks.match = on;
      else if (name === 'wildcard_match') checks.wildcard = on;
      else if (name === 'brace_match') checks.brace = on;
      else
        this.opts.bag.report(
          'KV203',
          loc,
          `include_check: unknown check '${w}' (readable, match, wildcard_match, brace_match)`,
        );
    }
  }

  private handleInclude(keyword: string, line: string, loc: SourceLoc, defaults: IncludeChecks): void {
    // Braces belong to the pattern here (csh-style expansion), so take raw words, not tokens.
    const words = line.trim().split(/\s+/).slice(1);
    if (words.length === 0) {
      this.opts.bag.report('KV113', loc, `'${keyword}' needs a file name or pattern`);
      return;
    }
    if (words.length > 1)
      this.opts.bag.report('KV114', loc, `'${keyword}': only one pattern is taken; extra words ignored`);
    const toks = [{ text: words[0].replace(/^(["'])(.*)\1$/, '$2') }];
    const flag = keyword.slice('include'.length);
    const checks: IncludeChecks = {
      readable: defaults.readable || flag === 'r' || flag === 'a',
      match: defaults.match || flag === 'm' || flag === 'a',
      wildcard: defaults.wildcard || flag === 'w' || flag === 'a',
      brace: defaults.brace || flag === 'b' || flag === 'a',
    };
    const pattern = toks[0].text;
    const dir = path.dirname(this.stack[this.stack.length - 1]);
    const alternatives = braceExpand(pattern);
    if (alternatives.length >= MAX_BRACE_RESULTS) {
      this.opts.bag.report(
        'KV021',
        loc,
        `${keyword}: brace expansion of '${pattern}' gives more than ${MAX_BRACE_RESULTS} patterns; rest ignored`,
      );
    }
    const seen = new Set<string>();
    let total = 0;
    for (const alt of alternatives) {
      const abs = path.resolve(dir, alt);
      let matches: readonly string[];
      if (hasGlobChars(alt)) {
        matches = this.opts.fs.glob(abs);
        if (matches.length === 0 && checks.wildcard)
          this.opts.bag.report('KV002', loc, `${keyword}: wildcard '${alt}' matched no file`);
      } else {
        matches = this.opts.fs.stat(abs) === 'file' ? [abs] : [];
        if (matches.length === 0 && checks.readable)
          this.opts.bag.report('KV002', loc, `${keyword}: file '${abs}' does not exist or cannot be read`);
      }
      if (matches.length === 0 && checks.brace && alternatives.length > 1)
        this.opts.bag.report('KV002', loc, `${keyword}: brace alternative '${alt}' matched no file`);
      for (const m of matches) {
        if (seen.has(m)) continue;
        seen.add(m);
        total++;
        this.processFile(m, loc, checks);
      }
    }
    if (total === 0) {
      if (checks.match) this.opts.bag.report('KV002', loc, `${keyword}: '${pattern}' matched no file`);
      else this.opts.bag.report('KV003', loc, `include '${pattern}' matched no file`);
    }
  }

  /** `$NAME=value` (a trailing `\` continues the definition on the next lines). Returns the last line index used. */
  private handleDefinition(name: string, value: string, raw: string[], i: number, loc: SourceLoc): number {
    const bodyLines: string[] = [];
    let v = value.trimEnd();
    let last = i;
    if (v.endsWith('\\')) {
      v = v.slice(0, -1).trim();
      if (v) bodyLines.push(v);
      let closed = false;
      while (last + 1 < raw.length) {
        last++;
        let cont = stripComment(raw[last]).trimEnd();
        const more = cont.endsWith('\\');
        if (more) cont = cont.slice(0, -1);
        bodyLines.push(cont);
        if (!more) {
          closed = true;
          break;
        }
      }
      if (!closed)
        this.opts.bag.report('KV011', loc, `multi-line definition of '$${name}' runs to the end of the file`);
    } else bodyLines.push(v.trim());

    if (!NAME_RE.test(name)) {
      this.opts.bag.report('KV010', loc, `bad parameter name '${name}': must not start with a digit`);
      return last;
    }
    if (name.startsWith('_')) {
      this.opts.bag.report('KV010', loc, `parameter names starting with '_' are reserved ('${name}')`);
      return last;
    }
    this.params.set(name, bodyLines.join('\n'));
    return last;
  }

  /** Expands parameters in a line, then ~SEQ/~LST, then tokenizes the resulting lines. */
  private emit(body: string, loc: SourceLoc, depth: number): void {
    if (depth > MAX_EXPANSION_DEPTH) {
      this.opts.bag.report('KV012', loc, 'expansion nested too deeply; line dropped');
      return;
    }
    const at = firstNonSpace(body);
    if (at >= 0 && body.charCodeAt(at) === 126 /* ~ */ && /^~(SEQx?|LST)\(/.test(body.slice(at))) {
      this.expandRepeat(body.slice(at), loc, depth);
      return;
    }
    const expanded = this.substitute(body, loc, 0);
    if (expanded === undefined) return;
    if (expanded.includes('\n')) {
      for (const piece of expanded.split('\n')) {
        if (piece.trim() === '') continue;
        const def = DEF_RE.exec(piece);
        if (def && NAME_RE.test(def[1]) && !def[1].startsWith('_')) this.params.set(def[1], def[2].trim());
        else this.emit(stripComment(piece), loc, depth + 1);
      }
      return;
    }
    if (expanded !== body && /^\s*~(SEQx?|LST)\(/.test(expanded)) {
      this.emit(expanded, loc, depth + 1);
      return;
    }
    const shift = expanded === body ? 0 : -1;
    const tokens = tokenizeLine(expanded, { bag: this.opts.bag, file: loc.file, line: loc.line });
    if (tokens.length === 0) return;
    this.generated++;
    if (this.generated > this.maxLines) {
      if (!this.tooLargeReported)
        this.opts.bag.report('KV021', loc, `configuration expands to more than ${this.maxLines} lines; rest dropped`);
      this.tooLargeReported = true;
      return;
    }
    // After a substitution columns no longer match the file: point at the line start instead.
    this.lines.push({
      file: loc.file,
      line: loc.line,
      tokens: shift === 0 ? tokens : tokens.map((t) => t.at(loc.col)),
    });
  }

  /** Replaces `${NAME}`, `$NAME` (followed by whitespace or end) and predefined `${_...}`; recursive. */
  private substitute(text: string, loc: SourceLoc, depth: number): string | undefined {
    if (!text.includes('$')) return text;
    if (depth > MAX_EXPANSION_DEPTH) {
      this.opts.bag.report('KV012', loc, 'parameter expansion nested too deeply (recursive definition?); line dropped');
      return undefined;
    }
    let changed = false;
    const out = text.replace(
      /\$\{([^}]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)(?=\s|$)/g,
      (whole, braced: string | undefined, bare: string | undefined) => {
        const value = braced !== undefined ? this.lookup(braced.trim(), loc) : this.lookup(bare ?? '', loc);
        if (value === undefined) return whole;
        changed = true;
        return value;
      },
    );
    return changed ? this.substitute(out, loc, depth + 1) : out;
  }

  private lookup(expr: string, loc: SourceLoc): string | undefined {
    const [name, ...args] = expr.split(/\s+/);
    switch (name) {
      case '_PWD':
        return path.dirname(loc.file);
      case '_INSTANCE':
        return this.opts.configId ?? '';
      case '_HASH':
        return '#';
      case '_BANG':
        return '!';
      case '_ENV':
        if (args.length !== 1) {
          this.opts.bag.report('KV013', loc, '$' + '{_ENV} takes exactly one variable name');
          return '';
        }
        return this.opts.env?.[args[0]] ?? '';
      case '_RANDOM': {
        const min = args.length > 0 ? Number(args[0]) : 0;
        const max = args.length > 1 ? Number(args[1]) : 32767;
        if (!Number.isInteger(min) || !Number.isInteger(max) || max < min || args.length > 2) {
          this.opts.bag.report('KV013', loc, '$' + '{_RANDOM [MIN [MAX]]} takes integers with MIN <= MAX');
          return '0';
        }
        return String(min + Math.floor(this.random() * (max - min + 1)));
      }
      default:
        if (args.length > 0) return undefined;
        return this.params.get(name);
    }
  }

  /** `~SEQ(var, start, step, end)`, `~SEQx(...)`, `~LST(var, v...)` / `~LST({a,b}, {1,2}, ...)`. */
  private expandRepeat(line: string, loc: SourceLoc, depth: number): void {
    const m = /^~(SEQx?|LST)\(/.exec(line);
    if (!m) return;
    let level = 0;
    let close = -1;
    for (let i = m[0].length - 1; i < line.length; i++) {
      if (line[i] === '(' || line[i] === '{') level++;
      else if (line[i] === ')' || line[i] === '}') {
        level--;
        if (level === 0) {
          close = i;
          break;
        }
      }
    }
    if (close < 0) {
      this.opts.bag.report('KV020', loc, `~${m[1]}: missing ')'`);
      return;
    }
    const argText = this.substitute(line.slice(m[0].length, close), loc, 0) ?? '';
    const rest = line.slice(close + 1);
    const args = splitTopLevel(argText, ',').map((a) => a.trim());
    const names: string[] = [];
    const rows: string[][] = [];
    if (m[1] === 'LST') {
      if (args.length < 2) {
        this.opts.bag.report('KV020', loc, '~LST needs a variable and at least one value');
        return;
      }
      const unbrace = (s: string) => (s.startsWith('{') && s.endsWith('}') ? s.slice(1, -1) : s);
      names.push(...splitTopLevel(unbrace(args[0]), ',').map((s) => s.trim()));
      for (const v of args.slice(1)) {
        const row = splitTopLevel(unbrace(v), ',').map((s) => s.trim());
        if (row.length !== names.length) {
          this.opts.bag.report('KV020', loc, `~LST: value '${v}' does not have ${names.length} elements`);
          return;
        }
        rows.push(row);
      }
    } else {
      const nums = args.slice(1).map(Number);
      if (args.length < 2 || args.length > 4 || nums.some((x) => !Number.isInteger(x))) {
        this.opts.bag.report('KV020', loc, `~${m[1]}(var, [start, [step,]] end) needs integer bounds`);
        return;
      }
      let start = 1;
      let step: number;
      let end: number;
      if (nums.length === 1) [end] = nums;
      else if (nums.length === 2) [start, end] = nums;
      else [start, step, end] = nums as [number, number, number];
      step ??= end >= start ? 1 : -1;
      if (step === 0 || (step > 0 && end < start) || (step < 0 && end > start)) {
        this.opts.bag.report('KV020', loc, `~${m[1]}: step ${step} never reaches ${end} from ${start}`);
        return;
      }
      const count = Math.floor((end - start) / step) + 1;
      if (count > this.maxLines) {
        this.opts.bag.report('KV021', loc, `~${m[1]} would generate ${count} lines (limit ${this.maxLines})`);
        return;
      }
      names.push(args[0]);
      for (let v = start; step > 0 ? v <= end : v >= end; v += step)
        rows.push([m[1] === 'SEQx' ? v.toString(16) : String(v)]);
    }
    for (const n of names) {
      if (!NAME_RE.test(n)) {
        this.opts.bag.report('KV020', loc, `~${m[1]}: bad variable name '${n}'`);
        return;
      }
    }
    const saved = names.map((n) => this.params.get(n));
    for (const row of rows) {
      if (this.tooLargeReported) break;
      for (const [k, n] of names.entries()) this.params.set(n, row[k]);
      this.emit(rest, loc, depth + 1);
    }
    for (const [k, n] of names.entries()) {
      const old = saved[k];
      if (old === undefined) this.params.delete(n);
      else this.params.set(n, old);
    }
  }
}
