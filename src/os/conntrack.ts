/**
 * The kernel's connection table as the kernel plane reads it: /proc/net/nf_conntrack of this
 * network namespace, parsed (facts §3.2: about 5 µs per entry, no child process), and
 * `conntrack -D` for expire_nodest_conn (conntrack-tools, as LVS's sysctl resets the flows).
 */
import { readFile } from 'node:fs/promises';
import type { CtEntry, CtTuple, CtWanted } from '../codec/conntrack.js';
import type { Family } from '../config/model.js';
import { canonicalAddress } from '../util/address.js';
import type { ProcessRunner } from '../util/ports.js';

export type { CtEntry, CtTuple, CtWanted };

/**
 * Canonical text of an address as the kernel prints it (IPv6 in full, `%pI6`), memoized: a table
 * holds thousands of entries but few distinct addresses (clients, VIPs, real servers, local
 * addresses), and parsing each with ipaddr.js was most of the read's cost (about 29 µs an entry,
 * 23,000 entries under bench/kernel-plane.sh's load).
 */
const canonCache = new Map<string, string>();
function canon(text: string, family: Family): string {
  let c = canonCache.get(text);
  if (c === undefined) {
    c = canonicalAddress(text, family) ?? text;
    if (canonCache.size >= 8192) canonCache.clear();
    canonCache.set(text, c);
  }
  return c;
}

const SP = 32;
const TAB = 9;
/** The first index at or after `i` that is not a blank. */
function blanks(s: string, i: number, end: number): number {
  while (i < end && (s.charCodeAt(i) === SP || s.charCodeAt(i) === TAB)) i++;
  return i;
}
/** The end of the word starting at `i`. */
function word(s: string, i: number, end: number): number {
  while (i < end && s.charCodeAt(i) !== SP && s.charCodeAt(i) !== TAB) i++;
  return i;
}
const TUPLE_KEYS = ['src=', 'dst=', 'sport=', 'dport='] as const;

/**
 * One entry of /proc/net/nf_conntrack, the line `s[from, end)`, or null (also when `wanted` rejects
 * its original destination: the rest of the line is then not parsed). The line: `ipv4 2 tcp 6
 * TIMEOUT [STATE] src= dst= sport= dport= ... src= dst= sport= dport= ... mark= zone= use=`
 * (nf_conntrack_standalone.c ct_seq_show). Scanned in place by index: a table under load holds tens
 * of thousands of entries, read every second (facts §3.2).
 */
function parseEntry(s: string, from: number, end: number, wanted?: CtWanted): CtEntry | null {
  let i = blanks(s, from, end);
  const family: Family = s.startsWith('ipv6', i) ? 6 : 4;
  i = blanks(s, word(s, i, end), end); // the family's number
  i = blanks(s, word(s, i, end), end);
  let e = word(s, i, end);
  const protocol = s.slice(i, e);
  i = blanks(s, word(s, blanks(s, e, end), end), end); // the protocol's number
  e = word(s, i, end);
  if (e === i) return null;
  const timeout = Number(s.slice(i, e));
  i = blanks(s, e, end);
  e = word(s, i, end);
  let state = '';
  const eq = s.indexOf('=', i);
  if (eq < 0 || eq >= e) {
    state = s.slice(i, e);
    i = blanks(s, e, end);
  }
  // two tuples of src dst sport dport, in that order in each
  const v: (string | undefined)[] = [
    undefined,
    undefined,
    undefined,
    undefined,
    undefined,
    undefined,
    undefined,
    undefined,
  ];
  let tuples = 0;
  while (i < end) {
    e = word(s, i, end);
    let at = -1;
    for (let k = 0; k < 4; k++)
      if (s.startsWith(TUPLE_KEYS[k], i)) {
        at = k;
        break;
      }
    if (at < 0) {
      if (s.startsWith('mark=', i) || s.startsWith('zone=', i) || s.startsWith('use=', i)) break;
    } else {
      if (at === 0) {
        if (tuples === 2) break;
        tuples++;
      }
      if (tuples > 0) {
        const val = s.slice(i + TUPLE_KEYS[at].length, e);
        v[(tuples - 1) * 4 + at] = val;
        if (at === 1 && tuples === 1 && wanted && !wanted(family, canon(val, family))) return null;
      }
    }
    i = blanks(s, e, end);
  }
  if (tuples < 2 || v[0] === undefined || v[4] === undefined) return null;
  const t = (b: number): CtTuple => ({
    src: canon(v[b] as string, family),
    dst: v[b + 1] === undefined ? '' : canon(v[b + 1] as string, family),
    sport: Number(v[b + 2] ?? 0),
    dport: Number(v[b + 3] ?? 0),
  });
  return { family, protocol, state, timeout, original: t(0), reply: t(4) };
}

/** One line of /proc/net/nf_conntrack, or null (or not `wanted`, by its original destination). */
export function parseConntrackLine(line: string, wanted?: CtWanted): CtEntry | null {
  return parseEntry(line, 0, line.length, wanted);
}

/** Every entry of the table's text (the ones `wanted` accepts). */
export function parseConntrack(text: string, wanted?: CtWanted): CtEntry[] {
  const out: CtEntry[] = [];
  for (let from = 0; from < text.length; ) {
    let to = text.indexOf('\n', from);
    if (to < 0) to = text.length;
    const e = to > from ? parseEntry(text, from, to, wanted) : null;
    if (e) out.push(e);
    from = to + 1;
  }
  return out;
}

export interface ConntrackPort {
  /** the table's entries; with `wanted`, only those it accepts (the others are not parsed) */
  list(wanted?: CtWanted): Promise<CtEntry[]>;
  /**
   * drops the flows answered by `address:port` (expire_nodest_conn); with `service`, only those sent
   * to it (the same real server may serve other services, whose flows must stay)
   */
  flushDest(address: string, port: number, protocol: string, family: Family, service?: CtService): Promise<void>;
  /** the reader's sockets closed (the plane stopped) */
  close?(): void;
}

/** A service's address and port (0: any) as the original direction of its flows holds them. */
export interface CtService {
  readonly address: string;
  readonly port: number;
}

export class ProcConntrack implements ConntrackPort {
  constructor(
    private readonly runner: ProcessRunner,
    private readonly path = '/proc/net/nf_conntrack',
  ) {}

  async list(wanted?: CtWanted): Promise<CtEntry[]> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch {
      return [];
    }
    return parseConntrack(text, wanted);
  }

  async flushDest(address: string, port: number, protocol: string, family: Family, service?: CtService): Promise<void> {
    const argv = ['conntrack', '-D', `-f`, family === 6 ? 'ipv6' : 'ipv4', '-p', protocol, '--reply-src', address];
    const ports = protocol === 'tcp' || protocol === 'udp' || protocol === 'sctp';
    if (port !== 0 && ports) argv.push('--reply-port-src', String(port));
    if (service) {
      argv.push('--orig-dst', service.address);
      if (service.port !== 0 && ports) argv.push('--orig-port-dst', String(service.port));
    }
    await this.runner.run(argv, { timeoutMs: 5000 });
  }
}
