/**
 * Pure rendering of the kernel plane into nft commands (the `nft -f` language, run through
 * libnftables). Layout, per family (`table ip keepvs`, `table ip6 keepvs`):
 *   prerouting/output (nat) -> dispatch: `meta mark vmap @fwm` (IPVS looks fwmark services up
 *   first), `daddr . l4proto . dport vmap @svc`, `daddr . l4proto vmap @svcp0` (port-0 services)
 *   -> one chain per service: pick a slot (slots.ts), DNAT to it, or drop when none is left
 *   (IPVS's ip_vs_leave: no destination, no forwarding);
 *   postrouting (nat): SNAT of full-NAT services to their local addresses.
 * DR lives in `table netdev keepvs`: an ingress chain per device, `meta pkttype host` first (a
 * backup must not forward frames flooded to the master's MAC, facts §2), then the same dispatch by
 * VIP, and per service a MAC rewrite and `fwd`. Persistence detours through `meta mark`: a dynamic
 * map client-prefix -> destination id with the service's timeout (facts §4).
 * UDP one-packet scheduling (`ops`, IPVS's IP_VS_SVC_F_ONEPACKET) under NAT bypasses conntrack:
 * `ops_pre` (filter, prerouting, priority raw) sends datagrams to the VIP to the service chain, which
 * `notrack`s them and rewrites daddr and dport per datagram (payload statements fix the checksums),
 * and untracks the real servers' replies; `ops_post` (filter, postrouting) rewrites those back to
 * VIP:port. Both hook chains exist only while a family has such a service (opsHooks).
 * Every function returns commands; one string of them is one transaction.
 */
import ipaddr from 'ipaddr.js';
import type { Elem, ElemValue, ModulusChange, NftFamily, SetChange } from '../../codec/nftables.js';
import { chainName, type KernelDest, type KernelService, serviceObjects, TABLE } from './model.js';
import { nodestSets } from './nodest.js';
import { slotTable } from './slots.js';

/** jhash seed: identical on every director, so peers pick the same server for a flow (facts §6). */
export const HASH_SEED = '0x4b565321';

type Fam = 'ip' | 'ip6';
const famOf = (s: Pick<KernelService, 'family'>): Fam => (s.family === 6 ? 'ip6' : 'ip');
const tableOf = (s: KernelService): string => (s.mode === 'dr' ? `netdev ${TABLE}` : `${famOf(s)} ${TABLE}`);
const addrType = (f: Fam) => (f === 'ip6' ? 'ipv6_addr' : 'ipv4_addr');
/**
 * The transport protocol in a rule of family `f`. IPv4: `ip protocol`, a load from the network
 * header that nf_tables runs inline (nft_payload_fast_eval), the same value as `meta l4proto`
 * (nft_set_pktinfo_ipv4 takes pkt->tprot from iph->protocol). IPv6 keeps `meta l4proto`: `ip6
 * nexthdr` is the first extension header's, not the transport's.
 */
export const l4 = (f: Fam): string => (f === 'ip' ? 'ip protocol' : 'meta l4proto');

/**
 * Declared sizes of the sets and maps looked up for every packet: a named set with a size and no
 * timeout gets the kernel's fixed-size hash (nft_set_hash.c nft_hash_select_ops: nft_hash, or
 * nft_hash_fast for 4-byte keys), one without the resizable rhash, whose lookup costs more
 * (bench/kernel-plane.sh). The stats sets hold one element per NAT/FNAT real server (address .
 * protocol . port), the DR dispatch maps one per DR service. The kernel refuses an element beyond
 * the declared size (nf_tables_api.c nft_add_set_elem: ENFILE), so the plane declares the size from
 * the count when there are more (setSize) and rebuilds its tables when a change would outgrow it.
 */
export const STAT_SET_SIZE = 65536;
export const DR_MAP_SIZE = 16384;

/** The size to declare for `count` elements: `min`, doubled until it holds them. */
export function setSize(count: number, min: number): number {
  let n = min;
  while (n < count) n *= 2;
  return n;
}

/** The skeleton of one family's NAT table (no services). */
export function baseTable(f: Fam, statSize = STAT_SET_SIZE, statsChain = true): string[] {
  const t = `${f} ${TABLE}`;
  const a = addrType(f);
  return [
    `add table ${t}`,
    `add map ${t} fwm { type mark : verdict; }`,
    `add map ${t} svc { type ${a} . inet_proto . inet_service : verdict; }`,
    `add map ${t} svcp0 { type ${a} . inet_proto : verdict; }`,
    // the NAT real servers, for the guard in prerouting
    `add set ${t} ${RS_GUARD_SET} { type ${a} . inet_proto . inet_service; }`,
    // expire_nodest_conn off: the flows of removed real servers, dropped while listed (nodest.ts)
    ...nodestSets(f),
    // UDP ops under NAT: VIP . udp . port -> the service chain; the real servers (their replies
    // untracked), and per real server the chain rewriting its replies to the VIP (opsHooks)
    `add map ${t} ${OPS_MAP} { type ${a} . inet_proto . inet_service : verdict; }`,
    `add set ${t} ${OPS_RS_SET} { type ${a} . inet_proto . inet_service; }`,
    `add map ${t} ${OPS_REV_MAP} { type ${a} . inet_proto . inet_service : verdict; }`,
    `add chain ${t} dispatch`,
    `add rule ${t} dispatch meta mark vmap @fwm`,
    `add rule ${t} dispatch ${f} daddr . ${l4(f)} . th dport vmap @svc`,
    `add rule ${t} dispatch ${f} daddr . ${l4(f)} vmap @svcp0`,
    `add chain ${t} prerouting { type nat hook prerouting priority dstnat; policy accept; }`,
    // a reply from a NAT real server that this director has no connection for (the flow went through
    // the other director, or its request is still on the way): forwarded, it would leave un-NATed and
    // leave a conntrack entry in the reply direction that blocks the flow's pickup here; dropped, the
    // real server retransmits once the request side has come this way (stateless failover, ip_vs_out's
    // drop of replies without a connection, docs/director-pair.md). Here, not in forward: a nat chain
    // sees only the first packet of a conntrack entry, so established packets pay nothing for it
    // (a dropped first packet confirms no entry, so the next one is a first packet again)
    `add rule ${t} prerouting ${f} saddr . ${l4(f)} . th sport @${RS_GUARD_SET} drop`,
    `add rule ${t} prerouting jump dispatch`,
    `add chain ${t} output { type nat hook output priority -100; policy accept; }`,
    `add rule ${t} output jump dispatch`,
    `add chain ${t} postrouting { type nat hook postrouting priority srcnat; policy accept; }`,
    // ipvsadm --stats: per real server, counters of new connections, packets in and out (conntrack knows
    // the direction); the sets hold the NAT/FNAT real servers (statSetCommands)
    // st_in and st_out are looked up for every forwarded packet: sized (STAT_SET_SIZE); st_new only
    // for a flow's first
    ...STAT_SETS.map(
      (n) =>
        `add set ${t} ${n} { type ${a} . inet_proto . inet_service;${n === 'st_new' ? '' : ` size ${statSize};`} counter; }`,
    ),
    // one forward chain for every packet of a NAT/FNAT flow: each counter one direction (the first
    // ends the chain once counted; after the last the verdict falls through to the policy, accept);
    // new connections are counted in postrouting (postrouting()), which sees only a flow's first packet
    // Only where conntrack cannot count per connection (plane.ts ctCounting): a forward chain costs
    // every packet about 300 ns here, most of it for having a base chain at all (bench/kernel-plane.sh)
    ...(statsChain
      ? [
          `add chain ${t} stats { type filter hook forward priority -1; policy accept; }`,
          `add rule ${t} stats ct direction original ct status dnat ${f} daddr . ${l4(f)} . th dport @st_in accept`,
          `add rule ${t} stats ct direction reply ct status dnat ${f} saddr . ${l4(f)} . th sport @st_out`,
        ]
      : []),
  ];
}

export const OPS_MAP = 'ops';
export const OPS_RS_SET = 'ops_rs';
export const OPS_REV_MAP = 'ops_rev';

/**
 * How a service's UDP one-packet scheduling runs here. IPVS (ip_vs_core.c ip_vs_schedule) gives a
 * datagram of an ops service a connection flagged IP_VS_CONN_F_ONE_PACKET, which ip_vs_conn_hash
 * never hashes and whose timer is 0: every datagram is scheduled on its own, nothing is kept.
 * 'nat': stateless rewrite outside conntrack; 'dr': DR is stateless already, the slot is picked per
 * packet (no flow hash, no flow map); null: not ops, or scheduled per flow (full-NAT, whose replies
 * need the client address only a connection entry holds; fwmark, marked after conntrack has seen
 * the packet; port 0, whose replies no port tells apart: plane.ts reports those).
 */
export function opsKind(s: Pick<KernelService, 'params' | 'key' | 'mode'>): 'nat' | 'dr' | null {
  if (!s.params.ops || s.key.kind !== 'addr' || s.key.protocol !== 'udp') return null;
  if (s.mode === 'dr') return 'dr';
  return s.mode === 'nat' && s.key.port !== 0 ? 'nat' : null;
}

/**
 * The hook chains of UDP ops under NAT in family `f` (on: created, off: removed). Priority raw:
 * before conntrack (-200) sees the packet, so `notrack` keeps it out of the table; the forward
 * rewrite happens before routing, so the datagram is routed to the real server. Replies are rewritten
 * in postrouting, after routing: with the VIP (a local address) as source in prerouting the route
 * lookup would drop them as martians. Only untracked replies: a conntracked flow keeps its NAT.
 */
export function opsHooks(f: Fam, on: boolean): string[] {
  const t = `${f} ${TABLE}`;
  if (!on)
    return [
      `flush chain ${t} ops_pre`,
      `delete chain ${t} ops_pre`,
      `flush chain ${t} ops_post`,
      `delete chain ${t} ops_post`,
    ];
  return [
    `add chain ${t} ops_pre { type filter hook prerouting priority raw; policy accept; }`,
    `add rule ${t} ops_pre ${f} daddr . ${l4(f)} . th dport vmap @${OPS_MAP}`,
    `add rule ${t} ops_pre ${f} saddr . ${l4(f)} . th sport @${OPS_RS_SET} notrack`,
    `add chain ${t} ops_post { type filter hook postrouting priority srcnat; policy accept; }`,
    `add rule ${t} ops_post ct state != untracked accept`,
    // ipvsadm --stats: IPVS counts each ops datagram as a connection and its packet in; the replies
    // (ip_vs_out finds no connection for them) are counted out here too, before their rewrite
    `add rule ${t} ops_post ${f} daddr . ${l4(f)} . th dport @st_new ${f} daddr . ${l4(f)} . th dport @st_in accept`,
    `add rule ${t} ops_post ${f} saddr . ${l4(f)} . th sport @st_out ${f} saddr . ${l4(f)} . th sport vmap @${OPS_REV_MAP}`,
    `add rule ${t} ops_post ${f} saddr . ${l4(f)} . th sport vmap @${OPS_REV_MAP}`,
  ];
}

/** `addr . udp . port` of each real server of a NAT ops service: the keys of @ops_rs and @ops_rev. */
export function opsReplyKeys(s: KernelService): string[] {
  if (opsKind(s) !== 'nat') return [];
  return s.dests.map((d) => `${d.address} . udp . ${d.port}`);
}

/** Counter sets of real servers: new connections, packets towards them, packets from them. */
export const STAT_SETS = ['st_new', 'st_in', 'st_out'] as const;
/** The same real servers, without counters: replies from them that start no connection are dropped. */
export const RS_GUARD_SET = 'rs_nat';

/** `addr . proto . port` of every real server a NAT/FNAT service forwards to (its stats element). */
/** The stats elements of one service in family `f` (none for DR and fwmark services). */
export function serviceStatElements(s: KernelService | null | undefined, f: Fam): string[] {
  if (!s || s.mode === 'dr' || famOf(s) !== f) return [];
  if (s.key.kind !== 'addr') return []; // fwmark: any protocol, not counted per real server
  const proto = s.key.protocol;
  return s.dests.filter((d) => d.port !== 0).map((d) => `${d.address} . ${proto} . ${d.port}`);
}

/** Adds and deletes stats elements (the same in each counter set). */
export function statSetCommands(f: Fam, add: readonly string[], del: readonly string[]): string[] {
  const t = `${f} ${TABLE}`;
  const out: string[] = [];
  for (const n of [...STAT_SETS, RS_GUARD_SET]) {
    if (add.length) out.push(`add element ${t} ${n} { ${add.join(', ')} }`);
    if (del.length) out.push(`delete element ${t} ${n} { ${del.join(', ')} }`);
  }
  return out;
}

/** The skeleton of the DR table; device chains come with deviceChain(). */
export function baseNetdev(drSize = DR_MAP_SIZE): string[] {
  const t = `netdev ${TABLE}`;
  const z = ` size ${drSize};`;
  return [
    `add table ${t}`,
    `add map ${t} svc4 { type ipv4_addr . inet_proto . inet_service : verdict;${z} }`,
    `add map ${t} svc4p0 { type ipv4_addr . inet_proto : verdict;${z} }`,
    `add map ${t} svc6 { type ipv6_addr . inet_proto . inet_service : verdict;${z} }`,
    `add map ${t} svc6p0 { type ipv6_addr . inet_proto : verdict;${z} }`,
  ];
}

/**
 * The DR dispatch: only frames addressed to this host (pkttype host), by VIP. In each device's
 * chain itself, not behind a jump: every packet of a DR flow passes here.
 */
const DR_DISPATCH = {
  svc4: 'meta pkttype host ip daddr . ip protocol . th dport vmap @svc4',
  svc4p0: 'meta pkttype host ip daddr . ip protocol vmap @svc4p0',
  svc6: 'meta pkttype host ip6 daddr . meta l4proto . th dport vmap @svc6',
  svc6p0: 'meta pkttype host ip6 daddr . meta l4proto vmap @svc6p0',
} as const;
export type DrDispatchMap = keyof typeof DR_DISPATCH;

/**
 * The dispatch maps DR services use, in rule order: a device chain holds only their rules, since
 * every packet arriving on the device (NAT traffic too) walks the chain; an IPv4-only DR setup pays
 * one rule, not four.
 */
export function drDispatchMaps(services: Iterable<KernelService>): DrDispatchMap[] {
  const used = new Set<string>();
  for (const s of services) if (s.mode === 'dr' && s.key.kind === 'addr') used.add(dispatchElement(s).map);
  return (Object.keys(DR_DISPATCH) as DrDispatchMap[]).filter((m) => used.has(m));
}

export const deviceChainName = (dev: string): string => `in_${dev.replace(/[^A-Za-z0-9]/g, '_')}`;

/**
 * An ingress base chain on `dev` with the DR dispatch for `maps` (priority -500: before anything
 * else). `existing`: the chain is there; its rules are replaced.
 */
export function deviceChain(dev: string, maps: readonly DrDispatchMap[], existing = false): string[] {
  const t = `netdev ${TABLE}`;
  const c = deviceChainName(dev);
  return [
    existing
      ? `flush chain ${t} ${c}`
      : `add chain ${t} ${c} { type filter hook ingress device ${quote(dev)} priority -500; policy accept; }`,
    ...maps.map((m) => `add rule ${t} ${c} ${DR_DISPATCH[m]}`),
  ];
}

export function deleteDeviceChain(dev: string): string[] {
  return [`delete chain netdev ${TABLE} ${deviceChainName(dev)}`];
}

function quote(s: string): string {
  if (!/^[A-Za-z0-9_.:@-]+$/.test(s)) throw new Error(`unsafe device name ${JSON.stringify(s)}`);
  return `"${s}"`;
}

/** Tables to create empty then delete, then create: an atomic rebuild whatever was there before. */
export function rebuild(tables: readonly string[]): string[] {
  return tables.flatMap((t) => [`add table ${t}`, `delete table ${t}`]);
}

function protoWord(s: KernelService): string | null {
  return s.key.kind === 'fwmark' ? null : s.key.protocol;
}

/** Whether destinations carry a port (DNAT to addr . port) or keep the client's port. */
const portMapped = (s: KernelService): boolean =>
  s.key.kind === 'addr' && s.key.port !== 0 && s.mode !== 'dr' && opsKind(s) !== 'nat';

function valueTypeof(s: KernelService): string {
  if (s.mode === 'dr') return 'ether daddr';
  const f = famOf(s);
  // `th dport`, not `tcp dport`: nft 1.0.6 refuses a `tcp dport` map used by a `meta l4proto udp` rule
  // ("conflicting protocols specified: udp vs. tcp"), so no UDP NAT service installed; same bytes
  return portMapped(s) ? `${f} daddr . th dport` : `${f} daddr`;
}

function destValue(s: KernelService, d: KernelDest): ElemValue | null {
  if (s.mode === 'dr') return d.mac ? { kind: 'mac', mac: d.mac } : null;
  return portMapped(s) ? { kind: 'addr-port', address: d.address, port: d.port } : { kind: 'addr', address: d.address };
}

const u32 = (n: number): ElemValue => ({ kind: 'u32', n });

/** An element part as the nft language writes it. */
export function elemText(v: ElemValue): string {
  switch (v.kind) {
    case 'u32':
      return String(v.n);
    case 'addr':
      return v.address;
    case 'addr-port':
      return `${v.address} . ${v.port}`;
    case 'mac':
      return v.mac;
    case 'port':
      return String(v.port);
    case 'addr-proto-port':
      return `${v.address} . ${v.protocol} . ${v.port}`;
  }
}

const pairText = (e: Elem): string => (e.value ? `${elemText(e.key)} : ${elemText(e.value)}` : elemText(e.key));

function keyExpr(s: KernelService, key: ReturnType<typeof slotTable>['key'], n: number): string {
  const f = s.family === 6 ? 'ip6' : 'ip';
  switch (key) {
    case 'counter':
      return `numgen inc mod ${n}`;
    case 'saddr':
      return `jhash ${f} saddr mod ${n} seed ${HASH_SEED}`;
    case 'saddr-sport':
      return `jhash ${f} saddr . th sport mod ${n} seed ${HASH_SEED}`;
    case 'daddr':
      return `jhash ${f} daddr mod ${n} seed ${HASH_SEED}`;
  }
}

function persistMask(s: KernelService): string | null {
  const len = s.params.persistentPrefixLen ?? (s.family === 6 ? 128 : 32);
  if ((s.family === 4 && len === 32) || (s.family === 6 && len === 128)) return null;
  return (
    s.family === 6 ? ipaddr.IPv6.subnetMaskFromPrefixLength(len) : ipaddr.IPv4.subnetMaskFromPrefixLength(len)
  ).toString();
}

/** The statement sending the packet to the value `expr map @m` names; DR: `then` runs before the fwd. */
function action(s: KernelService, lookup: string, then?: string): string {
  if (s.mode === 'dr') {
    const dr = s.dr;
    if (!dr) throw new Error(`${s.id}: DR service without devices`);
    return `ether saddr set ${dr.egressMac} ether daddr set ${lookup} ${then ? `${then} ` : ''}fwd to ${quote(dr.egress)}`;
  }
  return `dnat ${famOf(s)} to ${lookup}`;
}

/**
 * Destinations eligible for slots: DR ones need a resolved MAC. One not resolved yet is quiesced
 * but keeps its last weight, so its Maglev slots stay where every other director has them.
 */
export function usableDests(s: KernelService): KernelDest[] {
  return s.dests.map((d) => (s.mode === 'dr' && !d.mac ? { ...d, weight: 0 } : d));
}

/** Upper bound of one service's DR flow map: a SYN flood fills it, then new flows go stateless. */
export const FLOW_MAP_SIZE = 262144;

/** Whether a service keeps a DR flow map (`flow_pinning`; persistence already pins by client). */
export const pinsFlows = (s: KernelService): boolean =>
  s.mode === 'dr' &&
  s.params.flowPinTimeout !== undefined &&
  s.params.persistentTimeout === undefined &&
  opsKind(s) === null;

/**
 * The DR flow-map key (the VIP and protocol are the service's). IPv4: source address, source and
 * destination port. IPv6: nft 1.0.6 cannot update a dynamic map keyed by more than four registers
 * (netlink_linearize assertion for `ip6 saddr . th sport`), and a jhash-typed key makes `nft list`
 * segfault, so the key is the low 96 bits of the source address (raw @nh, header bytes 12-23) and
 * both ports (@th 0-31): two live flows share an entry only if those bits and both ports agree.
 */
function flowKey(s: KernelService): string {
  return s.family === 4 ? 'ip saddr . th sport . th dport' : '@nh,96,96 . @th,0,32';
}

/**
 * IPv6 flow pinning: the clients' whole addresses, a dynamic set refreshed with the flow map, so
 * -Lnc can give each flow its client (the flow key has the low 96 bits only; plane.ts matches them).
 */
export const flowClients = (id: string): string => `${serviceObjects(id).flows}_c6`;

/** A map of a service: its declaration and, unless the kernel fills it (dynamic), its elements. */
interface MapPart {
  readonly name: string;
  readonly decl: string;
  readonly elems: readonly Elem[];
  readonly dynamic: boolean;
  /** a set (keys only), not a map */
  readonly set?: boolean;
}

type Part = { readonly map: MapPart } | { readonly rule: string };

const dynamicMap = (name: string, decl: string): Part => ({ map: { name, decl, elems: [], dynamic: true } });
const staticMap = (name: string, decl: string, elems: readonly Elem[]): Part => ({
  map: { name, decl, elems, dynamic: false },
});
const staticSet = (name: string, decl: string, elems: readonly Elem[]): Part => ({
  map: { name, decl, elems, dynamic: false, set: true },
});

/**
 * The two maps of a service that picks by mark (persistence, flow pinning): mark -> destination and
 * slot -> mark. Marks are the destinations' ids, so a removed server's mark finds nothing.
 */
function markMaps(s: KernelService, dests: readonly KernelDest[], slots: readonly number[]): Part[] {
  const o = serviceObjects(s.id);
  const destPairs = dests.flatMap((d): Elem[] => {
    const v = destValue(s, d);
    return v ? [{ key: u32(d.mark), value: v }] : [];
  });
  const slotPairs: Elem[] = [];
  slots.forEach((di, slot) => {
    if (di >= 0 && destValue(s, dests[di])) slotPairs.push({ key: u32(slot), value: u32(dests[di].mark) });
  });
  return [
    staticMap(o.dest, `typeof meta mark : ${valueTypeof(s)};`, destPairs),
    staticMap(o.slots, `typeof numgen inc mod 2 : meta mark;${slotSize(s, slots.length)}`, slotPairs),
  ];
}

/**
 * A DR slot map's declared size (its slot count): a named map declared without one gets the
 * kernel's resizable rhash set, one with a size its fixed-size hash for 4-byte keys
 * (nft_hash_fast, the backend nftlb's anonymous maps get), the cheaper lookup. DR looks the map up
 * for every packet; NAT only for a flow's first, and keeps its unsized map, whose slot count (the
 * wrr period) changes over netlink without redeclaring it. A DR table changes size only with its
 * Maglev table (slots.ts), a rebuilt map.
 */
const slotSize = (s: KernelService, n: number): string => (s.mode === 'dr' ? ` size ${n};` : '');

/** One service's maps and rules in order, and the modulus its slot key uses. */
function serviceParts(s: KernelService): { parts: Part[]; modulus: number } {
  const t = tableOf(s);
  const o = serviceObjects(s.id);
  const dests = usableDests(s);
  const ops = opsKind(s);
  // ops: per datagram, so DR's counting schedulers take turns (numgen) rather than hash the flow
  const table = slotTable(s.params.scheduler, new Set(s.params.schedFlags), dests, s.mode === 'dr' && ops === null);
  const n = table.slots.length;
  const key = keyExpr(s, table.key, n);
  const proto = protoWord(s);
  // DR's (and ops's) dispatch key holds the protocol already, and runs this for every packet: no second test
  const match = proto && s.mode !== 'dr' && ops === null ? `${l4(famOf(s))} ${proto} ` : '';
  const persistent = s.params.persistentTimeout !== undefined;
  const parts: Part[] = [];
  const rule = (r: string) => parts.push({ rule: `add rule ${t} ${o.chain} ${match}${r}` });
  if (ops === 'nat') {
    // slot -> mark, mark -> address, mark -> port: a payload statement sets one field, so the pick
    // goes through the mark (as persistence does); each rule untracks first
    parts.push(...markMaps(s, dests, table.slots));
    parts.push(
      staticMap(
        o.dport,
        'typeof meta mark : udp dport;',
        dests.map((d): Elem => ({ key: u32(d.mark), value: { kind: 'port', port: d.port } })),
      ),
    );
    const f = famOf(s);
    const to = `${f} daddr set meta mark map @${o.dest} udp dport set meta mark map @${o.dport} accept`;
    if (persistent) {
      // IPVS keeps persistence templates for ops services too: every datagram of a client to its server
      const mask = persistMask(s);
      const client = mask ? `${f} saddr and ${mask}` : `${f} saddr`;
      parts.push(
        dynamicMap(
          o.persist,
          `typeof ${f} saddr : meta mark; flags dynamic,timeout; timeout ${s.params.persistentTimeout}s;`,
        ),
      );
      const upd = `update @${o.persist} { ${client} : meta mark }`;
      rule(`notrack meta mark set ${client} map @${o.persist} ${upd} ${to}`);
      rule(`notrack meta mark set ${key} map @${o.slots} ${upd} ${to}`);
    } else rule(`notrack meta mark set ${key} map @${o.slots} ${to}`);
  } else if (pinsFlows(s)) {
    // Katran's LRU in nft (facts §2, §4): the flow map is looked up first and refreshed per packet,
    // so a flow keeps the mark (the real server) it was first given. A removed server's flows find
    // no MAC in @dest; a quiesced one (weight 0) keeps its MAC and its flows. A mark is given again
    // only to the same server back in its service (plane.ts). With expire_nodest_conn on, the removed
    // server's flows follow the slot table again (they move: the entry expired at once); off, the
    // flows pinned to it are dropped until their entry
    // times out, as IPVS drops the packets of a connection whose destination is gone (ip_vs_in_hook);
    // the refresh comes after the MAC lookup, so they are not kept alive by what is dropped (IPVS
    // does not restart such an entry's timer). @gone holds those servers' marks (plane.ts)
    const fk = flowKey(s);
    parts.push(
      dynamicMap(
        o.flows,
        `typeof ${fk} : meta mark; size ${FLOW_MAP_SIZE}; flags dynamic,timeout; timeout ${s.params.flowPinTimeout}s;`,
      ),
    );
    if (s.family === 6)
      parts.push(
        staticSet(
          flowClients(s.id),
          `typeof ip6 saddr; size ${FLOW_MAP_SIZE}; flags dynamic,timeout; timeout ${s.params.flowPinTimeout}s;`,
          [],
        ),
      );
    parts.push(...markMaps(s, dests, table.slots));
    parts.push(
      staticSet(
        o.gone,
        'typeof meta mark;',
        (s.goneMarks ?? []).map((m) => ({ key: u32(m) })),
      ),
    );
    // (the set is as large as the flow map: it never fails an update the map takes)
    const upd = `update @${o.flows} { ${fk} : meta mark }${s.family === 6 ? ` update @${flowClients(s.id)} { ip6 saddr }` : ''}`;
    rule(`meta mark set ${fk} map @${o.flows} ${action(s, `meta mark map @${o.dest}`, upd)}`);
    rule(`meta mark set ${fk} map @${o.flows} meta mark @${o.gone} drop`);
    const to = action(s, `meta mark map @${o.dest}`);
    rule(`meta mark set ${key} map @${o.slots} ${upd} ${to}`);
    // the flow map full (the update fails and ends the rule): the slot table alone, unpinned
    rule(`meta mark set ${key} map @${o.slots} ${to}`);
  } else if (!persistent) {
    const pairs: Elem[] = [];
    table.slots.forEach((di, slot) => {
      const v = di >= 0 ? destValue(s, dests[di]) : null;
      if (v) pairs.push({ key: u32(slot), value: v });
    });
    parts.push(staticMap(o.slots, `typeof numgen inc mod 2 : ${valueTypeof(s)};${slotSize(s, n)}`, pairs));
    // DR with every slot on one real server (one usable): its MAC as a constant, no hash and no
    // lookup per packet (the table's 4,093 slots cost a cache miss or two each, measured at ~250 ns a
    // packet; bench/kernel-plane.sh). Same forwarding; the map stays declared and filled, so a second
    // server coming back is a rule change (libnftables) to the same table
    const one = table.slots.length > 0 && table.slots.every((di) => di === table.slots[0]) ? table.slots[0] : -1;
    const only = s.mode === 'dr' && one >= 0 ? destValue(s, dests[one]) : null;
    rule(action(s, only ? elemText(only) : `${key} map @${o.slots}`));
  } else {
    const f = famOf(s);
    const mask = persistMask(s);
    const client = mask ? `${f} saddr and ${mask}` : `${f} saddr`;
    parts.push(
      dynamicMap(
        o.persist,
        `typeof ${f} saddr : meta mark; flags dynamic,timeout; timeout ${s.params.persistentTimeout}s;`,
      ),
    );
    parts.push(...markMaps(s, dests, table.slots));
    const to = action(s, `meta mark map @${o.dest}`);
    rule(`meta mark set ${client} map @${o.persist} update @${o.persist} { ${client} : meta mark } ${to}`);
    rule(`meta mark set ${key} map @${o.slots} update @${o.persist} { ${client} : meta mark } ${to}`);
  }
  // no destination: drop, counted (ipvsadm's view has no such counter; the API shows it)
  parts.push({ rule: `add rule ${t} ${o.chain} counter drop` });
  return { parts, modulus: n };
}

function partText(t: string, p: Part): string {
  if ('rule' in p) return p.rule;
  const e = p.map.elems;
  return `add ${p.map.set ? 'set' : 'map'} ${t} ${p.map.name} { ${p.map.decl}${e.length ? ` elements = { ${e.map(pairText).join(', ')} }` : ''} }`;
}

/** Commands creating one service's maps and chain (the chain must not exist, or be flushed). */
export function serviceBody(s: KernelService): string[] {
  const t = tableOf(s);
  return serviceParts(s).parts.map((p) => partText(t, p));
}

/** The nfnetlink family of a service's table. */
export const serviceFamily = (s: KernelService): NftFamily => (s.mode === 'dr' ? 'netdev' : famOf(s));

/**
 * What a change from `before` to `after` does when it only changes map contents and the slot count
 * (a weight change, a real server up, down or quiesced): elements to delete and add per map and the
 * rules' new modulus, for an nfnetlink batch (os/nft-netlink.ts). null when anything else changes
 * (rules, declarations, the service's mode): then it takes updateService's commands.
 */
export function contentPlan(
  before: KernelService,
  after: KernelService,
): { sets: SetChange[]; moduli: ModulusChange[] } | null {
  if (before.mode !== after.mode || before.id !== after.id) return null;
  const a = serviceParts(before);
  const b = serviceParts(after);
  if (a.parts.length !== b.parts.length) return null;
  const family = serviceFamily(after);
  const norm = (r: string, n: number) => r.replaceAll(` mod ${n} `, ' mod N ');
  const sets: SetChange[] = [];
  let carriers = 0;
  for (let i = 0; i < a.parts.length; i++) {
    const x = a.parts[i];
    const y = b.parts[i];
    if ('rule' in x || 'rule' in y) {
      if (!('rule' in x && 'rule' in y) || norm(x.rule, a.modulus) !== norm(y.rule, b.modulus)) return null;
      if (norm(y.rule, b.modulus) !== y.rule) carriers++;
      continue;
    }
    if (x.map.name !== y.map.name || x.map.decl !== y.map.decl || x.map.dynamic !== y.map.dynamic) return null;
    if (y.map.dynamic) continue;
    const was = new Map(x.map.elems.map((e) => [elemText(e.key), e]));
    const now = new Map(y.map.elems.map((e) => [elemText(e.key), e]));
    const same = (p: Elem, q: Elem) => pairText(p) === pairText(q);
    const del = [...was].filter(([k, e]) => !now.has(k) || !same(e, now.get(k) as Elem)).map(([, e]) => e);
    const add = [...now].filter(([k, e]) => !was.has(k) || !same(e, was.get(k) as Elem)).map(([, e]) => e);
    if (del.length || add.length) sets.push({ family, table: TABLE, set: y.map.name, del, add });
  }
  const o = serviceObjects(after.id);
  const moduli: ModulusChange[] =
    a.modulus !== b.modulus && carriers > 0
      ? [{ family, table: TABLE, chain: o.chain, from: a.modulus, to: b.modulus, count: carriers }]
      : [];
  return { sets, moduli };
}

/** The dispatch element naming a service's chain. */
function dispatchElement(s: KernelService): { map: string; key: string } {
  const k = s.key;
  if (k.kind === 'fwmark') return { map: 'fwm', key: String(k.fwmark) };
  const fam = s.mode === 'dr' ? String(s.family) : '';
  if (opsKind(s) === 'nat') return { map: OPS_MAP, key: `${k.address} . ${k.protocol} . ${k.port}` };
  if (k.port === 0) return { map: `svc${fam}p0`, key: `${k.address} . ${k.protocol}` };
  return { map: `svc${fam}`, key: `${k.address} . ${k.protocol} . ${k.port}` };
}

export function addService(s: KernelService): string[] {
  const t = tableOf(s);
  const o = serviceObjects(s.id);
  const e = dispatchElement(s);
  return [
    `add chain ${t} ${o.chain}`,
    ...serviceBody(s),
    `add element ${t} ${e.map} { ${e.key} : goto ${o.chain} }`,
    ...opsReverseChain(s),
  ];
}

/**
 * NAT ops: the chain @ops_rev sends a real server's untracked replies to: source back to VIP:port
 * (what IPVS's handle_response does for a connection it holds; its ops connections are never
 * hashed, so ip_vs_out finds none: here the replies are rewritten without one).
 */
function opsReverseChain(s: KernelService): string[] {
  if (opsKind(s) !== 'nat' || s.key.kind !== 'addr') return [];
  const t = tableOf(s);
  const o = serviceObjects(s.id);
  return [
    `add chain ${t} ${o.rev}`,
    `add rule ${t} ${o.rev} ${famOf(s)} saddr set ${s.key.address} udp sport set ${s.key.port} accept`,
  ];
}

/** `add map T NAME { DECL; elements = { ... } }` split into its name, declaration and elements. */
function splitMap(cmd: string): { kind: string; name: string; decl: string; elements: string } | null {
  const m = /^add (map|set) \S+ \S+ (\S+) \{ (.*?;)(?: elements = \{ (.*) \})? \}$/.exec(cmd);
  return m ? { kind: m[1], name: m[2], decl: m[3], elements: m[4] ?? '' } : null;
}

/**
 * The cheapest commands taking a service from `before` to `after`: when only map contents changed
 * (same rules, same slot count), `flush map` + `add element`; else the chain and maps rebuilt.
 */
export function updateService(before: KernelService, after: KernelService): string[] {
  const a = serviceBody(before);
  const b = serviceBody(after);
  if (
    a.join('\n') === b.join('\n') &&
    before.params.persistentTimeout === after.params.persistentTimeout &&
    pinsFlows(before) === pinsFlows(after)
  )
    return [];
  const t = tableOf(after);
  const sameShape =
    a.length === b.length &&
    a.every((cmd, i) => {
      const x = splitMap(cmd);
      const y = splitMap(b[i]);
      return x && y ? x.kind === y.kind && x.name === y.name && x.decl === y.decl : cmd === b[i];
    });
  if (!sameShape) return replaceService(before, after);
  const out: string[] = [];
  a.forEach((cmd, i) => {
    const x = splitMap(cmd);
    const y = splitMap(b[i]);
    if (!x || !y || x.elements === y.elements || y.decl.includes('flags dynamic')) return;
    out.push(`flush ${y.kind} ${t} ${y.name}`);
    if (y.elements) out.push(`add element ${t} ${y.name} { ${y.elements} }`);
  });
  return out;
}

/** Replaces a service's rules and maps in place; `keepPersist`: the persistence map (its clients) stays. */
export function replaceService(before: KernelService, after: KernelService): string[] {
  const t = tableOf(after);
  const o = serviceObjects(after.id);
  const hadPersist = before.params.persistentTimeout !== undefined;
  const keepPersist =
    hadPersist &&
    after.params.persistentTimeout === before.params.persistentTimeout &&
    after.params.persistentPrefixLen === before.params.persistentPrefixLen;
  const hadFlows = pinsFlows(before);
  const hadOps = opsKind(before) === 'nat';
  // the flows stay pinned through a rebuild (scheduler or table size change) with the same timeout
  const keepFlows = hadFlows && pinsFlows(after) && before.params.flowPinTimeout === after.params.flowPinTimeout;
  const body = serviceBody(after).filter(
    (c) =>
      !(keepPersist && c.startsWith(`add map ${t} ${o.persist} `)) &&
      !(keepFlows && c.startsWith(`add map ${t} ${o.flows} `)) &&
      !(keepFlows && c.startsWith(`add set ${t} ${flowClients(after.id)} `)),
  );
  return [
    `flush chain ${t} ${o.chain}`,
    `delete map ${t} ${o.slots}`,
    ...(hadPersist || hadFlows || hadOps ? [`delete map ${t} ${o.dest}`] : []),
    ...(hadOps ? [`delete map ${t} ${o.dport}`] : []),
    ...(hadPersist && !keepPersist ? [`delete map ${t} ${o.persist}`] : []),
    ...(hadFlows && !keepFlows ? [`delete map ${t} ${o.flows}`] : []),
    ...(hadFlows && !keepFlows && before.family === 6 ? [`delete set ${t} ${flowClients(before.id)}`] : []),
    ...(hadFlows ? [`delete set ${t} ${o.gone}`] : []),
    ...body,
  ];
}

export function deleteService(s: KernelService): string[] {
  const t = tableOf(s);
  const o = serviceObjects(s.id);
  const e = dispatchElement(s);
  const persistent = s.params.persistentTimeout !== undefined;
  const ops = opsKind(s) === 'nat';
  return [
    `delete element ${t} ${e.map} { ${e.key} }`,
    `flush chain ${t} ${o.chain}`,
    `delete chain ${t} ${o.chain}`,
    `delete map ${t} ${o.slots}`,
    // the @ops_rev elements naming the reverse chain go first (plane.ts: removals lead the batch)
    ...(ops ? [`flush chain ${t} ${o.rev}`, `delete chain ${t} ${o.rev}`, `delete map ${t} ${o.dport}`] : []),
    ...(ops && !persistent ? [`delete map ${t} ${o.dest}`] : []),
    ...(persistent ? [`delete map ${t} ${o.dest}`, `delete map ${t} ${o.persist}`] : []),
    ...(pinsFlows(s) ? [`delete map ${t} ${o.dest}`, `delete map ${t} ${o.flows}`, `delete set ${t} ${o.gone}`] : []),
    ...(pinsFlows(s) && s.family === 6 ? [`delete set ${t} ${flowClients(s.id)}`] : []),
  ];
}

/**
 * The whole postrouting chain of one family: the new-connection counter (a nat chain sees only the
 * first packet of a flow, so established packets pay nothing for it), then SNAT of each full-NAT
 * service to its local addresses.
 */
export function postrouting(f: Fam, services: readonly KernelService[]): string[] {
  const t = `${f} ${TABLE}`;
  const out = [
    `flush chain ${t} postrouting`,
    `add rule ${t} postrouting ct status dnat ${f} daddr . ${l4(f)} . th dport @st_new`,
  ];
  for (const s of services) {
    if (s.mode !== 'fullnat' || famOf(s) !== f) continue;
    const laddrs = s.localAddresses ?? [];
    if (laddrs.length === 0) continue;
    const k = s.key;
    let match = 'ct status dnat ';
    // a fwmark's mark may be reused for persistence by then: match its real servers instead
    if (k.kind === 'fwmark') {
      if (s.dests.length === 0) continue;
      match += `${f} daddr { ${s.dests.map((d) => d.address).join(', ')} } `;
    } else {
      match += `${l4(f)} ${k.protocol} ct original ${f} daddr ${k.address} `;
      if (k.port !== 0) match += `ct original proto-dst ${k.port} `;
    }
    const to =
      laddrs.length === 1
        ? laddrs[0]
        : `jhash ${f} saddr mod ${laddrs.length} seed ${HASH_SEED} map { ${laddrs.map((a, i) => `${i} : ${a}`).join(', ')} }`;
    out.push(`add rule ${t} postrouting ${match}snat ${f} to ${to}`);
  }
  return out;
}

export { chainName };
