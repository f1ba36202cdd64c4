/**
 * expire_nodest_conn = 0 (the IPVS default) in the kernel plane's NAT and full-NAT. IPVS
 * (ip_vs_core.c ip_vs_in_hook, "Check the server status"): a packet of an existing connection whose
 * destination is no longer available (removed from its service: __ip_vs_unlink_dest clears
 * IP_VS_DEST_F_AVAILABLE) is dropped, silently, and the entry's timer is not restarted, so it
 * expires on its own; with the sysctl on, the entry is expired at once instead (plane.ts flushes
 * its conntrack entries). A quiesced real server (weight 0) stays available: its flows go on. The
 * replies are not checked (ip_vs_out has no such test), so they still pass.
 * Here the connection entry is conntrack's, whose DNAT would go on forwarding; so a removed real
 * server's flows are listed ("gone") in per-family sets with a timeout, and a filter chain in
 * prerouting (and output, for local clients) at priority mangle, before the nat hook rewrites an
 * established packet, drops the original direction of those flows. Each set holds one key shape:
 *   nodest     VIP . proto . port . real server . port   (services with a port)
 *   nodest_p0  VIP . proto . real server                  (port-0 services: any port)
 *   nodest_rs  real server . proto . port                 (fwmark services: any VIP)
 *   nodest_rsa real server . proto                        (a fwmark service's real server without a
 *                                                          port: any port, when no other service has
 *                                                          that address, so its flows are this one's)
 * A real server's reply endpoint is `ct reply saddr . ct reply proto-src`; nft 1.0.6 gives
 * proto-src a type only after a transport-protocol match, so there is one rule per protocol. The
 * chains exist only while a set holds elements (plane.ts): no cost per packet otherwise.
 */
import type { Endpoint, ServiceKey } from '../../lb/types.js';
import { TABLE } from './model.js';
import { l4 } from './render.js';

type Fam = 'ip' | 'ip6';

export const NODEST_SETS = ['nodest', 'nodest_p0', 'nodest_rs', 'nodest_rsa'] as const;
export type NodestSet = (typeof NODEST_SETS)[number];

/** the protocols a fwmark service's real server is listed under (a mark matches any) */
const FWMARK_PROTOCOLS = ['tcp', 'udp', 'sctp'] as const;

export interface NodestElem {
  readonly family: Fam;
  readonly set: NodestSet;
  /** the element's key text */
  readonly key: string;
  readonly protocol: string;
}

/** The set declarations of one family (in baseTable). */
export function nodestSets(f: Fam): string[] {
  const a = f === 'ip6' ? 'ipv6_addr' : 'ipv4_addr';
  const t = `${f} ${TABLE}`;
  const types: Record<NodestSet, string> = {
    nodest: `${a} . inet_proto . inet_service . ${a} . inet_service`,
    nodest_p0: `${a} . inet_proto . ${a}`,
    nodest_rs: `${a} . inet_proto . inet_service`,
    nodest_rsa: `${a} . inet_proto`,
  };
  return NODEST_SETS.map((n) => `add set ${t} ${n} { type ${types[n]}; flags timeout; }`);
}

/**
 * The elements listing one removed real server of one service; null when its flows cannot be told
 * apart by their conntrack tuple (a fwmark service's real server without a port, any port of it,
 * whose address another service also has: `alone` false).
 */
export function nodestElements(key: ServiceKey, dest: Endpoint, alone = false): NodestElem[] | null {
  const family: Fam = key.family === 6 ? 'ip6' : 'ip';
  if (key.kind === 'fwmark') {
    if (dest.port === 0)
      return alone
        ? FWMARK_PROTOCOLS.map((p) => ({ family, set: 'nodest_rsa', key: `${dest.address} . ${p}`, protocol: p }))
        : null;
    return FWMARK_PROTOCOLS.map((p) => ({
      family,
      set: 'nodest_rs',
      key: `${dest.address} . ${p} . ${dest.port}`,
      protocol: p,
    }));
  }
  const p = key.protocol;
  if (key.port === 0)
    return [{ family, set: 'nodest_p0', key: `${key.address} . ${p} . ${dest.address}`, protocol: p }];
  // a real server without a port gets the service's (render.ts portMapped)
  const port = dest.port || key.port;
  return [
    { family, set: 'nodest', key: `${key.address} . ${p} . ${key.port} . ${dest.address} . ${port}`, protocol: p },
  ];
}

/** `add element` of elements with `timeoutS` seconds to live. */
export function addNodest(elems: readonly NodestElem[], timeoutS: (e: NodestElem) => number): string[] {
  return elems.map(
    (e) => `add element ${e.family} ${TABLE} ${e.set} { ${e.key} timeout ${Math.max(1, Math.ceil(timeoutS(e)))}s }`,
  );
}

/** `delete element` of elements that are there (a timed-out one is gone already: delete refuses it). */
export function deleteNodest(elems: readonly NodestElem[]): string[] {
  return elems.map((e) => `delete element ${e.family} ${TABLE} ${e.set} { ${e.key} }`);
}

/** The drop rules of one set for one protocol (the key reads the packet before the nat hook's DNAT). */
function dropRule(f: Fam, chain: string, set: NodestSet, protocol: string): string {
  const t = `${f} ${TABLE}`;
  const rs = `ct reply ${f} saddr`;
  const key: Record<NodestSet, string> = {
    nodest: `${f} daddr . ${l4(f)} . th dport . ${rs} . ct reply proto-src`,
    nodest_p0: `${f} daddr . ${l4(f)} . ${rs}`,
    nodest_rs: `${rs} . ${l4(f)} . ct reply proto-src`,
    nodest_rsa: `${rs} . ${l4(f)}`,
  };
  return `add rule ${t} ${chain} ${l4(f)} ${protocol} ct direction original ct status dnat ${key[set]} @${set} counter drop`;
}

/**
 * The hook chains of family `f`: on, with rules for the (set, protocol) pairs listed; off, removed.
 * Rewritten whole (flush and refill) when the pairs change.
 */
export function nodestHooks(f: Fam, pairs: readonly (readonly [NodestSet, string])[], had: boolean): string[] {
  const t = `${f} ${TABLE}`;
  const chains = [
    ['nodest_pre', 'prerouting'],
    ['nodest_out', 'output'],
  ] as const;
  if (pairs.length === 0)
    return had ? chains.flatMap(([c]) => [`flush chain ${t} ${c}`, `delete chain ${t} ${c}`]) : [];
  return chains.flatMap(([c, hook]) => [
    had ? `flush chain ${t} ${c}` : `add chain ${t} ${c} { type filter hook ${hook} priority mangle; policy accept; }`,
    ...pairs.map(([s, p]) => dropRule(f, c, s, p)),
  ]);
}

/** A gone real server as a previous keepvs listed it: the service (a fwmark one's mark is not kept: 0). */
export interface ListedGone {
  readonly key: ServiceKey;
  readonly dest: Endpoint;
  readonly elems: NodestElem[];
  /** seconds the kernel keeps its elements still (the least of them) */
  expiresS: number;
}

/**
 * The gone real servers in the `nft -j list set` output of one nodest set (keepvs restarted: the
 * tables outlive it). A fwmark service's real server has one element per protocol: one entry.
 */
export function parseNodestSet(f: Fam, set: NodestSet, json: string): ListedGone[] {
  const family = f === 'ip6' ? 6 : 4;
  const out = new Map<string, ListedGone>();
  let doc: { nftables?: { set?: { elem?: unknown[] } }[] };
  try {
    doc = JSON.parse(json);
  } catch {
    return [];
  }
  for (const item of doc.nftables ?? [])
    for (const e of item.set?.elem ?? []) {
      const el = (e as { elem?: { val?: { concat?: unknown[] }; expires?: number } }).elem;
      const v = el?.val?.concat?.map(String);
      const expiresS = el?.expires ?? 0;
      if (!v) continue;
      let key: ServiceKey;
      let dest: Endpoint;
      let protocol: string;
      if (set === 'nodest' && v.length === 5) {
        protocol = v[1];
        key = { kind: 'addr', family, protocol: protocol as 'tcp', address: v[0], port: Number(v[2]) };
        dest = { address: v[3], port: Number(v[4]) };
      } else if (set === 'nodest_p0' && v.length === 3) {
        protocol = v[1];
        key = { kind: 'addr', family, protocol: protocol as 'tcp', address: v[0], port: 0 };
        dest = { address: v[2], port: 0 };
      } else if (set === 'nodest_rs' && v.length === 3) {
        protocol = v[1];
        key = { kind: 'fwmark', family, fwmark: 0 };
        dest = { address: v[0], port: Number(v[2]) };
      } else if (set === 'nodest_rsa' && v.length === 2) {
        protocol = v[1];
        key = { kind: 'fwmark', family, fwmark: 0 };
        dest = { address: v[0], port: 0 };
      } else continue;
      const id = `${set}|${key.kind === 'addr' ? `${key.protocol}|${key.address}|${key.port}` : ''}|${dest.address}|${dest.port}`;
      const elem: NodestElem = { family: f, set, key: v.join(' . '), protocol };
      const had = out.get(id);
      if (!had) out.set(id, { key, dest, elems: [elem], expiresS });
      else {
        had.elems.push(elem);
        had.expiresS = Math.min(had.expiresS, expiresS);
      }
    }
  return [...out.values()];
}
