/** Keyword tables and value parsers shared by the block grammars. */
import ipaddr from 'ipaddr.js';
import { type DiagnosticSink, didYouMean } from '../diagnostics.js';
import type { Node, Word } from '../lexer.js';
import type { Family, ScriptSpec, SourceLoc } from '../model.js';

export interface Ctx {
  readonly diag: DiagnosticSink;
  readonly scriptUser?: { user: string; group?: string };
}

export type Handler<T> = (node: Node, ctx: Ctx, target: T) => void;

export interface KeywordSpec<T> {
  readonly handle?: Handler<T>;
  /** the keyword opens a `{ ... }` block ('optional': it may also stand alone) */
  readonly block?: boolean | 'optional';
  /** recognised keepalived keyword that keepvs does not act on: reported, never silent */
  readonly unsupported?: string;
  /** deprecated spelling; the message names the replacement */
  readonly deprecated?: string;
}

export type KeywordTable<T> = Readonly<Record<string, KeywordSpec<T>>>;

/** Entries for keepalived keywords keepvs recognises but does not implement. */
export function unsupported<T>(why: string, ...names: string[]): Record<string, KeywordSpec<T>> {
  const out: Record<string, KeywordSpec<T>> = {};
  for (const n of names) out[n] = { unsupported: why };
  return out;
}

/** Runs each statement of a block through the block's keyword table. */
export function applyTable<T>(
  nodes: readonly Node[] | undefined,
  table: KeywordTable<T>,
  target: T,
  ctx: Ctx,
  where: string,
): void {
  for (const node of nodes ?? []) {
    const spec = Object.hasOwn(table, node.keyword) ? table[node.keyword] : undefined;
    if (!spec) {
      const hint = didYouMean(node.keyword, Object.keys(table));
      ctx.diag.report(
        'KV101',
        node.loc,
        `unknown keyword '${node.keyword}' in ${where}${hint ? ` (did you mean '${hint}'?)` : ''}`,
      );
      continue;
    }
    if (spec.unsupported) {
      ctx.diag.report('KV102', node.loc, `'${node.keyword}' is not supported by keepvs (${spec.unsupported}); ignored`);
      continue;
    }
    if (spec.deprecated)
      ctx.diag.report('KV103', node.loc, `'${node.keyword}' is deprecated; use '${spec.deprecated}'`);
    if (spec.block === true && !node.children) {
      ctx.diag.report('KV105', node.loc, `'${node.keyword}' needs a { ... } block`);
      continue;
    }
    if (!spec.block && node.children) {
      ctx.diag.report('KV106', node.loc, `'${node.keyword}' takes no { ... } block`);
      continue;
    }
    spec.handle?.(node, ctx, target);
  }
}

export function argAt(node: Node, i: number, ctx: Ctx, what: string): Word | undefined {
  const w = node.args[i];
  if (!w) ctx.diag.report('KV104', node.loc, `'${node.keyword}' needs ${what}`);
  return w;
}

/** Reports extra arguments beyond `max`. */
export function noExtra(node: Node, max: number, ctx: Ctx): void {
  if (node.args.length > max) {
    ctx.diag.report(
      'KV104',
      node.args[max].loc,
      `'${node.keyword}' takes at most ${max} argument(s); extra '${node.args[max].text}'`,
    );
  }
}

export function parseNumber(
  w: Word | undefined,
  ctx: Ctx,
  opts: { min: number; max: number; integer?: boolean; what: string },
): number | undefined {
  if (!w) return undefined;
  const n = Number(w.text);
  if (w.text.trim() === '' || !Number.isFinite(n) || (opts.integer && !Number.isInteger(n))) {
    ctx.diag.report('KV201', w.loc, `${opts.what}: '${w.text}' is not ${opts.integer ? 'an integer' : 'a number'}`);
    return undefined;
  }
  if (n < opts.min || n > opts.max) {
    ctx.diag.report('KV201', w.loc, `${opts.what} ${w.text} is out of range ${opts.min}..${opts.max}`);
    return undefined;
  }
  return n;
}

/** Integer keyword: `keyword N` */
export function intArg(node: Node, ctx: Ctx, min: number, max: number): number | undefined {
  noExtra(node, 1, ctx);
  return parseNumber(argAt(node, 0, ctx, 'a number'), ctx, { min, max, integer: true, what: node.keyword });
}

/** Timer keyword in seconds with a fractional part: `keyword 2.5` */
export function secondsArg(node: Node, ctx: Ctx, min = 0, max = 1e9): number | undefined {
  noExtra(node, 1, ctx);
  return parseNumber(argAt(node, 0, ctx, 'a time in seconds'), ctx, { min, max, what: node.keyword });
}

export function stringArg(node: Node, ctx: Ctx): string | undefined {
  noExtra(node, 1, ctx);
  return argAt(node, 0, ctx, 'a value')?.text;
}

const TRUE = new Set(['on', 'true', 'yes']);
const FALSE = new Set(['off', 'false', 'no']);

/** `keyword` alone means true; otherwise on|off|true|false|yes|no. */
export function boolArg(node: Node, ctx: Ctx): boolean {
  noExtra(node, 1, ctx);
  const w = node.args[0];
  if (!w) return true;
  const v = w.text.toLowerCase();
  if (TRUE.has(v)) return true;
  if (FALSE.has(v)) return false;
  ctx.diag.report('KV203', w.loc, `'${node.keyword}' takes on|off|true|false|yes|no, not '${w.text}'`);
  return true;
}

export function oneOf<T extends string>(
  w: Word | undefined,
  allowed: readonly T[],
  ctx: Ctx,
  what: string,
  fold = false,
): T | undefined {
  if (!w) return undefined;
  const v = fold ? w.text.toUpperCase() : w.text;
  const hit = allowed.find((a) => (fold ? a.toUpperCase() : a) === v);
  if (hit === undefined) {
    const hint = didYouMean(w.text, allowed);
    ctx.diag.report(
      'KV203',
      w.loc,
      `${what} '${w.text}' is not one of ${allowed.join(', ')}${hint ? ` (did you mean '${hint}'?)` : ''}`,
    );
  }
  return hit;
}

export interface ParsedAddress {
  address: string;
  family: Family;
  prefixLen?: number;
}

/** An IPv4/IPv6 address with an optional /prefix, canonicalised. */
export function parseAddress(
  w: Word | undefined,
  ctx: Ctx,
  opts: { prefix?: boolean; what: string },
): ParsedAddress | undefined {
  if (!w) return undefined;
  let text = w.text;
  let prefixLen: number | undefined;
  const slash = text.indexOf('/');
  if (slash >= 0) {
    if (!opts.prefix) {
      ctx.diag.report('KV202', w.loc, `${opts.what} '${w.text}' takes no prefix length`);
      return undefined;
    }
    const p = text.slice(slash + 1);
    text = text.slice(0, slash);
    prefixLen = /^\d+$/.test(p) ? Number(p) : Number.NaN;
  }
  if (text.startsWith('[') && text.endsWith(']')) text = text.slice(1, -1);
  if (!ipaddr.isValid(text) || (!ipaddr.IPv4.isValidFourPartDecimal(text) && ipaddr.parse(text).kind() === 'ipv4')) {
    ctx.diag.report('KV202', w.loc, `${opts.what} '${w.text}' is not a valid IP address`);
    return undefined;
  }
  const parsed = ipaddr.parse(text);
  const family: Family = parsed.kind() === 'ipv6' ? 6 : 4;
  const maxPrefix = family === 4 ? 32 : 128;
  if (prefixLen !== undefined && !(prefixLen >= 0 && prefixLen <= maxPrefix)) {
    ctx.diag.report('KV202', w.loc, `${opts.what} '${w.text}': prefix length must be 0..${maxPrefix}`);
    return undefined;
  }
  return { address: parsed.toString(), family, prefixLen };
}

export function parsePort(w: Word | undefined, ctx: Ctx, what = 'port'): number | undefined {
  return parseNumber(w, ctx, { min: 0, max: 65535, integer: true, what });
}

/**
 * A script command line. keepalived splits unquoted spaces into argv and keeps single-quoted
 * groups together; the whole command is usually one double-quoted word.
 */
export function scriptArg(node: Node, ctx: Ctx, firstArg = 0): ScriptSpec | undefined {
  const cmd = argAt(node, firstArg, ctx, 'a command');
  if (!cmd) return undefined;
  const user = node.args[firstArg + 1]?.text;
  const group = node.args[firstArg + 2]?.text;
  noExtra(node, firstArg + 3, ctx);
  return makeScript(cmd.text, cmd.loc, ctx, user, group);
}

export function makeScript(command: string, loc: SourceLoc, ctx: Ctx, user?: string, group?: string): ScriptSpec {
  const argv: string[] = [];
  const re = /'([^']*)'|"([^"]*)"|(\S+)/g;
  for (let m = re.exec(command); m; m = re.exec(command)) argv.push(m[1] ?? m[2] ?? m[3]);
  const u = user ?? ctx.scriptUser?.user;
  const g = user !== undefined ? group : ctx.scriptUser?.group;
  return { command, argv, ...(u !== undefined ? { user: u } : {}), ...(g !== undefined ? { group: g } : {}), loc };
}

/** `{ NAME [weight W [reverse|noreverse]] }` entries of track_* blocks. */
export function weightedTracks(
  node: Node,
  ctx: Ctx,
  limits: { min: number; max: number },
): { name: string; weight?: number; reverse: boolean; loc: SourceLoc }[] {
  const out: { name: string; weight?: number; reverse: boolean; loc: SourceLoc }[] = [];
  for (const c of node.children ?? []) {
    const words = [c.keyword, ...c.args.map((a) => a.text)];
    let weight: number | undefined;
    let reverse = false;
    for (let i = 1; i < words.length; i++) {
      if (words[i] === 'weight') {
        weight = parseNumber(c.args[i], ctx, { ...limits, integer: true, what: 'weight' });
        i++;
      } else if (words[i] === 'reverse') reverse = true;
      else if (words[i] === 'noreverse') reverse = false;
      else ctx.diag.report('KV104', c.args[i - 1].loc, `unexpected '${words[i]}' in ${node.keyword}`);
    }
    out.push({ name: c.keyword, ...(weight !== undefined ? { weight } : {}), reverse, loc: c.loc });
  }
  return out;
}

/** Words of a block's statements, flattened (e.g. notification_email { a@b c@d }). */
export function blockWords(node: Node): Word[] {
  const out: Word[] = [];
  for (const c of node.children ?? []) out.push({ text: c.keyword, loc: c.loc }, ...c.args);
  return out;
}

/** keepalived's `weight W [reverse]` argument pair on a tracker. */
export function weightWithReverse(
  node: Node,
  ctx: Ctx,
  min: number,
  max: number,
): { weight?: number; reverse: boolean } {
  const weight = parseNumber(argAt(node, 0, ctx, 'a weight'), ctx, { min, max, integer: true, what: 'weight' });
  const flag = node.args[1]?.text;
  if (flag !== undefined && flag !== 'reverse' && flag !== 'noreverse') {
    ctx.diag.report('KV203', node.args[1].loc, `'weight' takes an optional 'reverse', not '${flag}'`);
  }
  noExtra(node, 2, ctx);
  return { ...(weight !== undefined ? { weight } : {}), reverse: flag === 'reverse' };
}
