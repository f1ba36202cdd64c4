/**
 * The connection table kept from conntrack events (NFNLGRP_CONNTRACK_NEW, _UPDATE, _DESTROY), so
 * that the kernel plane's read each second costs the changes since the last one, not the table. At
 * 1,000 connections/s a director holds 120,000 TIME_WAIT entries, and a full read of them took
 * about as long as the loop's period (docs/kernel-plane.md); events are a few per connection.
 *
 * A full dump (ctnetlink.ts) fills the table at the first read, after the socket lost events
 * (ENOBUFS: the kernel dropped some for a full receive buffer), and every RESYNC_MS: entries made
 * before the subscription carry no event cache and never report their end (nf_conntrack_events=2
 * attaches it only while someone listens), and packets refresh timeouts without an event. Events
 * that arrive during a dump are applied over it, the later protocol state winning where both saw
 * one entry (the dump reads each bucket at its own moment).
 *
 * Events cost per connection (about five messages the kernel builds in the packet path, each read
 * and decoded here), dumps per entry held. They are followed only while a decision needs each
 * connection counted as it happens (the plane asks: a counting scheduler, a threshold); otherwise
 * the table is kept by dumps alone, as often as the counter refresh allows (followEvents).
 */
import { type CtEntry, type CtEvent, type CtWanted, decodeConntrackEvents, stateRank } from '../codec/conntrack.js';
import type { Family } from '../config/model.js';
import type { ConntrackPort, CtService, ListHint } from './conntrack.js';
import { openConntrackEventSocket } from './conntrack-events.js';
import {
  attachSocketFilter,
  errno,
  type Libc,
  loadLibc,
  type NativeBuffer,
  nativeBuffer,
  recvmmsgCall,
  type SockFilter,
} from './libc.js';

// enum nfnetlink_groups
const NFNLGRP_CONNTRACK_NEW = 1;
const NFNLGRP_CONNTRACK_UPDATE = 2;
const NFNLGRP_CONNTRACK_DESTROY = 3;
const EAGAIN = 11;
const ENOBUFS = 105;
const MSG_DONTWAIT = 0x40;
const MSG_TRUNC = 0x20;
/** event messages per recvmmsg call, and room for each (an event is a few hundred bytes) */
const SLOTS = 64;
const SLOT = 8192;
const MMSGHDR = 64;
/** a full dump this often, and the table as it is in the kernel again */
export const RESYNC_MS = 30_000;
/**
 * With --stats from conntrack accounting the live connections' counters come only with a dump, and
 * without events so do the connections themselves: one each poll (the rates are read each second),
 * or 20 times the last dump's duration on a large table (the dumps then take at most 5% of the
 * time), at most RESYNC_MS.
 */
export const COUNTER_REFRESH_MS = 1000;
/** about 5 s of events at 10,000 new connections/s */
const RCVBUF = 64 << 20;
/**
 * The event socket is read this often, not at each wake-up: read as they came, events woke this
 * worker more than once per two connections (7,400 context switches a second at 13,000
 * connections/s, 2026-12-03), a fifth of its time in the scheduler. The queue holds far more.
 */
export const EVENT_DRAIN_MS = 50;
/**
 * A dump this quick can be made at each counter refresh (5% of it): events, a few per connection,
 * then buy no fresher counts. Once events are followed, dumps must get quicker than 70% of it before
 * they alone keep the table again, so a table near the bound does not switch at each dump.
 */
export const DUMP_KEEPS_UP_MS = COUNTER_REFRESH_MS / 20;
/** timers fire late by a millisecond or so: a dump due within this is done now, not a period later */
export const TIMER_SLACK_MS = 20;

/** What the watch needs besides its event socket: a full read of the table (and the plane's other conntrack needs). */
export type ConntrackDump = ConntrackPort;

interface Held {
  entry: CtEntry;
  /** when the entry's timeout was read (ms, the injected clock) */
  at: number;
}

const keyOf = (e: CtEntry) =>
  `${e.family}|${e.protocol}|${e.original.src}|${e.original.sport}|${e.original.dst}|${e.original.dport}`;

/** TCP's last states: such an entry's counters and state no longer change, it only expires */
const settled = (e: CtEntry) => e.protocol === 'tcp' && (e.state === 'TIME_WAIT' || e.state === 'CLOSE');

const sameTuple = (a: CtEntry['reply'], b: CtEntry['reply']) =>
  a.src === b.src && a.dst === b.dst && a.sport === b.sport && a.dport === b.dport;

/**
 * `e` with the tuple objects of `was`, the same entry read before, where they hold the same values:
 * the plane keeps what it derives from an entry by its tuple object (plane.ts keyMemo), so a new
 * read of an unchanged connection costs it nothing.
 */
function sameTuples(e: CtEntry, was: CtEntry | undefined): CtEntry {
  if (!was || was.original === e.original) return e;
  if (!sameTuple(was.original, e.original) || !sameTuple(was.reply, e.reply)) return e;
  return { ...e, original: was.original, reply: was.reply };
}

/**
 * Opens (true) or closes (false) the event subscription feeding the table: null when done, else why
 * not (the table is then kept by dumps).
 */
export type EventSubscription = (on: boolean) => string | null;

/** The table from events over `dump`: events are fed by the socket (open) or a test (apply). */
export class ConntrackTable implements ConntrackPort {
  private held = new Map<string, Held>();
  private lastSync = Number.NEGATIVE_INFINITY;
  /** set by a lost event: the next read starts with a dump */
  private stale = true;
  /** events met while a dump runs, applied over its result */
  private duringDump: CtEvent[] | null = null;
  private syncing: Promise<void> | null = null;
  /** --stats from conntrack accounting: dumps bring the live counters */
  private counting = false;
  private lastDumpMs = 0;
  /** events arrive (a test applies them by hand: always), else the table is kept by dumps alone */
  private following: boolean;
  /** the last list's entries were all settled (TCP TIME_WAIT, CLOSE), for the `wanted` in settledFor */
  private settledRead = false;
  private settledFor: CtWanted | undefined;
  /** dumps that were due and spared by a quiet table (ListHint.noNewFlows) */
  quietReads = 0;

  constructor(
    private readonly dump: ConntrackDump,
    private readonly now: () => number = Date.now,
    /** reads what the socket has queued (events arrive between reads too) */
    private readonly pending: () => void = () => {},
    /** closes the sockets behind this table */
    private readonly closeSockets: () => void = () => {},
    /** the event socket on demand (absent: events are applied by the caller) */
    private readonly subscribe?: EventSubscription,
  ) {
    this.following = subscribe === undefined;
  }

  /**
   * Follows conntrack's events (on) or keeps the table by dumps alone (off). Turning them on, the
   * next read dumps: what came before the subscription is known only from a dump. Null when the
   * table now does as asked, else why not.
   */
  followEvents(on: boolean): string | null {
    if (on === this.following || !this.subscribe) return null;
    const why = this.subscribe(on);
    if (why !== null) return why;
    this.following = on;
    if (on) this.stale = true;
    return null;
  }

  dumpsKeepUp(): boolean {
    return this.lastDumpMs <= (this.following ? 0.7 : 1) * DUMP_KEEPS_UP_MS;
  }

  /** how long the last dump took (ms) */
  get lastDumpDuration(): number {
    return this.lastDumpMs;
  }

  /** events arrive (else dumps alone keep the table) */
  get followingEvents(): boolean {
    return this.following;
  }

  close(): void {
    this.closeSockets();
    this.dump.close?.();
  }

  /** The kernel dropped events (ENOBUFS): what is held may be wrong until the next dump. */
  lost(): void {
    this.stale = true;
  }

  apply(events: readonly CtEvent[]): void {
    if (this.duringDump) this.duringDump.push(...events);
    for (const ev of events) this.applyOne(this.held, ev, false);
  }

  private applyOne(into: Map<string, Held>, ev: CtEvent, overDump: boolean): void {
    const k = keyOf(ev.entry);
    if (ev.kind === 'destroy') {
      into.delete(k);
      return;
    }
    const was = into.get(k);
    let entry = sameTuples(ev.entry, was?.entry);
    // an update without the protocol state (a mark, a timeout) keeps the state held
    if (!ev.hasState && was) entry = { ...entry, state: was.entry.state };
    // only a dump or the destroy event carries the counters: an update keeps the last ones read
    if (!entry.counters && was?.entry.counters) entry = { ...entry, counters: was.entry.counters };
    // over a dump: the dump may have read the entry after this event
    if (overDump && was && stateRank(was.entry) > stateRank(entry)) return;
    into.set(k, { entry, at: this.now() });
  }

  async list(wanted?: CtWanted, hint?: ListHint): Promise<CtEntry[]> {
    this.pending();
    // a poll timer's tick one period after the last dump started is due (not a period after it ended)
    const due = this.stale || this.now() - this.lastSync >= this.resyncMs() - TIMER_SLACK_MS;
    // nothing began since a read that held only settled entries (a director between bursts, or one
    // whose NAT traffic moved to DR): what is held is the table, but for expiries, up to RESYNC_MS
    const quiet =
      !this.stale &&
      hint?.noNewFlows === true &&
      this.settledRead &&
      this.settledFor === wanted &&
      this.now() - this.lastSync < RESYNC_MS - TIMER_SLACK_MS;
    if (due && !quiet) await this.resync();
    else if (due) this.quietReads++;
    const now = this.now();
    const out: CtEntry[] = [];
    for (const [k, h] of this.held) {
      const left = h.entry.timeout - Math.floor((now - h.at) / 1000);
      // gone by its timeout: an entry without an event cache tells nobody (the next dump agrees)
      if (left < 0) {
        this.held.delete(k);
        continue;
      }
      const e = h.entry;
      if (wanted && !wanted(e.family, e.original.dst)) continue;
      out.push(left === e.timeout ? e : { ...e, timeout: left });
    }
    this.settledRead = out.every(settled);
    this.settledFor = wanted;
    return out;
  }

  /** The kernel's entries read now (a held entry's timeout is as old as its last event or dump). */
  listFresh(wanted?: CtWanted): Promise<CtEntry[]> {
    return this.dump.list(wanted);
  }

  /**
   * The table read now, synchronously (ipvsadm -Z: the counters at that moment), which also becomes
   * the table held; without a synchronous reader, what is held.
   */
  listSync(wanted?: CtWanted): CtEntry[] {
    this.pending();
    const read = this.dump.listSync?.();
    if (read) {
      const at = this.now();
      this.held = new Map(read.map((entry) => [keyOf(entry), { entry, at }]));
    }
    const out: CtEntry[] = [];
    const now = this.now();
    for (const h of this.held.values()) {
      const left = h.entry.timeout - Math.floor((now - h.at) / 1000);
      if (left < 0 || (wanted && !wanted(h.entry.family, h.entry.original.dst))) continue;
      out.push(left === h.entry.timeout ? h.entry : { ...h.entry, timeout: left });
    }
    return out;
  }

  private resyncMs(): number {
    return this.counting || !this.following
      ? Math.min(RESYNC_MS, Math.max(COUNTER_REFRESH_MS, 20 * this.lastDumpMs))
      : RESYNC_MS;
  }

  private resync(): Promise<void> {
    this.syncing ??= this.resyncOnce().finally(() => {
      this.syncing = null;
    });
    return this.syncing;
  }

  private async resyncOnce(): Promise<void> {
    this.stale = false;
    this.duringDump = [];
    let entries: CtEntry[];
    const started = this.now();
    try {
      entries = await this.dump.list();
      this.lastDumpMs = this.now() - started;
    } catch (e) {
      this.stale = true;
      throw e;
    } finally {
      // events read while the dump ran, the socket's last ones too
      this.pending();
    }
    const during = this.duringDump ?? [];
    this.duringDump = null;
    const at = this.now();
    const next = new Map<string, Held>();
    for (const entry of entries) {
      const k = keyOf(entry);
      next.set(k, { entry: sameTuples(entry, this.held.get(k)?.entry), at });
    }
    for (const ev of during) this.applyOne(next, ev, true);
    this.held = next;
    this.lastSync = started;
  }

  /** entries held now (memory, tests) */
  get size(): number {
    return this.held.size;
  }

  flushDest(address: string, port: number, protocol: string, family: Family, service?: CtService): Promise<void> {
    return this.dump.flushDest(address, port, protocol, family, service);
  }

  countConnections(): string | null {
    const why = this.dump.countConnections ? this.dump.countConnections() : 'not offered';
    this.counting = why === null;
    return why;
  }

  drainDestroyed(): CtEntry[] {
    return this.dump.drainDestroyed?.() ?? [];
  }
}

// classic BPF (linux/filter.h, bpf_common.h)
const LD_H_ABS = 0x28;
const LD_W_ABS = 0x20;
const LD_B_IND = 0x50;
const LD_IMM = 0x00;
const LDX_IMM = 0x01;
const JEQ_K = 0x15;
const JSET_K = 0x45;
const TAX = 0x07;
const RET_K = 0x06;
/** SKF_AD_OFF + SKF_AD_NLATTR / SKF_AD_NLATTR_NEST: A = the offset of attribute X from offset A, or 0 */
const AD_NLATTR = 0xfffff000 + 12;
const AD_NLATTR_NEST = 0xfffff000 + 16;
/** TCP states whose update events the table does without (enum tcp_conntrack) */
export const SKIPPED_TCP_STATES = { SYN_RECV: 2, LAST_ACK: 6 } as const;

/**
 * A socket filter that drops the update events of TCP entries entering SYN_RECV or LAST_ACK
 * before the kernel queues them: both last about a round trip, IPVS names SYN_SENT and SYN_RECV
 * alike, and neither changes ActiveConn/InActConn (only ESTABLISHED is active), so the table keeps
 * the state before (SYN_SENT, CLOSE_WAIT) until the next event or dump. A short connection makes
 * about eight events (new, SYN_RECV, ESTABLISHED, FIN_WAIT, CLOSE_WAIT, LAST_ACK, TIME_WAIT,
 * destroy), each a recv and a decode in this worker: two fewer. New entries (NLM_F_CREATE),
 * destroys and updates without a TCP state pass.
 */
export function updateFilter(): SockFilter[] {
  const i = (code: number, k: number, jt = 0, jf = 0): SockFilter => ({ code, jt, jf, k });
  // message layout: nlmsghdr (type at 4, flags at 6, host order: loaded big-endian, so byte-swapped), nfgenmsg, attributes at 20
  return [
    i(LD_H_ABS, 4), // 0: nlmsg_type
    i(JEQ_K, 0x0001, 0, 16), // 1: (NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_NEW) swapped, else accept
    i(LD_H_ABS, 6), // 2: nlmsg_flags
    i(JSET_K, 0x0004, 14, 0), // 3: NLM_F_CREATE (0x400) swapped: a new entry, accept
    i(LD_IMM, 20), // 4
    i(LDX_IMM, 4), // 5: CTA_PROTOINFO
    i(LD_W_ABS, AD_NLATTR), // 6
    i(JEQ_K, 0, 10, 0), // 7: none: accept
    i(LDX_IMM, 1), // 8: CTA_PROTOINFO_TCP
    i(LD_W_ABS, AD_NLATTR_NEST), // 9
    i(JEQ_K, 0, 7, 0), // 10
    i(LDX_IMM, 1), // 11: CTA_PROTOINFO_TCP_STATE
    i(LD_W_ABS, AD_NLATTR_NEST), // 12
    i(JEQ_K, 0, 4, 0), // 13
    i(TAX, 0), // 14
    i(LD_B_IND, 4), // 15: the state byte after the attribute header
    i(JEQ_K, SKIPPED_TCP_STATES.SYN_RECV, 2, 0), // 16: drop
    i(JEQ_K, SKIPPED_TCP_STATES.LAST_ACK, 1, 0), // 17: drop
    i(RET_K, 0xffffffff), // 18: accept
    i(RET_K, 0), // 19: drop
  ];
}

/** The event socket: NETLINK_NETFILTER joined to the three conntrack groups, non-blocking. */
export class ConntrackEvents {
  private readonly buf = Buffer.alloc(256 * 1024);
  private handle: { close(): void } | null = null;
  /** the update filter is attached (else every event comes, as before) */
  filtered = false;
  /** events are read by recvmmsg, SLOTS a call (else one recv each) */
  batched = false;

  private constructor(
    private readonly libc: Libc,
    private readonly fd: number,
  ) {}

  /** `filter`: the update filter (updateFilter); off only to compare with it (tests) */
  static open(filter = true): ConntrackEvents | string {
    const libc = loadLibc();
    if (!libc) return 'no libc through koffi';
    const fd = openConntrackEventSocket(
      libc,
      [NFNLGRP_CONNTRACK_NEW, NFNLGRP_CONNTRACK_UPDATE, NFNLGRP_CONNTRACK_DESTROY],
      RCVBUF,
      false,
    );
    if (typeof fd === 'string') return fd;
    const ev = new ConntrackEvents(libc, fd);
    ev.filtered = filter && attachSocketFilter(fd, updateFilter());
    return ev;
  }

  /**
   * Each event is a datagram of its own: one recvmmsg takes up to SLOTS of them (one recv each
   * cost a native call per event, most of this worker's time per new connection). Null without it.
   */
  private batch(): {
    data: NativeBuffer;
    iov: NativeBuffer;
    vec: Buffer;
    call: NonNullable<ReturnType<typeof recvmmsgCall>>;
  } | null {
    const call = recvmmsgCall();
    if (!call) return null;
    const data = nativeBuffer(SLOTS * SLOT);
    const iov = nativeBuffer(SLOTS * 16);
    const iovs = Buffer.from(iov.bytes.buffer, iov.bytes.byteOffset, SLOTS * 16);
    const vec = Buffer.alloc(SLOTS * MMSGHDR);
    for (let i = 0; i < SLOTS; i++) {
      iovs.writeBigUInt64LE(data.address + BigInt(i * SLOT), i * 16);
      iovs.writeBigUInt64LE(BigInt(SLOT), i * 16 + 8);
      // struct msghdr: no name, one iovec, no control
      vec.writeBigUInt64LE(iov.address + BigInt(i * 16), i * MMSGHDR + 16);
      vec.writeBigUInt64LE(1n, i * MMSGHDR + 24);
    }
    this.natives.push(data, iov);
    return { data, iov, vec, call };
  }

  private readonly natives: NativeBuffer[] = [];

  /** Reads what is queued into `table`; from then on whenever the socket is readable. */
  feed(table: ConntrackTable): () => void {
    const b = this.batch();
    this.batched = b !== null;
    /** After a read returned nothing: true to read again (events were lost: the table resyncs by a dump). */
    const readAgain = (): boolean => {
      const e = errno();
      if (e === EAGAIN) return false;
      table.lost();
      return e === ENOBUFS;
    };
    // one view of every slot, made once: a view per message cost an allocation per event
    const slots = b ? Buffer.from(b.data.bytes.buffer, b.data.bytes.byteOffset, SLOTS * SLOT) : null;
    const readBatched = (events: CtEvent[], bb: NonNullable<typeof b>, all: Buffer) => {
      for (;;) {
        const n = bb.call(this.fd, bb.vec, SLOTS, MSG_DONTWAIT);
        if (n > 0) {
          for (let i = 0; i < n; i++) {
            const len = bb.vec.readUInt32LE(i * MMSGHDR + 56);
            // a message longer than its slot is lost: the table is resynced by a dump
            if (bb.vec.readInt32LE(i * MMSGHDR + 48) & MSG_TRUNC) table.lost();
            else decodeConntrackEvents(all, events, i * SLOT, i * SLOT + Math.min(len, SLOT));
          }
          if (n === SLOTS) continue;
          break;
        }
        if (n < 0 && readAgain()) continue;
        break;
      }
    };
    const read = () => {
      const events: CtEvent[] = [];
      if (b && slots) {
        readBatched(events, b, slots);
        if (events.length) table.apply(events);
        return;
      }
      for (;;) {
        const n = Number(this.libc.recv(this.fd, this.buf, this.buf.length, 0));
        if (n > 0) {
          decodeConntrackEvents(this.buf.subarray(0, n), events);
          continue;
        }
        if (n < 0 && readAgain()) continue;
        break;
      }
      if (events.length) table.apply(events);
    };
    const timer = setInterval(read, EVENT_DRAIN_MS);
    timer.unref();
    this.handle = { close: () => clearInterval(timer) };
    return read;
  }

  close(): void {
    this.handle?.close();
    this.handle = null;
    this.libc.close(this.fd);
    for (const n of this.natives) n.free();
    this.natives.length = 0;
  }
}
