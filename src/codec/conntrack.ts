/**
 * Conntrack entries, and the connection table as ctnetlink (NFNL_SUBSYS_CTNETLINK) dumps it: the dump request and the
 * decoding of its replies into the entries /proc/net/nf_conntrack would print
 * (linux/netfilter/nfnetlink_conntrack.h; the kernel's side is nf_conntrack_netlink.c,
 * ctnetlink_dump_table / ctnetlink_fill_info). Binary: the kernel skips ct_seq_show's text (IPv6
 * printed in full) and keepvs the text parse, which at 1,000 connections/s with 120 s of TIME_WAIT
 * made the lc loop's read the size of its period (docs/kernel-plane.md).
 */
import { canonicalAddress } from '../util/address.js';

type Family = 4 | 6;

export interface CtTuple {
  readonly src: string;
  readonly dst: string;
  readonly sport: number;
  readonly dport: number;
}

/** One entry as /proc/net/nf_conntrack prints it; addresses canonical (ipaddr.js's text). */
export interface CtEntry {
  readonly family: Family;
  /** tcp, udp, icmp, icmpv6, sctp... (the kernel's l4proto names) */
  readonly protocol: string;
  /** TCP or SCTP state (ESTABLISHED, SYN_SENT...), '' for the others */
  readonly state: string;
  /** seconds left */
  readonly timeout: number;
  readonly original: CtTuple;
  readonly reply: CtTuple;
  /** packets and bytes each way (nf_conntrack_acct on when the entry was made), else absent */
  readonly counters?: CtCounters;
}

/** A connection's accounting: original direction (client to real server) and reply. */
export interface CtCounters {
  readonly origPackets: number;
  readonly origBytes: number;
  readonly replyPackets: number;
  readonly replyBytes: number;
}

/** Whether an entry may be one of keepvs's, by its family and original destination (canonical). */
export type CtWanted = (family: Family, originalDst: string) => boolean;

const NFNL_SUBSYS_CTNETLINK = 1;
const IPCTNL_MSG_CT_NEW = 0;
const IPCTNL_MSG_CT_GET = 1;
const IPCTNL_MSG_CT_DELETE = 2;
const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
const NLM_F_REQUEST = 0x1;
const NLM_F_DUMP = 0x300;
/** NLA_F_NESTED and NLA_F_NET_BYTEORDER off */
const NLA_TYPE_MASK = 0x3fff;

// enum ctattr_type
const CTA_TUPLE_ORIG = 1;
const CTA_TUPLE_REPLY = 2;
const CTA_PROTOINFO = 4;
const CTA_TIMEOUT = 7;
const CTA_COUNTERS_ORIG = 9;
const CTA_COUNTERS_REPLY = 10;
// enum ctattr_counters: 64-bit big-endian
const CTA_COUNTERS_PACKETS = 1;
const CTA_COUNTERS_BYTES = 2;
// enum ctattr_tuple, ctattr_ip, ctattr_l4proto
const CTA_TUPLE_IP = 1;
const CTA_TUPLE_PROTO = 2;
const CTA_IP_V4_SRC = 1;
const CTA_IP_V4_DST = 2;
const CTA_IP_V6_SRC = 3;
const CTA_IP_V6_DST = 4;
const CTA_PROTO_NUM = 1;
const CTA_PROTO_SRC_PORT = 2;
const CTA_PROTO_DST_PORT = 3;
// enum ctattr_protoinfo; the state is the first attribute of the TCP and SCTP nests alike
const CTA_PROTOINFO_TCP = 1;
const CTA_PROTOINFO_SCTP = 3;
const CTA_PROTOINFO_STATE = 1;

const AF_INET = 2;
const AF_INET6 = 10;

/** the names ct_seq_show prints (l4proto names; tcp_conntrack_names, sctp_conntrack_names) */
const PROTOCOL_NAMES = new Map<number, string>([
  [6, 'tcp'],
  [17, 'udp'],
  [1, 'icmp'],
  [58, 'icmpv6'],
  [132, 'sctp'],
  [136, 'udplite'],
  [47, 'gre'],
]);
const TCP_STATES = [
  'NONE',
  'SYN_SENT',
  'SYN_RECV',
  'ESTABLISHED',
  'FIN_WAIT',
  'CLOSE_WAIT',
  'LAST_ACK',
  'TIME_WAIT',
  'CLOSE',
  'SYN_SENT2',
];
const SCTP_STATES = [
  'NONE',
  'CLOSED',
  'COOKIE_WAIT',
  'COOKIE_ECHOED',
  'ESTABLISHED',
  'SHUTDOWN_SENT',
  'SHUTDOWN_RECD',
  'SHUTDOWN_ACK_SENT',
  'HEARTBEAT_SENT',
];

/** IPCTNL_MSG_CT_GET with NLM_F_DUMP: every entry of every family (nfgen_family 0), or of one. */
export function conntrackDumpRequest(seq: number, family: 0 | Family = 0): Buffer {
  const m = Buffer.alloc(20);
  m.writeUInt32LE(20, 0);
  m.writeUInt16LE((NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET, 4);
  m.writeUInt16LE(NLM_F_REQUEST | NLM_F_DUMP, 6);
  m.writeUInt32LE(seq >>> 0, 8);
  m.writeUInt8(family === 4 ? AF_INET : family === 6 ? AF_INET6 : 0, 16);
  return m;
}

/** Canonical IPv6 text by the address's 32 hex digits: few distinct addresses, many entries. */
const v6Cache = new Map<string, string>();
function v6(buf: Buffer, at: number): string {
  const hex = buf.toString('hex', at, at + 16);
  let c = v6Cache.get(hex);
  if (c === undefined) {
    const groups: string[] = [];
    for (let i = 0; i < 32; i += 4) groups.push(hex.slice(i, i + 4));
    c = canonicalAddress(groups.join(':'), 6) ?? groups.join(':');
    if (v6Cache.size >= 8192) v6Cache.clear();
    v6Cache.set(hex, c);
  }
  return c;
}
/** IPv4 text by the address's value, shared: a table's entries hold the same few addresses */
const v4Cache = new Map<number, string>();
function v4(buf: Buffer, at: number): string {
  const n = buf.readUInt32BE(at);
  let c = v4Cache.get(n);
  if (c === undefined) {
    c = `${buf[at]}.${buf[at + 1]}.${buf[at + 2]}.${buf[at + 3]}`;
    if (v4Cache.size >= 8192) v4Cache.clear();
    v4Cache.set(n, c);
  }
  return c;
}

/** the protocol and family of the tuple `tuple` read last: kept off the tuple, so none is copied */
let tupleProtocol = -1;
let tupleFamily: Family = 4;

/** A CTA_TUPLE_* nest in `[from, end)` (its protocol and family in tupleProtocol, tupleFamily); null when it has no addresses. */
function tuple(buf: Buffer, from: number, end: number): CtTuple | null {
  let src = '';
  let dst = '';
  let family: Family = 4;
  let protocol = -1;
  let sport = 0;
  let dport = 0;
  // plain loops, not a visitor: this runs for every entry of every dump and event
  for (let a = from; a + 4 <= end; ) {
    const len = buf.readUInt16LE(a);
    if (len < 4 || a + len > end) break;
    const type = buf.readUInt16LE(a + 2) & NLA_TYPE_MASK;
    const innerEnd = a + len;
    for (let b = a + 4; b + 4 <= innerEnd; ) {
      const l = buf.readUInt16LE(b);
      if (l < 4 || b + l > innerEnd) break;
      const t = buf.readUInt16LE(b + 2) & NLA_TYPE_MASK;
      const v = b + 4;
      if (type === CTA_TUPLE_IP) {
        if (l === 8 && t === CTA_IP_V4_SRC) src = v4(buf, v);
        else if (l === 8 && t === CTA_IP_V4_DST) dst = v4(buf, v);
        else if (l === 20 && t === CTA_IP_V6_SRC) {
          family = 6;
          src = v6(buf, v);
        } else if (l === 20 && t === CTA_IP_V6_DST) {
          family = 6;
          dst = v6(buf, v);
        }
      } else if (type === CTA_TUPLE_PROTO) {
        if (t === CTA_PROTO_NUM && l >= 5) protocol = buf[v] as number;
        else if (t === CTA_PROTO_SRC_PORT && l >= 6) sport = buf.readUInt16BE(v);
        else if (t === CTA_PROTO_DST_PORT && l >= 6) dport = buf.readUInt16BE(v);
      }
      b += (l + 3) & ~3;
    }
    a += (len + 3) & ~3;
  }
  tupleProtocol = protocol;
  tupleFamily = family;
  if (!src) return null;
  return { src, dst, sport, dport };
}

/** The state inside CTA_PROTOINFO (TCP and SCTP; '' for the others, as /proc prints none). */
function protoState(buf: Buffer, from: number, end: number): string {
  for (let a = from; a + 4 <= end; ) {
    const len = buf.readUInt16LE(a);
    if (len < 4 || a + len > end) break;
    const type = buf.readUInt16LE(a + 2) & NLA_TYPE_MASK;
    if (type === CTA_PROTOINFO_TCP || type === CTA_PROTOINFO_SCTP) {
      const names = type === CTA_PROTOINFO_TCP ? TCP_STATES : SCTP_STATES;
      const innerEnd = a + len;
      for (let b = a + 4; b + 4 <= innerEnd; ) {
        const l = buf.readUInt16LE(b);
        if (l < 4 || b + l > innerEnd) break;
        if ((buf.readUInt16LE(b + 2) & NLA_TYPE_MASK) === CTA_PROTOINFO_STATE && l >= 5) {
          return names[buf[b + 4] as number] ?? '';
        }
        b += (l + 3) & ~3;
      }
    }
    a += (len + 3) & ~3;
  }
  return '';
}

/** A 64-bit big-endian counter as a number, without a BigInt (exact below 2^53) */
function u64(buf: Buffer, at: number): number {
  return buf.readUInt32BE(at) * 0x1_0000_0000 + buf.readUInt32BE(at + 4);
}

/** CTA_COUNTERS_* nest: its packets (`bytes` false) or bytes */
function counter(buf: Buffer, from: number, end: number, bytes: boolean): number {
  let value = 0;
  const want = bytes ? CTA_COUNTERS_BYTES : CTA_COUNTERS_PACKETS;
  for (let a = from; a + 4 <= end; ) {
    const len = buf.readUInt16LE(a);
    if (len < 4 || a + len > end) break;
    if (len >= 12 && (buf.readUInt16LE(a + 2) & NLA_TYPE_MASK) === want) value = u64(buf, a + 4);
    a += (len + 3) & ~3;
  }
  return value;
}

interface Parsed {
  readonly entry: CtEntry;
  /** CTA_PROTOINFO was there: an update event without it leaves the state as it was */
  readonly hasState: boolean;
}

/** One IPCTNL_MSG_CT_* message's body `[from, end)` (attributes after nfgenmsg), or null. */
function parse(buf: Buffer, from: number, end: number, wanted?: CtWanted): Parsed | null {
  let original: CtTuple | null = null;
  let reply: CtTuple | null = null;
  let protocol = -1;
  let family: Family = 4;
  let state = '';
  let hasState = false;
  let timeout = 0;
  // offsets and ends of the two counter nests; -1 when absent
  let origAt = -1;
  let origEnd = -1;
  let replyAt = -1;
  let replyEnd = -1;
  for (let a = from; a + 4 <= end; ) {
    const len = buf.readUInt16LE(a);
    if (len < 4 || a + len > end) break;
    const type = buf.readUInt16LE(a + 2) & NLA_TYPE_MASK;
    const at = a + 4;
    const to = a + len;
    if (type === CTA_TUPLE_ORIG) {
      original = tuple(buf, at, to);
      protocol = tupleProtocol;
      family = tupleFamily;
      // ctnetlink_fill_info puts the original tuple first: an unwanted entry is not read further
      if (!original || (wanted !== undefined && !wanted(family, original.dst))) return null;
    } else if (type === CTA_TUPLE_REPLY) reply = tuple(buf, at, to);
    else if (type === CTA_PROTOINFO) {
      state = protoState(buf, at, to);
      hasState = true;
    } else if (type === CTA_TIMEOUT && len >= 8) timeout = buf.readUInt32BE(at);
    else if (type === CTA_COUNTERS_ORIG) {
      origAt = at;
      origEnd = to;
    } else if (type === CTA_COUNTERS_REPLY) {
      replyAt = at;
      replyEnd = to;
    }
    a += (len + 3) & ~3;
  }
  if (!original || !reply) return null;
  const protocolName = PROTOCOL_NAMES.get(protocol) ?? 'unknown';
  const entry: CtEntry =
    origAt >= 0 && replyAt >= 0
      ? {
          family,
          protocol: protocolName,
          state,
          timeout,
          original,
          reply,
          counters: {
            origPackets: counter(buf, origAt, origEnd, false),
            origBytes: counter(buf, origAt, origEnd, true),
            replyPackets: counter(buf, replyAt, replyEnd, false),
            replyBytes: counter(buf, replyAt, replyEnd, true),
          },
        }
      : { family, protocol: protocolName, state, timeout, original, reply };
  return { entry, hasState };
}

export interface DumpProgress {
  /** NLMSG_DONE of the dump `seq` was read */
  done: boolean;
  /** the kernel's errno (positive) when it refused the dump, else 0 */
  error: number;
}

/**
 * The messages of one datagram of the dump `seq`: its entries (those `wanted` accepts) are pushed
 * to `out`. Messages of another sequence (an earlier, abandoned request) are skipped; a truncated
 * or malformed message ends the datagram's reading, never throws.
 */
export function decodeConntrackDump(buf: Buffer, seq: number, out: CtEntry[], wanted?: CtWanted): DumpProgress {
  const progress: DumpProgress = { done: false, error: 0 };
  for (let m = 0; m + 16 <= buf.length; ) {
    const len = buf.readUInt32LE(m);
    if (len < 16 || m + len > buf.length) break;
    const type = buf.readUInt16LE(m + 4);
    if (buf.readUInt32LE(m + 8) === seq >>> 0) {
      if (type === NLMSG_DONE) progress.done = true;
      else if (type === NLMSG_ERROR && len >= 20) {
        const code = -buf.readInt32LE(m + 16);
        if (code !== 0) {
          progress.error = code;
          progress.done = true;
        }
      } else if (type === ((NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW) && len >= 20) {
        const p = parse(buf, m + 20, m + len, wanted);
        if (p) out.push(p.entry);
      }
    }
    m += (len + 3) & ~3;
  }
  return progress;
}

/** A conntrack event: an entry created or changed (state, timeout), or gone. */
export interface CtEvent {
  readonly kind: 'upsert' | 'destroy';
  readonly entry: CtEntry;
  /** the event carried the protocol state (not every update does: a mark or a timeout change does not) */
  readonly hasState: boolean;
}

/**
 * The event messages of one datagram from the NFNLGRP_CONNTRACK_* groups (ctnetlink_conntrack_event:
 * IPCTNL_MSG_CT_NEW for a new or updated entry, IPCTNL_MSG_CT_DELETE when it is destroyed), in
 * `[from, to)` of `buf` (a slot of a recvmmsg area, without a view made for it). A truncated or
 * malformed message ends the datagram's reading, never throws.
 */
export function decodeConntrackEvents(buf: Buffer, out: CtEvent[], from = 0, to = buf.length): void {
  const end = Math.min(to, buf.length);
  for (let m = from; m + 16 <= end; ) {
    const len = buf.readUInt32LE(m);
    if (len < 16 || m + len > end) break;
    const type = buf.readUInt16LE(m + 4);
    if (len >= 20 && type >> 8 === NFNL_SUBSYS_CTNETLINK) {
      const msg = type & 0xff;
      if (msg === IPCTNL_MSG_CT_NEW || msg === IPCTNL_MSG_CT_DELETE) {
        const p = parse(buf, m + 20, m + len);
        if (p) out.push({ kind: msg === IPCTNL_MSG_CT_NEW ? 'upsert' : 'destroy', ...p });
      }
    }
    m += (len + 3) & ~3;
  }
}

/** How far an entry's state is along its protocol's life: of two views of one entry, the later one is further. */
export function stateRank(e: CtEntry): number {
  if (e.protocol === 'tcp') return e.state === 'SYN_SENT2' ? 1.5 : TCP_STATES.indexOf(e.state);
  if (e.protocol === 'sctp') return SCTP_STATES.indexOf(e.state);
  return 0;
}
