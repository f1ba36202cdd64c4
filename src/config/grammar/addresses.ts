/** Address, route and rule entries: `virtual_ipaddress`, `static_ipaddress`, `*_routes`, `*_rules`. */
import type { Node } from '../lexer.js';
import type { IpAddressEntry, RouteEntry, RuleEntry } from '../model.js';
import { type Ctx, oneOf, parseAddress } from './common.js';

const SCOPES = ['global', 'site', 'link', 'host', 'nowhere'] as const;
const ADDRESS_FLAGS = new Set(['home', '-nodad', 'nodad', 'mngtmpaddr', 'noprefixroute', 'autojoin', 'use_vmac']);

/** One `ADDR[/MASK] [brd X] [dev IF] [scope S] [label L] [peer IP] [flags...]` line. */
export function parseIpAddressEntry(n: Node, ctx: Ctx): IpAddressEntry | undefined {
  const a = parseAddress({ text: n.keyword, loc: n.loc }, ctx, { prefix: true, what: 'address' });
  if (!a) return undefined;
  const e: { -readonly [K in keyof IpAddressEntry]: IpAddressEntry[K] } = {
    address: a.address,
    family: a.family,
    prefixLen: a.prefixLen ?? (a.family === 4 ? 32 : 128),
    noTrack: false,
    flags: [],
    loc: n.loc,
  };
  const flags: string[] = [];
  for (let i = 0; i < n.args.length; i++) {
    const k = n.args[i].text;
    const v = n.args[i + 1];
    const needsValue = ['brd', 'broadcast', 'dev', 'scope', 'label', 'peer', 'preferred_lft', 'track_group'].includes(
      k,
    );
    if (needsValue && !v) {
      ctx.diag.report('KV104', n.args[i].loc, `'${k}' needs a value`);
      break;
    }
    if (k === 'brd' || k === 'broadcast') {
      if (v.text !== '+' && v.text !== '-') parseAddress(v, ctx, { what: 'brd' });
      e.brd = v.text;
    } else if (k === 'dev') e.dev = v.text;
    else if (k === 'scope') e.scope = oneOf(v, SCOPES, ctx, 'scope');
    else if (k === 'label') e.label = v.text;
    else if (k === 'peer') e.peer = parseAddress(v, ctx, { prefix: true, what: 'peer' })?.address;
    else if (k === 'preferred_lft' || k === 'track_group') flags.push(k, v.text);
    else if (k === 'no_track') {
      e.noTrack = true;
      continue;
    } else if (ADDRESS_FLAGS.has(k)) {
      if (k === 'use_vmac') ctx.diag.report('KV102', n.args[i].loc, "'use_vmac' is not supported by keepvs; ignored");
      else flags.push(k);
      continue;
    } else {
      ctx.diag.report('KV203', n.args[i].loc, `unexpected '${k}' after address ${n.keyword}`);
      continue;
    }
    i++;
  }
  e.flags = flags;
  return e;
}

export function parseIpAddressBlock(n: Node, ctx: Ctx): IpAddressEntry[] {
  const out: IpAddressEntry[] = [];
  for (const c of n.children ?? []) {
    const e = parseIpAddressEntry(c, ctx);
    if (e) out.push(e);
  }
  return out;
}

/** `ip route` arguments; the destination, `via`, `dev` and `table` are parsed for validation. */
export function parseRouteBlock(n: Node, ctx: Ctx): RouteEntry[] {
  const out: RouteEntry[] = [];
  for (const c of n.children ?? []) {
    const words = [c.keyword, ...c.args.map((a) => a.text)];
    const all = [{ text: c.keyword, loc: c.loc }, ...c.args];
    const e: { -readonly [K in keyof RouteEntry]: RouteEntry[K] } = { args: words, family: 4, loc: c.loc };
    let i = 0;
    if (['src', 'blackhole', 'unreachable', 'prohibit', 'throw'].includes(words[0])) i = 1;
    if (words[0] === 'inet6') {
      e.family = 6;
      i = 1;
    }
    const dst = all[i];
    if (dst && dst.text !== 'default') {
      const a = parseAddress(dst, ctx, { prefix: true, what: 'route destination' });
      if (a) {
        e.destination = a.prefixLen === undefined ? a.address : `${a.address}/${a.prefixLen}`;
        e.family = a.family;
      }
    }
    for (let j = i + 1; j < words.length; j++) {
      if ((words[j] === 'via' || words[j] === 'gw') && all[j + 1])
        e.via = parseAddress(all[j + 1], ctx, { what: 'via' })?.address;
      if (words[j] === 'dev' && all[j + 1]) e.dev = words[j + 1];
      if (words[j] === 'table' && all[j + 1]) e.table = words[j + 1];
    }
    out.push(e);
  }
  return out;
}

export function parseRuleBlock(n: Node, ctx: Ctx): RuleEntry[] {
  const out: RuleEntry[] = [];
  for (const c of n.children ?? []) {
    const all = [{ text: c.keyword, loc: c.loc }, ...c.args];
    let family: 4 | 6 = 4;
    for (let j = 0; j < all.length; j++) {
      if ((all[j].text === 'from' || all[j].text === 'to') && all[j + 1] && all[j + 1].text !== 'all') {
        const a = parseAddress(all[j + 1], ctx, { prefix: true, what: `rule ${all[j].text}` });
        if (a) family = a.family;
      }
      if (all[j].text === 'inet6') family = 6;
    }
    out.push({ args: all.map((w) => w.text), family, loc: c.loc });
  }
  return out;
}
