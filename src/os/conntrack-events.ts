/**
 * The kernel's conntrack destroy events, for ipvsadm's --stats from per-connection accounting
 * (nf_conntrack_acct): a connection's packets and bytes live in its entry while it exists
 * (/proc/net/nf_conntrack), and arrive here with the entry's last counts when it goes.
 * Reliable delivery (NETLINK_BROADCAST_ERROR, as conntrackd's NetlinkEventsReliable): when this
 * socket's queue is full the kernel keeps the entry and delivers its event again later
 * (nf_conntrack_core.c nf_ct_delete, the ecache redelivery), so no entry's counts are lost; only
 * late. Drained without blocking by the plane's poll.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { type CtEntry, type CtEvent, decodeConntrackEvents } from '../codec/conntrack.js';
import { errno, errnoName, intOption, type Libc, loadLibc, SOL_SOCKET } from './libc.js';

const AF_NETLINK = 16;
const NETLINK_NETFILTER = 12;
const SOCK_RAW_CLOEXEC_NONBLOCK = 3 | 0o2000000 | 0o4000;
const MSG_DONTWAIT = 0x40;
const SOL_NETLINK = 270;
const NETLINK_ADD_MEMBERSHIP = 1;
/** enum nfnetlink_groups */
const NFNLGRP_CONNTRACK_DESTROY = 3;
const NETLINK_BROADCAST_ERROR = 4;
const SO_RCVBUF = 8;
const SO_RCVBUFFORCE = 33;
const EAGAIN = 11;
const ENOBUFS = 105;

/**
 * A non-blocking NETLINK_NETFILTER socket joined to conntrack event `groups` (enum nfnetlink_groups),
 * with a receive buffer of `rcvbuf` bytes (past net.core.rmem_max as root); `reliable` asks the
 * kernel to deliver destroy events again rather than drop them when the queue is full.
 * The descriptor, or why not.
 */
export function openConntrackEventSocket(
  libc: Libc,
  groups: readonly number[],
  rcvbuf: number,
  reliable: boolean,
): number | string {
  const fd = libc.socket(AF_NETLINK, SOCK_RAW_CLOEXEC_NONBLOCK, NETLINK_NETFILTER);
  if (fd < 0) return `socket: ${errnoName(errno())}`;
  const fail = (what: string): string => {
    const e = errnoName(errno());
    libc.close(fd);
    return `${what}: ${e}`;
  };
  // bound (the kernel picks the port id): a broadcast skips sockets of port id 0 (do_one_broadcast)
  const addr = Buffer.alloc(12); // struct sockaddr_nl, nl_pid 0, nl_groups 0
  addr.writeUInt16LE(AF_NETLINK, 0);
  if (libc.bind(fd, addr, addr.length) < 0) return fail('bind');
  for (const g of groups)
    if (libc.setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, intOption(g), 4) < 0)
      return fail(`joining conntrack group ${g}`);
  if (reliable && libc.setsockopt(fd, SOL_NETLINK, NETLINK_BROADCAST_ERROR, intOption(1), 4) < 0)
    return fail('NETLINK_BROADCAST_ERROR');
  if (libc.setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, intOption(rcvbuf), 4) < 0)
    libc.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, intOption(rcvbuf), 4);
  return fd;
}

export class ConntrackDestroyEvents {
  private readonly buf = Buffer.alloc(256 * 1024);
  /** times the kernel found this socket's queue full (its events come again later) */
  overruns = 0;

  private constructor(
    private readonly libc: Libc,
    private readonly fd: number,
  ) {}

  /** Subscribed to destroy events in this network namespace, or an error saying why not. */
  static open(): ConntrackDestroyEvents | string {
    const libc = loadLibc();
    if (!libc) return 'no libc through koffi';
    // about 1 KiB of queue per event: 16 MiB hold a second of 16,000 closing connections
    const fd = openConntrackEventSocket(libc, [NFNLGRP_CONNTRACK_DESTROY], 16 << 20, true);
    return typeof fd === 'string' ? fd : new ConntrackDestroyEvents(libc, fd);
  }

  /** Every destroy event queued now (never blocks). */
  drain(): CtEntry[] {
    const out: CtEntry[] = [];
    const events: CtEvent[] = [];
    for (;;) {
      const n = Number(this.libc.recv(this.fd, this.buf, this.buf.length, MSG_DONTWAIT));
      if (n > 0) {
        events.length = 0;
        decodeConntrackEvents(this.buf.subarray(0, n), events);
        for (const ev of events) if (ev.kind === 'destroy') out.push(ev.entry);
        continue;
      }
      if (n < 0 && errno() === ENOBUFS) {
        this.overruns++;
        continue;
      }
      if (n < 0 && errno() !== EAGAIN) throw new Error(`conntrack events: recv: ${errnoName(errno())}`);
      return out;
    }
  }

  close(): void {
    this.libc.close(this.fd);
  }
}

const ACCT = '/proc/sys/net/netfilter/nf_conntrack_acct';
const EVENTS = '/proc/sys/net/netfilter/nf_conntrack_events';

/**
 * Turns on per-connection accounting in this network namespace (and destroy events, if someone
 * turned them off: 0 sends none). Returns null when on, else why not. Entries created before
 * keep no counters.
 */
export function enableConntrackAccounting(): string | null {
  try {
    if (readFileSync(ACCT, 'utf8').trim() !== '1') writeFileSync(ACCT, '1\n');
    if (readFileSync(EVENTS, 'utf8').trim() === '0') writeFileSync(EVENTS, '1\n');
    return readFileSync(ACCT, 'utf8').trim() === '1' ? null : 'nf_conntrack_acct stays 0';
  } catch (e) {
    return (e as Error).message;
  }
}
