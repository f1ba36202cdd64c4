/**
 * Entries of `virtual_ipaddress`, `virtual_ipaddress_excluded`, `static_ipaddress` (ip addr syntax),
 * `virtual_routes`/`static_routes` (ip route syntax) and `virtual_rules`/`static_rules` (ip rule syntax).
 */
import { DIAGNOSTIC_CODES } from '../diagnostics.js';
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
  // keepalived (vrrp_iproute.c): "gw" is the deprecated spelling of "via", "or" of "nexthop"
  const args = [node.keyword.text, ...node.args.map((a) => a.text)].map((w) => (w === 'gw' ? 'via' : w));
  if (node.args.some((a) => a.text === 'gw'))
    ctx.report('KV111', node.loc, `${where}: "gw" for routes is deprecated; use "via" (accepted)`);
  if (node.args.some((a) => a.text === 'or'))
    ctx.report('KV111', node.loc, `${where}: "or" for routes is deprecated; use "nexthop"`);
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
  // vrrp_iproute.c: a virtual route is tracked through its interface unless no_track is given
  else if (where === 'virtual_routes' && e.dev === undefined && !args.includes('no_track'))
    ctx.report(
      'KV311',
      node.loc,
      `${where}: cannot track route ${e.destination} with no interface specified, not tracking (as keepalived)`,
    );
  return e;
}

/** One rule line: kept as `ip rule` arguments. */
export function parseRuleEntry(node: Node, ctx: Ctx, where: string): RuleEntry {
  const args = [node.keyword.text, ...node.args.map((a) => a.text)];
  for (let k = 0; k < args.length - 1; k++) {
    if ((args[k] === 'from' || args[k] === 'to') && args[k + 1] !== 'all')
      ipPrefixWord({ text: args[k + 1], loc: node.loc }, ctx, `${where} ${args[k]}`);
  }
  // vrrp_iprule.c: "Rule has no preference specified - setting to N. This is probably not what you want."
  if (!args.some((w) => w === 'preference' || w === 'priority' || w === 'pref'))
    ctx.report('KV211', node.loc, `${where}: rule has no preference; the kernel picks one, probably not what you want`);
  return { args, family: familyOfWords(args) ?? 4, loc: node.loc };
}

/**
 * Applies one of the parsers to every line of a list block. As keepalived ("VRRP parsed invalid
 * IP ... skipping IP...", "Invalid rule ..."), a line with an error is skipped and the rest runs:
 * its problems are reported as warnings.
 */
export function listBlock<T>(node: Node, ctx: Ctx, parse: (n: Node, c: Ctx, where: string) => T | undefined): T[] {
  const out: T[] = [];
  const where = node.keyword.text;
  for (const child of node.children ?? []) {
    if (child.children) ctx.report('KV104', child.loc, `${where}: entries take no block; the { } is ignored`);
    let failed = false;
    const lineCtx: Ctx = {
      ...ctx,
      report: (code, loc, message) => {
        if (DIAGNOSTIC_CODES[code].severity === 'error') {
          failed = true;
          ctx.repair(code, loc, `${message}; line skipped`);
        } else ctx.report(code, loc, message);
      },
    };
    const v = parse(child, lineCtx, where);
    if (v !== undefined && !failed) out.push(v);
  }
  return out;
}
