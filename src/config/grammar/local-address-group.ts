/**
 * `local_address_group NAME { ADDR [IFNAME] | A.B.C.D-E [IFNAME] | X::Y-Z [IFNAME] ... }`: the
 * full-NAT source addresses of the Alibaba LVS and DPVS keepalived forks (their check_parser.c
 * laddr_group handler). A range's end is the last octet (IPv4) or hex group (IPv6), at most 256
 * addresses; the interface name is recorded (DPVS binds the address there) and otherwise unused.
 */
import ipaddr from 'ipaddr.js';
import type { Family, LocalAddressGroup } from '../model.js';
import type { Node } from '../tree.js';
import { type Ctx, parseIp } from './engine.js';

const MAX_RANGE = 256;

function expand(text: string): { family: Family; addresses: string[] } | undefined {
  const dash = text.lastIndexOf('-');
  const first = parseIp(dash < 0 ? text : text.slice(0, dash));
  if (!first) return undefined;
  if (dash < 0) return { family: first.family, addresses: [first.address] };
  const end = text.slice(dash + 1);
  const parts = first.family === 4 ? first.address.split('.').map(Number) : ipaddr.IPv6.parse(first.address).parts;
  const lastIndex = parts.length - 1;
  const last = first.family === 4 ? (/^\d{1,3}$/.test(end) ? Number(end) : Number.NaN) : Number.parseInt(end, 16);
  if (!Number.isInteger(last) || last > (first.family === 4 ? 255 : 0xffff) || last < parts[lastIndex])
    return undefined;
  if (last - parts[lastIndex] + 1 > MAX_RANGE) return undefined;
  const addresses: string[] = [];
  for (let v = parts[lastIndex]; v <= last; v++) {
    const p = [...parts];
    p[lastIndex] = v;
    addresses.push(first.family === 4 ? p.join('.') : new ipaddr.IPv6(p).toString());
  }
  return { family: first.family, addresses };
}

export function parseLocalAddressGroup(node: Node, ctx: Ctx): LocalAddressGroup | undefined {
  const name = node.args[0]?.text;
  if (!name) {
    ctx.report('KV113', node.loc, "'local_address_group' needs a name");
    return undefined;
  }
  const addresses: { address: string; family: Family; ifname?: string }[] = [];
  for (const child of node.children ?? []) {
    const [first, ifname, extra] = [child.keyword, ...child.args];
    const r = expand(first.text);
    if (!r) {
      ctx.report(
        'KV204',
        first.loc,
        `local_address_group ${name}: '${first.text}' is not an address or a range (A.B.C.D-E, at most ${MAX_RANGE})`,
      );
      continue;
    }
    if (extra)
      ctx.report('KV114', extra.loc, `local_address_group ${name}: takes ADDRESS [IFNAME]; extra words ignored`);
    for (const address of r.addresses)
      if (!addresses.some((a) => a.address === address))
        addresses.push({ address, family: r.family, ...(ifname ? { ifname: ifname.text } : {}) });
  }
  return { name, addresses, loc: node.loc };
}
