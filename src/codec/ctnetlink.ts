/**
 * ctnetlink conntrack messages (linux/netfilter/nfnetlink_conntrack.h), decoded as far as the kernel
 * plane needs them: the destroy events (IPCTNL_MSG_CT_DELETE on NFNLGRP_CONNTRACK_DESTROY) with
 * both tuples, the status and, with nf_conntrack_acct on, each direction's packet and byte counters
 * (ctnetlink_conntrack_event dumps them in a destroy event). Pure: the socket is os/conntrack-events.ts.
 */

export const NFNL_SUBSYS_CTNETLINK = 1;
export const IPCTNL_MSG_CT_DELETE = 2;
export const NFNLGRP_CONNTRACK_DESTROY = 3;

const NLMSG_HDR = 16;
const NFGENMSG = 4;
const NLA_TYPE_MASK = 0x3fff; // without NLA_F_NESTED / NLA_F_NET_BYTEORDER

const CTA_TUPLE_ORIG = 1;
const CTA_TUPLE_REPLY = 2;
const CTA_STATUS = 3;
const CTA_COUNTERS_ORIG = 9;
const CTA_COUNTERS_REPLY = 10;
const CTA_TUPLE_IP = 1;
const CTA_TUPLE_PROTO = 2;
const CTA_IP_V4_SRC = 1;
const CTA_IP_V4_DST = 2;
const CTA_IP_V6_SRC = 3;
const CTA_IP_V6_DST = 4;
const CTA_PROTO_NUM = 1;
const CTA_PROTO_SRC_PORT = 2;
const CTA_PROTO_DST_PORT = 3;
const CTA_COUNTERS_PACKETS = 1;
const CTA_COUNTERS_BYTES = 2;
/** IPS_DST_NAT (nf_conntrack_common.h): the entry's destination was rewritten */
export const IPS_DST_NAT = 1 << 5;

export interface CtnlTuple {
  readonly src: string;
  readonly dst: string;
  readonly proto: number;
  readonly sport: number;
  readonly dport: number;
}

export interface CtnlCounters {
  readonly packets: number;
  readonly bytes: number;
}

export interface CtnlDestroyed {
  readonly family: 4 | 6;
  readonly status: number;
  readonly original: CtnlTuple;
  readonly reply: CtnlTuple;
  /** absent when the entry had no accounting extension (created while nf_conntrack_acct was 0) */
  readonly origCounters?: CtnlCounters;
  readonly replyCounters?: CtnlCounters;
}

/** Each attribute of `b[from, to)`: type (flags masked off) and payload bounds. */
function* attrs(b: Buffer, from: number, to: number): Generator<{ type: number; at: number; end: number }> {
  let i = from;
  while (i + 4 <= to) {
    const len = b.readUInt16LE(i);
    if (len < 4 || i + len > to) return;
    yield { type: b.readUInt16LE(i + 2) & NLA_TYPE_MASK, at: i + 4, end: i + len };
    i += (len + 3) & ~3;
  }
}

function ipText(b: Buffer, at: number, end: number): string {
  if (end - at === 4) return `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
  // the canonical full form /proc/net/nf_conntrack prints (%pI6): eight groups, no compression
  const g: string[] = [];
  for (let k = at; k + 2 <= end; k += 2) g.push(b.readUInt16BE(k).toString(16).padStart(4, '0'));
  return g.join(':');
}

function tuple(b: Buffer, from: number, to: number): CtnlTuple {
  let src = '';
  let dst = '';
  let proto = 0;
  let sport = 0;
  let dport = 0;
  for (const a of attrs(b, from, to)) {
    if (a.type === CTA_TUPLE_IP)
      for (const ip of attrs(b, a.at, a.end)) {
        if (ip.type === CTA_IP_V4_SRC || ip.type === CTA_IP_V6_SRC) src = ipText(b, ip.at, ip.end);
        else if (ip.type === CTA_IP_V4_DST || ip.type === CTA_IP_V6_DST) dst = ipText(b, ip.at, ip.end);
      }
    else if (a.type === CTA_TUPLE_PROTO)
      for (const p of attrs(b, a.at, a.end)) {
        if (p.type === CTA_PROTO_NUM) proto = b[p.at] ?? 0;
        else if (p.type === CTA_PROTO_SRC_PORT) sport = b.readUInt16BE(p.at);
        else if (p.type === CTA_PROTO_DST_PORT) dport = b.readUInt16BE(p.at);
      }
  }
  return { src, dst, proto, sport, dport };
}

function counters(b: Buffer, from: number, to: number): CtnlCounters {
  let packets = 0;
  let bytes = 0;
  for (const a of attrs(b, from, to)) {
    // be64; a 2^53 overflow is far beyond any real counter
    const v = a.end - a.at === 8 ? Number(b.readBigUInt64BE(a.at)) : a.end - a.at === 4 ? b.readUInt32BE(a.at) : 0;
    if (a.type === CTA_COUNTERS_PACKETS) packets = v;
    else if (a.type === CTA_COUNTERS_BYTES) bytes = v;
  }
  return { packets, bytes };
}

/** The destroy events in one datagram from the socket (other messages skipped). */
export function decodeDestroyed(b: Buffer, length = b.length): CtnlDestroyed[] {
  const out: CtnlDestroyed[] = [];
  let i = 0;
  while (i + NLMSG_HDR <= length) {
    const len = b.readUInt32LE(i);
    if (len < NLMSG_HDR || i + len > length) break;
    const type = b.readUInt16LE(i + 4);
    if (type === ((NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE) && len >= NLMSG_HDR + NFGENMSG) {
      const family = b[i + NLMSG_HDR] === 10 ? 6 : 4; // nfgen_family: AF_INET6 = 10
      let original: CtnlTuple | undefined;
      let reply: CtnlTuple | undefined;
      let status = 0;
      let oc: CtnlCounters | undefined;
      let rc: CtnlCounters | undefined;
      for (const a of attrs(b, i + NLMSG_HDR + NFGENMSG, i + len)) {
        if (a.type === CTA_TUPLE_ORIG) original = tuple(b, a.at, a.end);
        else if (a.type === CTA_TUPLE_REPLY) reply = tuple(b, a.at, a.end);
        else if (a.type === CTA_STATUS && a.end - a.at >= 4) status = b.readUInt32BE(a.at);
        else if (a.type === CTA_COUNTERS_ORIG) oc = counters(b, a.at, a.end);
        else if (a.type === CTA_COUNTERS_REPLY) rc = counters(b, a.at, a.end);
      }
      if (original && reply)
        out.push({
          family,
          status,
          original,
          reply,
          ...(oc ? { origCounters: oc } : {}),
          ...(rc ? { replyCounters: rc } : {}),
        });
    }
    i += (len + 3) & ~3;
  }
  return out;
}

/** A destroy event as the kernel sends it (tests; the encoder mirrors decodeDestroyed). */
export function encodeDestroyed(e: CtnlDestroyed): Buffer {
  const attr = (type: number, payload: Buffer, nested = false): Buffer => {
    const len = 4 + payload.length;
    const out = Buffer.alloc((len + 3) & ~3);
    out.writeUInt16LE(len, 0);
    out.writeUInt16LE(type | (nested ? 0x8000 : 0), 2);
    payload.copy(out, 4);
    return out;
  };
  const ip = (text: string): Buffer => {
    if (e.family === 4) return Buffer.from(text.split('.').map(Number));
    const b = Buffer.alloc(16);
    text.split(':').forEach((g, k) => {
      b.writeUInt16BE(Number.parseInt(g, 16), k * 2);
    });
    return b;
  };
  const be16 = (v: number) => {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(v);
    return b;
  };
  const be64 = (v: number) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(BigInt(v));
    return b;
  };
  const t = (x: CtnlTuple) =>
    Buffer.concat([
      attr(
        CTA_TUPLE_IP,
        Buffer.concat([
          attr(e.family === 4 ? CTA_IP_V4_SRC : CTA_IP_V6_SRC, ip(x.src)),
          attr(e.family === 4 ? CTA_IP_V4_DST : CTA_IP_V6_DST, ip(x.dst)),
        ]),
        true,
      ),
      attr(
        CTA_TUPLE_PROTO,
        Buffer.concat([
          attr(CTA_PROTO_NUM, Buffer.from([x.proto])),
          attr(CTA_PROTO_SRC_PORT, be16(x.sport)),
          attr(CTA_PROTO_DST_PORT, be16(x.dport)),
        ]),
        true,
      ),
    ]);
  const c = (x: CtnlCounters) =>
    Buffer.concat([attr(CTA_COUNTERS_PACKETS, be64(x.packets)), attr(CTA_COUNTERS_BYTES, be64(x.bytes))]);
  const status = Buffer.alloc(4);
  status.writeUInt32BE(e.status);
  const body = Buffer.concat([
    Buffer.from([e.family === 6 ? 10 : 2, 0, 0, 0]),
    attr(CTA_TUPLE_ORIG, t(e.original), true),
    attr(CTA_TUPLE_REPLY, t(e.reply), true),
    attr(CTA_STATUS, status),
    ...(e.origCounters ? [attr(CTA_COUNTERS_ORIG, c(e.origCounters), true)] : []),
    ...(e.replyCounters ? [attr(CTA_COUNTERS_REPLY, c(e.replyCounters), true)] : []),
  ]);
  const h = Buffer.alloc(NLMSG_HDR);
  h.writeUInt32LE(NLMSG_HDR + body.length, 0);
  h.writeUInt16LE((NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE, 4);
  return Buffer.concat([h, body]);
}
