/**
 * The kernel's connection table as the kernel plane reads it: /proc/net/nf_conntrack of this
 * network namespace, parsed (facts §3.2: about 5 µs per entry, no child process), and
 * `conntrack -D` for expire_nodest_conn (conntrack-tools, as LVS's sysctl resets the flows).
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { CtCounters, CtEntry, CtTuple, CtWanted } from '../codec/conntrack.js';
import type { Family } from '../config/model.js';
import { canonicalAddress } from '../util/address.js';
import type { ProcessRunner } from '../util/ports.js';
import { ConntrackDestroyEvents, enableConntrackAccounting } from './conntrack-events.js';

export type { CtCounters, CtEntry, CtTuple, CtWanted };

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
  // packets= bytes= after each tuple's ports (nf_conntrack_standalone.c seq_print_acct)
  const acct = [-1, -1, -1, -1];
  while (i < end) {
    e = word(s, i, end);
    if (tuples > 0 && s.charCodeAt(i) === 0x70 /* p */ && s.startsWith('packets=', i)) {
      acct[(tuples - 1) * 2] = Number(s.slice(i + 8, e));
      i = blanks(s, e, end);
      continue;
    }
    if (tuples > 0 && s.charCodeAt(i) === 0x62 /* b */ && s.startsWith('bytes=', i)) {
      acct[(tuples - 1) * 2 + 1] = Number(s.slice(i + 6, e));
      i = blanks(s, e, end);
      continue;
    }
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
  const entry = { family, protocol, state, timeout, original: t(0), reply: t(4) };
  if (acct[0] < 0 || acct[2] < 0) return entry;
  return {
    ...entry,
    counters: {
      origPackets: acct[0],
      origBytes: Math.max(0, acct[1]),
      replyPackets: acct[2],
      replyBytes: Math.max(0, acct[3]),
    },
  };
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

/** What the caller knows that may spare a read of the kernel's table. */
export interface ListHint {
  /**
   * No flow of the `wanted` entries began since the last read (the caller counts each new flow: the
   * kernel plane's st_new counters): a table read then whose every such entry was settled (TCP
   * TIME_WAIT or CLOSE, which only expire) is still the kernel's, less what expired.
   */
  readonly noNewFlows?: boolean;
}

export interface ConntrackPort {
  /** the table's entries; with `wanted`, only those it accepts (the others are not parsed) */
  list(wanted?: CtWanted, hint?: ListHint): Promise<CtEntry[]>;
  /**
   * the entries as the kernel holds them now (their timeouts as packets last refreshed them); absent:
   * `list` reads the kernel each time already
   */
  listFresh?(wanted?: CtWanted): Promise<CtEntry[]>;
  /** the same, read synchronously (ipvsadm -Z: the counters at that moment) */
  listSync?(wanted?: CtWanted): CtEntry[];
  /**
   * drops the flows answered by `address:port` (expire_nodest_conn); with `service`, only those sent
   * to it (the same real server may serve other services, whose flows must stay)
   */
  flushDest(address: string, port: number, protocol: string, family: Family, service?: CtService): Promise<void>;
  /**
   * Per-connection counters from here on: nf_conntrack_acct on and the destroy events subscribed.
   * null when both hold, else why not (the plane then counts with nft rules).
   */
  countConnections?(): string | null;
  /**
   * Follows conntrack's events (on: each connection counted as it happens, at a cost per
   * connection) or keeps the table by dumps (off: a cost per entry held, at most 5% of the time).
   * Null when done, else why not. Absent: the reader has one way only.
   */
  followEvents?(on: boolean): string | null;
  /**
   * A dump of the table is quick enough to be made at each counter refresh (at most 5% of the
   * time): the counts it gives are then as live as events would keep them, without their cost per
   * connection. Absent: unknown.
   */
  dumpsKeepUp?(): boolean;
  /** The entries destroyed since the last call, with their last counters (never blocks). */
  drainDestroyed?(): CtEntry[];
  /**
   * Closes the reader's sockets (the plane stopped). With reliable delivery an undrained destroy
   * subscription makes the kernel hold every destroyed entry for it, so it must not outlive its reader.
   */
  close?(): void;
}

/** A service's address and port (0: any) as the original direction of its flows holds them. */
export interface CtService {
  readonly address: string;
  readonly port: number;
  /** one connection only: its client's address and port */
  readonly client?: { readonly address: string; readonly port: number };
}

export class ProcConntrack implements ConntrackPort {
  private events: ConntrackDestroyEvents | null = null;

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

  listSync(wanted?: CtWanted): CtEntry[] {
    try {
      return parseConntrack(readFileSync(this.path, 'utf8'), wanted);
    } catch {
      return [];
    }
  }

  async flushDest(address: string, port: number, protocol: string, family: Family, service?: CtService): Promise<void> {
    const argv = ['conntrack', '-D', `-f`, family === 6 ? 'ipv6' : 'ipv4', '-p', protocol, '--reply-src', address];
    const ports = protocol === 'tcp' || protocol === 'udp' || protocol === 'sctp';
    if (port !== 0 && ports) argv.push('--reply-port-src', String(port));
    if (service) {
      argv.push('--orig-dst', service.address);
      if (service.port !== 0 && ports) argv.push('--orig-port-dst', String(service.port));
      if (service.client) {
        argv.push('--orig-src', service.client.address);
        if (ports) argv.push('--orig-port-src', String(service.client.port));
      }
    }
    await this.runner.run(argv, { timeoutMs: 5000 });
  }

  countConnections(): string | null {
    if (this.events) return null;
    if (process.env.KEEPVS_CT_ACCT === '0') return 'off (KEEPVS_CT_ACCT=0)';
    const acct = enableConntrackAccounting();
    if (acct) return acct;
    const ev = ConntrackDestroyEvents.open();
    if (typeof ev === 'string') return `conntrack destroy events: ${ev}`;
    this.events = ev;
    return null;
  }

  drainDestroyed(): CtEntry[] {
    return this.events ? this.events.drain() : [];
  }

  close(): void {
    this.events?.close();
    this.events = null;
  }
}
