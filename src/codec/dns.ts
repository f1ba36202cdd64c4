/**
 * DNS message codec for DNS_CHECK (RFC 1035 §4.1): encode a one-question query, decode the
 * header and question of a message. Pure; decoders return Result and never throw.
 */
import { err, ok, type Result } from '../util/result.js';

/** RFC 1035 §3.2.2 / RFC 3596 type codes of the types DNS_CHECK accepts. */
export const DNS_TYPES = { A: 1, NS: 2, CNAME: 5, SOA: 6, MX: 15, TXT: 16, AAAA: 28 } as const;
export type DnsTypeName = keyof typeof DNS_TYPES;
const CLASS_IN = 1;
const HEADER_LEN = 12;
const MAX_LABEL = 63;
const MAX_NAME = 255;

export interface DnsQuestion {
  readonly name: string;
  readonly type: number;
  readonly class: number;
}

export interface DnsHeader {
  readonly id: number;
  /** QR: true for a response */
  readonly response: boolean;
  readonly opcode: number;
  readonly recursionDesired: boolean;
  /** RCODE (0 = NOERROR, 3 = NXDOMAIN ...) */
  readonly rcode: number;
  readonly qdcount: number;
  readonly ancount: number;
  readonly nscount: number;
  readonly arcount: number;
}

export interface DnsQuery {
  readonly id: number;
  readonly name: string;
  readonly type: DnsTypeName;
  readonly recursionDesired: boolean;
}

export type DnsErrorCode = 'truncated' | 'bad-name' | 'label-too-long' | 'name-too-long' | 'bad-pointer';
export interface DnsError {
  readonly code: DnsErrorCode;
  readonly message: string;
}

const fail = (code: DnsErrorCode, message: string) => err<DnsError>({ code, message });

/** Labels of a name; `.` and `` are the root; a trailing dot is allowed. */
function labels(name: string): Result<string[], DnsError> {
  if (name === '' || name === '.') return ok([]);
  const parts = (name.endsWith('.') ? name.slice(0, -1) : name).split('.');
  let total = 1;
  for (const p of parts) {
    if (p.length === 0) return fail('bad-name', `empty label in ${JSON.stringify(name)}`);
    if (Buffer.byteLength(p) > MAX_LABEL) return fail('label-too-long', `label longer than ${MAX_LABEL} octets`);
    total += Buffer.byteLength(p) + 1;
  }
  if (total > MAX_NAME) return fail('name-too-long', `name longer than ${MAX_NAME} octets`);
  return ok(parts);
}

export function encodingLength(q: DnsQuery): number {
  const l = labels(q.name);
  if (!l.ok) return 0;
  return HEADER_LEN + l.value.reduce((n, p) => n + 1 + Buffer.byteLength(p), 1) + 4;
}

/** A standard query with one question of class IN (RFC 1035 §4.1.1, §4.1.2). */
export function encodeQuery(q: DnsQuery): Result<Uint8Array, DnsError> {
  const l = labels(q.name);
  if (!l.ok) return l;
  const buf = Buffer.alloc(encodingLength(q));
  buf.writeUInt16BE(q.id & 0xffff, 0);
  buf.writeUInt16BE(q.recursionDesired ? 0x0100 : 0, 2); // RD
  buf.writeUInt16BE(1, 4); // QDCOUNT
  let off = HEADER_LEN;
  for (const p of l.value) {
    const len = buf.write(p, off + 1, 'utf8');
    buf[off] = len;
    off += 1 + len;
  }
  buf[off++] = 0;
  buf.writeUInt16BE(DNS_TYPES[q.type], off);
  buf.writeUInt16BE(CLASS_IN, off + 2);
  return ok(buf);
}

export function decodeHeader(msg: Uint8Array): Result<DnsHeader, DnsError> {
  if (msg.length < HEADER_LEN) return fail('truncated', `message of ${msg.length} octets, header needs ${HEADER_LEN}`);
  const b = Buffer.from(msg.buffer, msg.byteOffset, msg.length);
  const flags = b.readUInt16BE(2);
  return ok({
    id: b.readUInt16BE(0),
    response: (flags & 0x8000) !== 0,
    opcode: (flags >> 11) & 0xf,
    recursionDesired: (flags & 0x0100) !== 0,
    rcode: flags & 0xf,
    qdcount: b.readUInt16BE(4),
    ancount: b.readUInt16BE(6),
    nscount: b.readUInt16BE(8),
    arcount: b.readUInt16BE(10),
  });
}

/** Reads a (possibly compressed, RFC 1035 §4.1.4) name at `off`; returns it and the offset after it. */
function readName(b: Buffer, off: number): Result<{ name: string; next: number }, DnsError> {
  const parts: string[] = [];
  let next = -1;
  let jumps = 0;
  for (;;) {
    if (off >= b.length) return fail('truncated', 'name runs past the message');
    const len = b[off];
    if ((len & 0xc0) === 0xc0) {
      if (off + 1 >= b.length) return fail('truncated', 'pointer runs past the message');
      if (++jumps > 32) return fail('bad-pointer', 'compression pointer loop');
      if (next < 0) next = off + 2;
      off = ((len & 0x3f) << 8) | b[off + 1];
      continue;
    }
    if (len & 0xc0) return fail('bad-name', `reserved label type 0x${len.toString(16)}`);
    if (len === 0) {
      const name = parts.length ? parts.join('.') : '.';
      return ok({ name, next: next < 0 ? off + 1 : next });
    }
    if (off + 1 + len > b.length) return fail('truncated', 'label runs past the message');
    parts.push(b.toString('utf8', off + 1, off + 1 + len));
    off += 1 + len;
  }
}

/** The header and the first question of a message. */
export function decodeQuestion(msg: Uint8Array): Result<{ header: DnsHeader; question: DnsQuestion }, DnsError> {
  const h = decodeHeader(msg);
  if (!h.ok) return h;
  if (h.value.qdcount < 1) return fail('truncated', 'no question');
  const b = Buffer.from(msg.buffer, msg.byteOffset, msg.length);
  const n = readName(b, HEADER_LEN);
  if (!n.ok) return n;
  if (n.value.next + 4 > b.length) return fail('truncated', 'question type/class missing');
  return ok({
    header: h.value,
    question: { name: n.value.name, type: b.readUInt16BE(n.value.next), class: b.readUInt16BE(n.value.next + 2) },
  });
}
