/** `virtual_server_group NAME { IP [PORT] | a.b.c.d-e [PORT] | CIDR [PORT] | fwmark N [inet|inet6] }`. */
import ipaddr from 'ipaddr.js';
import type { Family, VirtualServerGroup, VsgEntry } from '../model.js';
import type { Node } from '../tree.js';
import { type Ctx, choiceWord, parseIntWord, parseIp, portWord } from './engine.js';

/** Expands `a.b.c.d-e`, `a.b.c.d-e.f.g.h`, `x::y-z` and `a.b.c.d/nn` to first/last addresses. */
function parseRange(text: string): { first: string; last: string; family: Family } | undefined | 'bad' {
  if (text.includes('/')) {
    try {
      const [addr, len] = ipaddr.parseCIDR(text);
      const family: Family = addr.kind() === 'ipv4' ? 4 : 6;
      if (family === 4) {
        const net = ipaddr.IPv4.networkAddressFromCIDR(text).toString();
        const bc = ipaddr.IPv4.broadcastAddressFromCIDR(text).toString();
        return { first: net, last: bc, family };
      }
      const bytes = addr.toByteArray();
      const lastBytes = bytes.map((b, i) => {
        const bitsHere = Math.max(0, Math.min(8, len - i * 8));
        const mask = (0xff << (8 - bitsHere)) & 0xff;
        return b | (~mask & 0xff);
      });
      const firstBytes = bytes.map((b, i) => {
        const bitsHere = Math.max(0, Math.min(8, len - i * 8));
        return b & ((0xff << (8 - bitsHere)) & 0xff);
      });
      return {
        first: (ipaddr.fromByteArray(firstBytes) as ipaddr.IPv6).toRFC5952String(),
        last: (ipaddr.fromByteArray(lastBytes) as ipaddr.IPv6).toRFC5952String(),
        family,
      };
    } catch {
      return 'bad';
    }
  }
  const dash = text.lastIndexOf('-');
  if (dash < 0) return undefined;
  const start = parseIp(text.slice(0, dash));
  if (!start) return 'bad';
  const endText = text.slice(dash + 1);
  const full = parseIp(endText);
  let last: string;
  if (full) last = full.address;
  else if (start.family === 4 && /^\d{1,3}$/.test(endText) && Number(endText) <= 255)
    last = start.address.split('.').slice(0, 3).concat(endText).join('.');
  else if (start.family === 6 && /^[0-9a-fA-F]{1,4}$/.test(endText)) {
    const parts = ipaddr.IPv6.parse(start.address).parts.slice();
    parts[7] = Number.parseInt(endText, 16);
    last = new ipaddr.IPv6(parts).toRFC5952String();
  } else return 'bad';
  const a = ipaddr.parse(start.address).toByteArray();
  const b = ipaddr.parse(last).toByteArray();
  if (a.length !== b.length) return 'bad';
  for (let i = 0; i < a.length; i++)
    if (a[i] !== b[i]) return a[i] < b[i] ? { first: start.address, last, family: start.family } : 'bad';
  return { first: start.address, last, family: start.family };
}

export function parseVirtualServerGroup(node: Node, ctx: Ctx): VirtualServerGroup | undefined {
  const name = node.args[0]?.text;
  if (!name) {
    ctx.report('KV113', node.loc, "'virtual_server_group' needs a name");
    return undefined;
  }
  const entries: VsgEntry[] = [];
  for (const child of node.children ?? []) {
    const words = [child.keyword, ...child.args];
    if (words[0].text === 'fwmark') {
      if (!words[1]) {
        ctx.report('KV113', child.loc, 'fwmark needs a mark number');
        continue;
      }
      const mark = parseIntWord(words[1], 1, 0xffffffff, ctx, 'fwmark');
      if (mark === undefined) continue;
      const fam = words[2] ? choiceWord(words[2], ['inet', 'inet6'] as const, ctx, 'fwmark family') : 'inet';
      entries.push({ kind: 'fwmark', fwmark: mark, family: fam === 'inet6' ? 6 : 4, loc: child.loc });
      continue;
    }
    const range = parseRange(words[0].text);
    let first: string;
    let last: string;
    let family: Family;
    if (range === 'bad') {
      ctx.report(
        'KV204',
        words[0].loc,
        `virtual_server_group ${name}: '${words[0].text}' is not an address, range or prefix`,
      );
      continue;
    } else if (range) ({ first, last, family } = range);
    else {
      const ip = parseIp(words[0].text);
      if (!ip) {
        ctx.report('KV204', words[0].loc, `virtual_server_group ${name}: '${words[0].text}' is not an IP address`);
        continue;
      }
      first = last = ip.address;
      family = ip.family;
    }
    const port = words[1] ? portWord(words[1], ctx, 'virtual_server_group port') : 0;
    if (port === undefined) continue;
    if (words.length > 2) ctx.report('KV114', words[2].loc, 'virtual_server_group entry: extra words ignored');
    entries.push({ kind: 'address', address: first, lastAddress: last, family, port, loc: child.loc });
  }
  if (entries.length === 0) ctx.report('KV309', node.loc, `virtual_server_group ${name} has no entries`);
  return { name, entries, loc: node.loc };
}
