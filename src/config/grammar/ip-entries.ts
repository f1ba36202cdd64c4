/**
 * Entries of `virtual_ipaddress`, `virtual_ipaddress_excluded`, `static_ipaddress` (ip addr syntax),
 * `virtual_routes`/`static_routes` (ip route syntax) and `virtual_rules`/`static_rules` (ip rule syntax).
 */
import type { Family, IpAddressEntry, RouteEntry, RuleEntry } from '../model.js';
import type { Node } from '../tree.js';
import { type Ctx, ipPrefixWord, ipWord, type Mutable, parseIp } from './engine.js';

const SCOPES = ['global', 'site', 'link', 'host', 'nowhere'] as const;
const ADDR_FLAGS = new Set(['home', '-nodad', 'nodad', 'mngtmpaddr', 'noprefixroute', 'autojoin']);
const ADDR_UNSUPPORTED = new Set(['use_vmac', 'track_group']);

/** One `ADDR[/LEN] [brd X] [dev IF] [scope S] [label L] [peer IP] [no_track] [flags]` line. */
export function parseAddressEntry(node: Node, ctx: Ctx, where: string): IpAddressEntry | undefined {
  const words = [node.keyword, ...node.args];
  const p = ipPrefixWord(words[0], ctx, `${where} address`);
  if (!p) return undefined;
  const e: Mutable<IpAddressEntry> = {
    address: p.address,
    family: p.family,
    prefixLen: p.prefixLen,
    noTrack: false,
    flags: [],
    loc: node.loc,
  };
  const flags: string[] = [];
  for (let i = 1; i < words.length; i++) {
    const w = words[i];
    const next = words[i + 1];
    const needNext = (): boolean => {
      if (!next) ctx.report('KV113', w.loc, `${where}: '${w.text}' needs a value`);
      return next !== undefined;
    };
    switch (w.text) {
      case 'dev':
        if (needNext()) e.dev = next.text;
        i++;
        break;
      case 'brd':
      case 'broadcast':
        if (needNext()) {
          if (next.text === '+' || next.text === '-') e.brd = next.text;
          else {
            const b = ipWord(next, ctx, `${where} brd`);
            if (b) e.brd = b.address;
          }
        }
        i++;
        break;
      case 'scope':
        if (needNext()) {
          if ((SCOPES as readonly string[]).includes(next.text)) e.scope = next.text as IpAddressEntry['scope'];
          else ctx.report('KV203', next.loc, `${where}: scope '${next.text}' is not one of ${SCOPES.join('|')}`);
        }
        i++;
        break;
      case 'label':
        if (needNext()) e.label = next.text;
        i++;
        break;
      case 'peer':
        if (needNext()) {
          const pp = ipPrefixWord(next, ctx, `${where} peer`);
          if (pp) e.peer = pp.address;
        }
        i++;
        break;
      case 'no_track':
        e.noTrack = true;
        break;
      case 'preferred_lft':
        if (needNext()) flags.push('preferred_lft', next.text);
        i++;
        break;
      default:
        if (ADDR_FLAGS.has(w.text)) flags.push(w.text);
        else if (ADDR_UNSUPPORTED.has(w.text)) {
          ctx.report('KV112', w.loc, `${where}: '${w.text}' is not supported by keepvs; ignored`);
          if (w.text === 'track_group') i++;
        } else ctx.report('KV114', w.loc, `${where}: unexpected '${w.text}' ignored`);
    }
  }
  e.flags = flags;
  if (e.peer && parseIp(e.peer)?.family !== e.family)
    ctx.report('KV312', node.loc, `${where}: peer and address are different IP families`);
  return e;
}

const familyOfWords = (words: readonly string[]): Family | undefined => {
  if (words.includes('inet6') || words.includes('-6')) return 6;
  for (const w of words) {
    const ip = parseIp(w.split('/')[0]);
    if (ip) return ip.family;
  }
  return undefined;
};

/** One route line: kept as `ip route` arguments plus the basic fields. */
export function parseRouteEntry(node: Node, ctx: Ctx, where: string): RouteEntry | undefined {
  const args = [node.keyword.text, ...node.args.map((a) => a.text)];
  const e: Mutable<RouteEntry> = { args, family: familyOfWords(args) ?? 4, loc: node.loc };
  const kinds = new Set(['blackhole', 'unreachable', 'prohibit', 'throw', 'local', 'broadcast', 'unicast']);
  let i = 0;
  if (args[0] === 'src') i = 2;
  if (kinds.has(args[i])) i++;
  if (args[i] !== undefined && !['via', 'dev', 'table', 'src', 'metric'].includes(args[i])) {
    const dest = args[i] === 'default' ? 'default' : args[i];
    if (dest !== 'default' && !ipPrefixWord({ text: dest, loc: node.loc }, ctx, `${where} destination`))
      return undefined;
    e.destination = dest;
  }
  for (let k = 0; k < args.length - 1; k++) {
    if (args[k] === 'via') {
      const next = args[k + 1] === 'inet' || args[k + 1] === 'inet6' ? args[k + 2] : args[k + 1];
      if (next !== undefined && !parseIp(next))
        ctx.report('KV204', node.loc, `${where}: gateway '${next}' is not an IP address`);
      else e.via = next;
    } else if (args[k] === 'dev' || args[k] === 'oif') e.dev = args[k + 1];
    else if (args[k] === 'table') e.table = args[k + 1];
  }
  if (e.destination === undefined)
    ctx.report('KV113', node.loc, `${where}: route needs a destination (prefix or 'default')`);
  return e;
}

/** One rule line: kept as `ip rule` arguments. */
export function parseRuleEntry(node: Node, ctx: Ctx, where: string): RuleEntry {
  const args = [node.keyword.text, ...node.args.map((a) => a.text)];
  for (let k = 0; k < args.length - 1; k++) {
    if ((args[k] === 'from' || args[k] === 'to') && args[k + 1] !== 'all')
      ipPrefixWord({ text: args[k + 1], loc: node.loc }, ctx, `${where} ${args[k]}`);
  }
  return { args, family: familyOfWords(args) ?? 4, loc: node.loc };
}

/** Applies one of the parsers to every line of a list block. */
export function listBlock<T>(node: Node, ctx: Ctx, parse: (n: Node, c: Ctx, where: string) => T | undefined): T[] {
  const out: T[] = [];
  const where = node.keyword.text;
  for (const child of node.children ?? []) {
    if (child.children) ctx.report('KV104', child.loc, `${where}: entries take no block; the { } is ignored`);
    const v = parse(child, ctx, where);
    if (v !== undefined) out.push(v);
  }
  return out;
}
