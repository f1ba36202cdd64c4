/**
 * Table-driven block grammar (keepalived's install_keyword model): each block has a keyword
 * table, one entry per keyword (synonyms are two entries). runBlock walks a block's nodes,
 * reports unknown/deprecated/unsupported keywords and brace misuse, and calls the handlers.
 */
import ipaddr from 'ipaddr.js';
import { type DiagnosticBag, type DiagnosticCode, didYouMean } from '../diagnostics.js';
import type { Family, ScriptSpec, SourceLoc } from '../model.js';
import type { Node, Word } from '../tree.js';

/** Per-load context shared by every grammar. */
export interface Ctx {
  readonly bag: DiagnosticBag;
  report(code: DiagnosticCode, loc: SourceLoc, message: string): void;
  /** a problem keepalived repairs and runs with (the item dropped or defaulted): a warning */
  repair(code: DiagnosticCode, loc: SourceLoc, message: string): void;
}

export const makeCtx = (bag: DiagnosticBag): Ctx => ({
  bag,
  report: (code, loc, message) => bag.report(code, loc, message),
  repair: (code, loc, message) => bag.report(code, loc, message, 'warning'),
});

/** The same context with every problem reported as repaired (the caller drops the bad item). */
export const repairing = (ctx: Ctx): Ctx => ({ ...ctx, report: ctx.repair });

export type Handler<D> = (node: Node, draft: D, ctx: Ctx) => void;

export interface KeywordEntry<D> {
  /** value: `kw args`; block: `kw args { ... }`; either: both accepted */
  readonly kind: 'value' | 'block' | 'either';
  readonly handle: Handler<D>;
  /** deprecated synonym: the keyword to use instead */
  readonly deprecatedFor?: string;
  /** keepalived accepts the old spelling without a word: reported as a note only */
  readonly silentInKeepalived?: boolean;
  /** recognised keepalived keyword that keepvs does not act on */
  readonly unsupported?: string;
  /** parsed into the model (shown by --dump-conf) but not acted on at run time yet: reported */
  readonly notActedOn?: string;
  /** repeated use is normal (lists, sub-blocks) */
  readonly repeatable?: boolean;
}

export type KeywordTable<D> = ReadonlyMap<string, KeywordEntry<D>>;

export const value = <D>(handle: Handler<D>, extra: Partial<KeywordEntry<D>> = {}): KeywordEntry<D> => ({
  kind: 'value',
  handle,
  ...extra,
});
export const block = <D>(handle: Handler<D>, extra: Partial<KeywordEntry<D>> = {}): KeywordEntry<D> => ({
  kind: 'block',
  handle,
  repeatable: true,
  ...extra,
});
/** A deprecated synonym registered as its own entry; `silent`: keepalived says nothing about it. */
export const deprecated = <D>(entry: KeywordEntry<D>, replacement: string, silent = false): KeywordEntry<D> => ({
  ...entry,
  deprecatedFor: replacement,
  ...(silent ? { silentInKeepalived: true } : {}),
});
/** A keepalived keyword keepvs recognises but does not act on (reported, never silently ignored). */
export const unsupported = <D>(why: string, kind: 'value' | 'block' | 'either' = 'either'): KeywordEntry<D> => ({
  kind,
  handle: () => {},
  unsupported: why,
  repeatable: true,
});

/** Every keyword of every table (tables register themselves): the tree builder's error recovery. */
const KNOWN_KEYWORDS = new Set<string>();
export const isKnownKeyword = (kw: string): boolean => KNOWN_KEYWORDS.has(kw);

/** A keyword parsed into the model that the daemon does not act on yet: reported by -t and at start. */
export const parsedOnly = <D>(entry: KeywordEntry<D>, why: string): KeywordEntry<D> => ({ ...entry, notActedOn: why });

export function table<D>(...groups: (readonly [string, KeywordEntry<D>])[][]): KeywordTable<D> {
  const t = new Map(groups.flat());
  for (const k of t.keys()) KNOWN_KEYWORDS.add(k);
  return t;
}

export const unsupportedAll = <D>(
  names: readonly string[],
  why: string,
  kind: 'value' | 'block' | 'either' = 'either',
): (readonly [string, KeywordEntry<D>])[] => names.map((n) => [n, unsupported<D>(why, kind)] as const);

/** Old keyword spellings whose replacement is too far away for an edit-distance suggestion. */
const RENAMED_KEYWORDS: Readonly<Record<string, string>> = {
  nb_get_retry: 'retry',
  lb_algo: 'lvs_sched',
  lb_kind: 'lvs_method',
  mcast_src_ip: 'unicast_src_ip',
  vrrp_track_file: 'track_file',
};

export const TOP_LEVEL = 'the top level';
const TOP_LEVEL_BLOCKS = new Set([
  'global_defs',
  'vrrp_instance',
  'vrrp_sync_group',
  'vrrp_script',
  'virtual_server',
  'virtual_server_group',
  'track_file',
  'vrrp_track_process',
  'static_ipaddress',
  'static_routes',
  'static_rules',
  'bgp_announce',
]);

/** Runs a block's statements through its keyword table. */
export function runBlock<D>(nodes: readonly Node[], tbl: KeywordTable<D>, draft: D, ctx: Ctx, blockName: string): void {
  let seen: Set<string> | undefined;
  for (const node of nodes) {
    const kw = node.keyword.text;
    const entry = tbl.get(kw);
    if (!entry) {
      const renamed = RENAMED_KEYWORDS[kw];
      let hint = renamed && tbl.has(renamed) ? `; did you mean '${renamed}'?` : didYouMean(kw, tbl.keys());
      if (!hint && blockName !== TOP_LEVEL && TOP_LEVEL_BLOCKS.has(kw))
        hint = `; '${kw}' is a top-level block: is a '}' missing before it?`;
      ctx.report('KV110', node.loc, `unknown keyword '${kw}' in ${blockName}${hint}`);
      continue;
    }
    if (entry.unsupported) {
      ctx.report(
        'KV112',
        node.loc,
        `'${kw}' in ${blockName} is not supported by keepvs (${entry.unsupported}); ignored`,
      );
      continue;
    }
    if (entry.notActedOn)
      ctx.report(
        'KV112',
        node.loc,
        `'${kw}' in ${blockName} is parsed but not acted on by keepvs (${entry.notActedOn})`,
      );
    if (entry.deprecatedFor)
      ctx.bag.report(
        'KV111',
        node.loc,
        `'${kw}' is deprecated; use '${entry.deprecatedFor}' (accepted)`,
        entry.silentInKeepalived ? 'note' : undefined,
      );
    if (entry.kind === 'block' && !node.children) {
      ctx.report('KV103', node.loc, `'${kw}' needs a { block }`);
      continue;
    }
    if (entry.kind === 'value' && node.children) {
      ctx.report('KV104', node.loc, `'${kw}' takes no block; the { } after it is ignored`);
    }
    const canonical = entry.deprecatedFor ?? kw;
    if (!entry.repeatable && entry.kind === 'value') {
      seen ??= new Set<string>();
      if (seen.has(canonical))
        ctx.report('KV115', node.loc, `'${kw}' set more than once in ${blockName}; last value wins`);
      seen.add(canonical);
    }
    entry.handle(node, draft, ctx);
  }
}

// ---------------------------------------------------------------------------------------------
// Argument helpers: each reports its own diagnostic and returns undefined on failure.

export function arg(node: Node, index: number, ctx: Ctx, what: string): Word | undefined {
  const w = node.args[index];
  if (!w) ctx.report('KV113', node.loc, `'${node.keyword.text}' needs ${what}`);
  return w;
}

export function noExtra(node: Node, max: number, ctx: Ctx): void {
  if (node.args.length > max) {
    const extra = node.args.slice(max).map((w) => w.text);
    ctx.report('KV114', node.args[max].loc, `'${node.keyword.text}': extra arguments ignored: ${extra.join(' ')}`);
  }
}

export function parseIntWord(w: Word, min: number, max: number, ctx: Ctx, what: string): number | undefined {
  if (!/^[+-]?\d+$/.test(w.text)) {
    ctx.report('KV200', w.loc, `${what}: '${w.text}' is not an integer`);
    return undefined;
  }
  const n = Number(w.text);
  if (n < min || n > max) {
    ctx.report('KV201', w.loc, `${what} ${w.text} is out of range ${min}..${max}`);
    return undefined;
  }
  return n;
}

/** keepalived TIMER: seconds with up to microsecond resolution. */
export function parseTimerWord(w: Word, min: number, max: number, ctx: Ctx, what: string): number | undefined {
  if (!/^\d+(\.\d*)?$|^\.\d+$/.test(w.text)) {
    ctx.report('KV200', w.loc, `${what}: '${w.text}' is not a number of seconds`);
    return undefined;
  }
  const n = Math.round(Number(w.text) * 1e6) / 1e6;
  if (n < min || n > max) {
    ctx.report('KV201', w.loc, `${what} ${w.text} is out of range ${min}..${max}`);
    return undefined;
  }
  return n;
}

export function intArg(node: Node, ctx: Ctx, min: number, max: number, index = 0): number | undefined {
  const w = arg(node, index, ctx, 'a number');
  if (!w) return undefined;
  if (index === 0) noExtra(node, 1, ctx);
  return parseIntWord(w, min, max, ctx, `'${node.keyword.text}'`);
}

export function timerArg(node: Node, ctx: Ctx, min = 0, max = 1e9): number | undefined {
  const w = arg(node, 0, ctx, 'a time in seconds');
  if (!w) return undefined;
  noExtra(node, 1, ctx);
  return parseTimerWord(w, min, max, ctx, `'${node.keyword.text}'`);
}

const TRUE_WORDS = new Set(['on', 'true', 'yes']);
const FALSE_WORDS = new Set(['off', 'false', 'no']);

/** `<BOOL>` argument; a bare keyword means true. */
export function boolArg(node: Node, ctx: Ctx): boolean | undefined {
  const w = node.args[0];
  if (!w) return true;
  noExtra(node, 1, ctx);
  const t = w.text.toLowerCase();
  if (TRUE_WORDS.has(t)) return true;
  if (FALSE_WORDS.has(t)) return false;
  ctx.report('KV202', w.loc, `'${node.keyword.text}': '${w.text}' is not a boolean (on|off|true|false|yes|no)`);
  return undefined;
}

export function choiceWord<T extends string>(w: Word, choices: readonly T[], ctx: Ctx, what: string): T | undefined {
  if ((choices as readonly string[]).includes(w.text)) return w.text as T;
  ctx.report('KV203', w.loc, `${what}: '${w.text}' is not one of ${choices.join('|')}${didYouMean(w.text, choices)}`);
  return undefined;
}

export function stringArg(node: Node, ctx: Ctx, what = 'a value'): string | undefined {
  const w = arg(node, 0, ctx, what);
  if (!w) return undefined;
  noExtra(node, 1, ctx);
  return w.text;
}

export interface IpValue {
  readonly address: string;
  readonly family: Family;
}

/** Strict IPv4 dotted quad or IPv6; canonical text. */
export function parseIp(text: string): IpValue | undefined {
  if (ipaddr.IPv4.isValidFourPartDecimal(text)) return { address: ipaddr.IPv4.parse(text).toString(), family: 4 };
  if (text.includes(':') && ipaddr.IPv6.isValid(text)) {
    const a = ipaddr.IPv6.parse(text);
    if (a.zoneId) return undefined;
    return { address: a.toRFC5952String(), family: 6 };
  }
  return undefined;
}

export function ipWord(w: Word, ctx: Ctx, what: string): IpValue | undefined {
  const ip = parseIp(w.text);
  if (!ip) ctx.report('KV204', w.loc, `${what}: '${w.text}' is not an IPv4 or IPv6 address`);
  return ip;
}

export interface PrefixValue extends IpValue {
  readonly prefixLen: number;
  readonly hasPrefix: boolean;
}

/** `ADDR[/LEN]`; LEN 0..32 or 0..128. */
export function ipPrefixWord(w: Word, ctx: Ctx, what: string): PrefixValue | undefined {
  const slash = w.text.indexOf('/');
  const addrText = slash < 0 ? w.text : w.text.slice(0, slash);
  const ip = ipWord({ text: addrText, loc: w.loc }, ctx, what);
  if (!ip) return undefined;
  const max = ip.family === 4 ? 32 : 128;
  if (slash < 0) return { ...ip, prefixLen: max, hasPrefix: false };
  const lenText = w.text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(lenText) || Number(lenText) > max) {
    ctx.report('KV205', w.loc, `${what}: bad prefix length '/${lenText}' (0..${max} for IPv${ip.family})`);
    return undefined;
  }
  return { ...ip, prefixLen: Number(lenText), hasPrefix: true };
}

export function portWord(w: Word, ctx: Ctx, what: string): number | undefined {
  if (!/^\d+$/.test(w.text) || Number(w.text) > 65535) {
    ctx.report('KV206', w.loc, `${what}: '${w.text}' is not a port number (0..65535)`);
    return undefined;
  }
  return Number(w.text);
}

/** Splits a command line as keepalived does: unquoted whitespace separates, quotes group. */
export function splitCommand(command: string): string[] {
  const argv: string[] = [];
  let cur = '';
  let have = false;
  let quote = '';
  for (let i = 0; i < command.length; i++) {
    const c = command[i];
    if (quote) {
      if (c === quote) quote = '';
      else cur += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      have = true;
    } else if (c === '\\' && i + 1 < command.length) {
      cur += command[++i];
      have = true;
    } else if (/\s/.test(c)) {
      if (have) argv.push(cur);
      cur = '';
      have = false;
    } else {
      cur += c;
      have = true;
    }
  }
  if (have) argv.push(cur);
  return argv;
}

/**
 * A script argument. `withUser`: notify-style `SCRIPT [user [group]]` where SCRIPT is one
 * (usually quoted) word; otherwise the whole rest of the line is the command.
 */
export function scriptArg(node: Node, ctx: Ctx, withUser: boolean, from = 0): ScriptSpec | undefined {
  const words = node.args.slice(from);
  if (words.length === 0) {
    ctx.report('KV113', node.loc, `'${node.keyword.text}' needs a script`);
    return undefined;
  }
  const command = withUser ? words[0].text : words.map((w) => w.text).join(' ');
  const argv = splitCommand(command);
  if (argv.length === 0) {
    ctx.report('KV113', node.loc, `'${node.keyword.text}' needs a script`);
    return undefined;
  }
  const spec: { -readonly [K in keyof ScriptSpec]: ScriptSpec[K] } = { command, argv, loc: words[0].loc };
  if (withUser && words.length > 1) {
    spec.user = words[1].text;
    if (words.length > 2) spec.group = words[2].text;
    if (words.length > 3) noExtra(node, from + 3, ctx);
  }
  return spec;
}

/** `weight N [reverse]` style suffix used by trackers. */
export function weightWords(
  words: readonly Word[],
  ctx: Ctx,
  min: number,
  max: number,
  what: string,
): { weight?: number; reverse: boolean } {
  const out: { weight?: number; reverse: boolean } = { reverse: false };
  for (let i = 0; i < words.length; i++) {
    const t = words[i].text;
    if (t === 'weight') {
      const w = words[i + 1];
      if (!w) ctx.report('KV113', words[i].loc, `${what}: 'weight' needs a number`);
      else out.weight = parseIntWord(w, min, max, ctx, `${what} weight`);
      i++;
    } else if (t === 'reverse') out.reverse = true;
    else if (t === 'noreverse') out.reverse = false;
    else ctx.report('KV114', words[i].loc, `${what}: unexpected '${t}' ignored (expected weight N [reverse])`);
  }
  return out;
}

/** Deep-freezes a plain object graph. */
export function deepFreeze<T>(o: T): T {
  if (o !== null && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    if (Array.isArray(o)) for (let i = 0; i < o.length; i++) deepFreeze(o[i]);
    else
      for (const k in o) {
        const v = o[k];
        if (v !== null && typeof v === 'object') deepFreeze(v);
      }
  }
  return o;
}

export type Mutable<T> = { -readonly [K in keyof T]: T[K] };
