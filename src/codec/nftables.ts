/**
 * nf_tables messages over nfnetlink (linux/netfilter/nf_tables.h, nfnetlink.h): the set-element
 * and rule-replace messages of one batch, for the kernel plane's content updates (a weight change,
 * a real server up or down). They go to the kernel without libnftables, whose 1.0.6 fetches the
 * whole ruleset's cache before each batch (3-6 ms in a 1,000-service ruleset, docs/kernel-plane.md).
 * Element bytes are those `nft` sends for the same element (test/codec/nftables.test.ts holds one
 * captured with strace): map keys and marks in host byte order, addresses and ports in network
 * order, each part of a concatenation padded to 4 bytes (nftables' register layout). Pure.
 */
import ipaddr from 'ipaddr.js';
import { netlinkAttr as attr } from './netlink-attr.js';

export const NFNL_SUBSYS_NFTABLES = 10;
const NFNL_MSG_BATCH_BEGIN = 16;
const NFNL_MSG_BATCH_END = 17;
const NFNL_BATCH_GENID = 1;
const NFT_MSG_NEWRULE = 6;
const NFT_MSG_GETRULE = 7;
const NFT_MSG_NEWSETELEM = 12;
const NFT_MSG_GETSETELEM = 13;
const NFT_MSG_DELSETELEM = 14;
const NFT_MSG_NEWGEN = 15;
const NFT_MSG_GETGEN = 16;
const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
const NLM_F_REQUEST = 0x1;
const NLM_F_ACK = 0x4;
const NLM_F_REPLACE = 0x100;
const NLM_F_DUMP = 0x300;
const NLM_F_CREATE = 0x400;
const NLA_F_NESTED = 0x8000;
const NLA_TYPE_MASK = 0x3fff;
const NFTA_LIST_ELEM = 1;
const NFTA_RULE_TABLE = 1;
const NFTA_RULE_CHAIN = 2;
const NFTA_RULE_HANDLE = 3;
const NFTA_RULE_EXPRESSIONS = 4;
const NFTA_RULE_USERDATA = 7;
const NFTA_EXPR_NAME = 1;
const NFTA_EXPR_DATA = 2;
const NFTA_NG_MODULUS = 2;
const NFTA_HASH_MODULUS = 4;
const NFTA_SET_ELEM_LIST_TABLE = 1;
const NFTA_SET_ELEM_LIST_SET = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS = 3;
const NFTA_SET_ELEM_KEY = 1;
const NFTA_SET_ELEM_DATA = 2;
const NFTA_SET_ELEM_EXPIRATION = 5;
const NFTA_SET_ELEM_EXPR = 7;
const NFTA_SET_ELEM_EXPRESSIONS = 11;
const NFTA_COUNTER_BYTES = 1;
const NFTA_COUNTER_PACKETS = 2;
const NFTA_DATA_VALUE = 1;
const NFTA_GEN_ID = 1;

/** nfgen_family of keepvs's tables (NFPROTO_IPV4, NFPROTO_IPV6, NFPROTO_NETDEV) */
export const NFPROTO = { ip: 2, ip6: 10, netdev: 5 } as const;
export type NftFamily = keyof typeof NFPROTO;

const PROTOCOLS = { tcp: 6, udp: 17, sctp: 132 } as const;

/** One part of a set element, typed as the set declares it. */
export type ElemValue =
  /** a numgen/jhash slot or a meta mark: 32 bits, host byte order */
  | { readonly kind: 'u32'; readonly n: number }
  /** ipv4_addr / ipv6_addr */
  | { readonly kind: 'addr'; readonly address: string }
  /** `ip daddr . th dport` */
  | { readonly kind: 'addr-port'; readonly address: string; readonly port: number }
  /** ether_addr */
  | { readonly kind: 'mac'; readonly mac: string }
  /** inet_service alone (a map's value: `udp dport`), 16 bits in network order */
  | { readonly kind: 'port'; readonly port: number }
  /** `addr . inet_proto . inet_service` (the stats sets) */
  | {
      readonly kind: 'addr-proto-port';
      readonly address: string;
      readonly protocol: keyof typeof PROTOCOLS;
      readonly port: number;
    };

export interface Elem {
  readonly key: ElemValue;
  /** maps only */
  readonly value?: ElemValue;
}

/** The elements of one set to delete, then to add, in one batch. */
export interface SetChange {
  readonly family: NftFamily;
  readonly table: string;
  readonly set: string;
  readonly del: readonly Elem[];
  readonly add: readonly Elem[];
}

/** A chain whose rules' numgen/jhash modulus changes (a wrr period, a slot count): `count` rules carry it. */
export interface ModulusChange {
  readonly family: NftFamily;
  readonly table: string;
  readonly chain: string;
  readonly from: number;
  readonly to: number;
  readonly count: number;
}

/** What one tick changes in map contents and rule moduli: one atomic batch. */
export interface ContentBatch {
  readonly sets: readonly SetChange[];
  readonly moduli: readonly ModulusChange[];
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function u32Host(n: number): Buffer {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new Error(`${n} is not a 32-bit value`);
  const b = Buffer.alloc(4);
  if (LITTLE_ENDIAN) b.writeUInt32LE(n);
  else b.writeUInt32BE(n);
  return b;
}

function addrBytes(a: string): Buffer {
  if (!ipaddr.isValid(a)) throw new Error(`${a} is not an address`);
  return Buffer.from(ipaddr.parse(a).toByteArray());
}

/** A 16-bit port in network order, padded to a 4-byte register. */
function portBytes(p: number): Buffer {
  if (!Number.isInteger(p) || p < 0 || p > 65535) throw new Error(`port ${p} out of range`);
  const b = Buffer.alloc(4);
  b.writeUInt16BE(p);
  return b;
}

/** The bytes of one element part, as nft puts them in NFTA_DATA_VALUE. */
export function elemBytes(v: ElemValue): Buffer {
  switch (v.kind) {
    case 'u32':
      return u32Host(v.n);
    case 'addr':
      return addrBytes(v.address);
    case 'addr-port':
      return Buffer.concat([addrBytes(v.address), portBytes(v.port)]);
    case 'port':
      return portBytes(v.port).subarray(0, 2);
    case 'mac': {
      const parts = v.mac.split(':');
      if (parts.length !== 6 || !parts.every((p) => /^[0-9a-fA-F]{1,2}$/.test(p)))
        throw new Error(`${v.mac} is not a MAC`);
      return Buffer.from(parts.map((p) => Number.parseInt(p, 16)));
    }
    case 'addr-proto-port': {
      const proto = Buffer.alloc(4);
      const n = PROTOCOLS[v.protocol];
      if (n === undefined) throw new Error(`protocol ${v.protocol}`);
      proto.writeUInt8(n);
      return Buffer.concat([addrBytes(v.address), proto, portBytes(v.port)]);
    }
  }
}

const nest = (type: number, children: readonly Buffer[]): Buffer => attr(type | NLA_F_NESTED, Buffer.concat(children));
const str = (type: number, s: string): Buffer => attr(type, Buffer.from(`${s}\0`));

function message(type: number, flags: number, seq: number, family: number, body: readonly Buffer[], resId = 0) {
  const payload = Buffer.concat(body);
  const hdr = Buffer.alloc(20);
  hdr.writeUInt32LE(20 + payload.length, 0);
  hdr.writeUInt16LE(type, 4);
  hdr.writeUInt16LE(flags, 6);
  hdr.writeUInt32LE(seq >>> 0, 8);
  hdr.writeUInt32LE(0, 12);
  hdr.writeUInt8(family, 16);
  hdr.writeUInt8(0, 17); // NFNETLINK_V0
  hdr.writeUInt16BE(resId, 18);
  return Buffer.concat([hdr, payload]);
}

const nftType = (msg: number) => (NFNL_SUBSYS_NFTABLES << 8) | msg;

/** NFTA_SET_ELEM_LIST_ELEMENTS of `elems`: each a list element with its key and, in a map, its data. */
export function elementList(elems: readonly Elem[]): Buffer {
  return nest(
    NFTA_SET_ELEM_LIST_ELEMENTS,
    elems.map((e) =>
      nest(NFTA_LIST_ELEM, [
        nest(NFTA_SET_ELEM_KEY, [attr(NFTA_DATA_VALUE, elemBytes(e.key))]),
        ...(e.value ? [nest(NFTA_SET_ELEM_DATA, [attr(NFTA_DATA_VALUE, elemBytes(e.value))])] : []),
      ]),
    ),
  );
}

/** Elements per message: an attribute holds at most 64 KiB (libnftnl splits its batches too). */
export const ELEMS_PER_MESSAGE = 1024;

/**
 * NFT_MSG_NEWSETELEM / NFT_MSG_DELSETELEM messages for `elems` (none for an empty list), each asking
 * for an acknowledgement; sequence numbers from `seq` on.
 */
export function setElemMessages(
  op: 'add' | 'del',
  c: Pick<SetChange, 'family' | 'table' | 'set'>,
  elems: readonly Elem[],
  seq: number,
): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < elems.length; i += ELEMS_PER_MESSAGE) {
    const type = nftType(op === 'add' ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM);
    // an add is CREATE without EXCL, as `nft add element`: re-adding an identical element is no error
    const flags = NLM_F_REQUEST | NLM_F_ACK | (op === 'add' ? NLM_F_CREATE : 0);
    out.push(
      message(type, flags, seq + out.length, NFPROTO[c.family], [
        str(NFTA_SET_ELEM_LIST_TABLE, c.table),
        str(NFTA_SET_ELEM_LIST_SET, c.set),
        // a delete names keys only, as `nft delete element`
        elementList(elems.slice(i, i + ELEMS_PER_MESSAGE).map((e) => (op === 'del' ? { key: e.key } : e))),
      ]),
    );
  }
  return out;
}

/**
 * One transaction: BATCH_BEGIN (sequence `seq`), the messages, BATCH_END (`seq + 1`). With `genid` the kernel refuses the batch
 * (ERESTART) when the ruleset changed since that generation was read (nf_tables_valid_genid).
 */
export function batch(messages: readonly Buffer[], seq: number, genid?: number): Buffer {
  const attrs = genid !== undefined ? [attr(NFNL_BATCH_GENID, be32(genid))] : [];
  const begin = message(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, seq, 0, attrs, NFNL_SUBSYS_NFTABLES);
  const end = message(NFNL_MSG_BATCH_END, NLM_F_REQUEST, seq + 1, 0, [], NFNL_SUBSYS_NFTABLES);
  return Buffer.concat([begin, ...messages, end]);
}

function be32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

/** NFT_MSG_GETGEN: the ruleset generation, answered by one NFT_MSG_NEWGEN. */
export function getGenMessage(seq: number): Buffer {
  return message(nftType(NFT_MSG_GETGEN), NLM_F_REQUEST, seq, 0, []);
}

/** A dump of one chain's rules (the kernel filters by table and chain). */
export function getRulesMessage(family: NftFamily, table: string, chain: string, seq: number): Buffer {
  return message(nftType(NFT_MSG_GETRULE), NLM_F_REQUEST | NLM_F_DUMP, seq, NFPROTO[family], [
    str(NFTA_RULE_TABLE, table),
    str(NFTA_RULE_CHAIN, chain),
  ]);
}

interface Attr {
  readonly type: number;
  readonly payload: Buffer;
}

function attrs(buf: Buffer): Attr[] {
  const out: Attr[] = [];
  let off = 0;
  while (off + 4 <= buf.length) {
    const len = buf.readUInt16LE(off);
    if (len < 4 || off + len > buf.length) throw new Error('truncated netlink attribute');
    out.push({ type: buf.readUInt16LE(off + 2) & NLA_TYPE_MASK, payload: buf.subarray(off + 4, off + len) });
    off += (len + 3) & ~3;
  }
  return out;
}

/** What the kernel said to one datagram: messages by type, acknowledgements, end of a dump. */
export interface Reply {
  readonly seq: number;
  /** NLMSG_ERROR: 0 = acknowledged, else a positive errno */
  readonly error?: number;
  readonly done?: boolean;
  readonly rule?: DumpedRule;
  readonly genid?: number;
  /** one part of a set dump */
  readonly elements?: DumpedElem[];
}

/** A set element as a dump returns it. */
export interface DumpedElem {
  readonly key: Buffer;
  readonly data?: Buffer;
  /** ms until a dynamic element expires */
  readonly expiresMs?: number;
  readonly counter?: { readonly packets: number; readonly bytes: number };
}

export interface DumpedRule {
  /** NFTA_RULE_CHAIN */
  readonly chain?: string;
  readonly handle: bigint;
  /** NFTA_RULE_EXPRESSIONS' payload as the kernel dumped it */
  readonly expressions: Buffer;
  readonly userdata?: Buffer;
}

/** The netlink messages of one datagram; malformed bytes throw. */
export function decodeReplies(buf: Buffer): Reply[] {
  const out: Reply[] = [];
  let off = 0;
  while (off + 16 <= buf.length) {
    const len = buf.readUInt32LE(off);
    if (len < 16 || off + len > buf.length) throw new Error('truncated netlink message');
    const type = buf.readUInt16LE(off + 4);
    const seq = buf.readUInt32LE(off + 8);
    const body = buf.subarray(off + 16, off + len);
    if (type === NLMSG_ERROR) {
      if (body.length < 4) throw new Error('short NLMSG_ERROR');
      out.push({ seq, error: -body.readInt32LE(0) || 0 });
    } else if (type === NLMSG_DONE) out.push({ seq, done: true });
    else if (type === nftType(NFT_MSG_NEWRULE) && body.length >= 4) {
      let handle: bigint | undefined;
      let expressions: Buffer | undefined;
      let userdata: Buffer | undefined;
      let chain: string | undefined;
      for (const a of attrs(body.subarray(4))) {
        if (a.type === NFTA_RULE_CHAIN) chain = a.payload.toString('latin1').replace(/\0.*$/s, '');
        else if (a.type === NFTA_RULE_HANDLE && a.payload.length === 8) handle = a.payload.readBigUInt64BE(0);
        else if (a.type === NFTA_RULE_EXPRESSIONS) expressions = a.payload;
        else if (a.type === NFTA_RULE_USERDATA) userdata = a.payload;
      }
      if (handle === undefined || !expressions) throw new Error('rule without handle or expressions');
      out.push({ seq, rule: { handle, expressions, ...(chain ? { chain } : {}), ...(userdata ? { userdata } : {}) } });
    } else if (type === nftType(NFT_MSG_NEWSETELEM) && body.length >= 4) {
      const list = attrs(body.subarray(4)).find((a) => a.type === NFTA_SET_ELEM_LIST_ELEMENTS);
      out.push({ seq, elements: list ? attrs(list.payload).map((e) => dumpedElem(e.payload)) : [] });
    } else if (type === nftType(NFT_MSG_NEWGEN) && body.length >= 4) {
      const id = attrs(body.subarray(4)).find((a) => a.type === NFTA_GEN_ID && a.payload.length === 4);
      if (id) out.push({ seq, genid: id.payload.readUInt32BE(0) });
    }
    off += (len + 3) & ~3;
  }
  return out;
}

const dataValue = (nest: Buffer): Buffer | undefined => attrs(nest).find((a) => a.type === NFTA_DATA_VALUE)?.payload;

/** A counter expression's values (NFTA_EXPR_NAME "counter", its data), if `expr` is one. */
function counterOf(expr: Buffer): { packets: number; bytes: number } | undefined {
  const parts = attrs(expr);
  const name = parts
    .find((p) => p.type === NFTA_EXPR_NAME)
    ?.payload.toString('latin1')
    .replace(/\0.*$/s, '');
  const data = parts.find((p) => p.type === NFTA_EXPR_DATA);
  if (name !== 'counter' || !data) return undefined;
  let packets = 0;
  let bytes = 0;
  for (const a of attrs(data.payload)) {
    if (a.payload.length !== 8) continue;
    if (a.type === NFTA_COUNTER_PACKETS) packets = Number(a.payload.readBigUInt64BE(0));
    else if (a.type === NFTA_COUNTER_BYTES) bytes = Number(a.payload.readBigUInt64BE(0));
  }
  return { packets, bytes };
}

function dumpedElem(payload: Buffer): DumpedElem {
  let key: Buffer | undefined;
  let data: Buffer | undefined;
  let expiresMs: number | undefined;
  let counter: DumpedElem['counter'];
  for (const a of attrs(payload)) {
    if (a.type === NFTA_SET_ELEM_KEY) key = dataValue(a.payload);
    else if (a.type === NFTA_SET_ELEM_DATA) data = dataValue(a.payload);
    else if (a.type === NFTA_SET_ELEM_EXPIRATION && a.payload.length === 8)
      expiresMs = Number(a.payload.readBigUInt64BE(0));
    else if (a.type === NFTA_SET_ELEM_EXPR) counter ??= counterOf(a.payload);
    else if (a.type === NFTA_SET_ELEM_EXPRESSIONS)
      for (const e of attrs(a.payload)) if (e.type === NFTA_LIST_ELEM) counter ??= counterOf(e.payload);
  }
  if (!key) throw new Error('set element without a key');
  return {
    key,
    ...(data ? { data } : {}),
    ...(expiresMs !== undefined ? { expiresMs } : {}),
    ...(counter ? { counter } : {}),
  };
}

/** A dump of one set's elements. */
export function getSetElemsMessage(family: NftFamily, table: string, set: string, seq: number): Buffer {
  return message(nftType(NFT_MSG_GETSETELEM), NLM_F_REQUEST | NLM_F_DUMP, seq, NFPROTO[family], [
    str(NFTA_SET_ELEM_LIST_TABLE, table),
    str(NFTA_SET_ELEM_LIST_SET, set),
  ]);
}

const PROTOCOL_NAMES = new Map<number, keyof typeof PROTOCOLS>(
  Object.entries(PROTOCOLS).map(([k, v]) => [v, k as keyof typeof PROTOCOLS]),
);

/** `addr . proto . port` (the stats sets' key, as nft writes it) from its bytes; null when malformed. */
export function statKeyText(key: Buffer, family: 4 | 6): string | null {
  const n = family === 4 ? 4 : 16;
  if (key.length !== n + 8) return null;
  const proto = PROTOCOL_NAMES.get(key[n]);
  if (!proto) return null;
  const address = ipaddr.fromByteArray([...key.subarray(0, n)]).toString();
  return `${address} . ${proto} . ${key.readUInt16BE(n + 4)}`;
}

/**
 * A rule's expressions with every numgen/jhash modulus equal to `from` set to `to`, and how many
 * were. The rest is the kernel's own dump, sent back as it is.
 */
export function patchModulus(expressions: Buffer, from: number, to: number): { expressions: Buffer; count: number } {
  const out = Buffer.from(expressions);
  let count = 0;
  // list elements -> name + data -> the modulus attribute (a big-endian u32), rewritten in the copy
  for (const el of attrs(expressions)) {
    if (el.type !== NFTA_LIST_ELEM) continue;
    const parts = attrs(el.payload);
    const name = parts
      .find((p) => p.type === NFTA_EXPR_NAME)
      ?.payload.toString('latin1')
      .replace(/\0.*$/s, '');
    const data = parts.find((p) => p.type === NFTA_EXPR_DATA);
    const modType = name === 'numgen' ? NFTA_NG_MODULUS : name === 'hash' ? NFTA_HASH_MODULUS : -1;
    if (!data || modType < 0) continue;
    for (const a of attrs(data.payload))
      if (a.type === modType && a.payload.length === 4 && a.payload.readUInt32BE(0) === from) {
        out.writeUInt32BE(to >>> 0, a.payload.byteOffset - expressions.byteOffset);
        count++;
      }
  }
  return { expressions: out, count };
}

/** NFT_MSG_NEWRULE replacing rule `handle` of a chain by `expressions` (NLM_F_REPLACE). */
export function replaceRuleMessage(
  family: NftFamily,
  table: string,
  chain: string,
  rule: DumpedRule,
  seq: number,
): Buffer {
  const handle = Buffer.alloc(8);
  handle.writeBigUInt64BE(rule.handle);
  return message(nftType(NFT_MSG_NEWRULE), NLM_F_REQUEST | NLM_F_ACK | NLM_F_REPLACE, seq, NFPROTO[family], [
    str(NFTA_RULE_TABLE, table),
    str(NFTA_RULE_CHAIN, chain),
    attr(NFTA_RULE_HANDLE, handle),
    attr(NFTA_RULE_EXPRESSIONS | NLA_F_NESTED, rule.expressions),
    ...(rule.userdata ? [attr(NFTA_RULE_USERDATA, rule.userdata)] : []),
  ]);
}
