/**
 * The kernel plane's conntrack reader over ctnetlink (codec/conntrack.ts): one NETLINK_NETFILTER
 * socket, a dump each read. The kernel builds the next part of a dump while recv() runs
 * (netlink_recvmsg -> netlink_dump), so the read is a loop of non-blocking recv() calls that gives
 * the event loop back every few datagrams: a read of 100,000 entries does not stall the LVS
 * worker's health checks and API. expire_nodest_conn's flush stays with `conntrack -D`
 * (ProcConntrack).
 */
import { type CtEntry, type CtWanted, conntrackDumpRequest, decodeConntrackDump } from '../codec/conntrack.js';
import type { Family } from '../config/model.js';
import type { ProcessRunner } from '../util/ports.js';
import { type ConntrackPort, type CtService, ProcConntrack } from './conntrack.js';
import { ConntrackEvents, ConntrackTable } from './conntrack-watch.js';
import { errno, errnoName, intOption, type Libc, loadLibc, SOL_SOCKET } from './libc.js';

const AF_NETLINK = 16;
const NETLINK_NETFILTER = 12;
const SOCK_RAW_CLOEXEC = 3 | 0o2000000;
const MSG_DONTWAIT = 0x40;
const SO_RCVBUF = 8;
const EAGAIN = 11;
/** milliseconds of dump work between two turns of the event loop (the kernel fills each datagram inside recv) */
const SLICE_MS = 2;
/** a dump that stops answering for this long is abandoned (the read fails, the next one starts anew) */
const STALL_MS = 2000;

export class NetlinkConntrack implements ConntrackPort {
  private seq = Math.floor(Math.random() * 0x3fffffff);
  /** a dump datagram is at most a page or two (NLMSG_GOODSIZE); room for several */
  private readonly buf = Buffer.alloc(64 * 1024);
  private reading: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly libc: Libc,
    /** -1 after a failed dump: a socket with a dump left running refuses the next (EBUSY) */
    private fd: number,
    private readonly flusher: ProcConntrack,
  ) {}

  /** The reader, or null where there is no NETLINK_NETFILTER socket (no libc through koffi, not Linux). */
  static open(runner: ProcessRunner): NetlinkConntrack | null {
    const libc = loadLibc();
    if (!libc) return null;
    const fd = NetlinkConntrack.socket(libc);
    return fd < 0 ? null : new NetlinkConntrack(libc, fd, new ProcConntrack(runner));
  }

  private static socket(libc: Libc): number {
    const fd = libc.socket(AF_NETLINK, SOCK_RAW_CLOEXEC, NETLINK_NETFILTER);
    if (fd >= 0) libc.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, intOption(1 << 20), 4);
    return fd;
  }

  /** Every entry (those `wanted` accepts); one dump at a time on the socket. */
  list(wanted?: CtWanted): Promise<CtEntry[]> {
    const run = this.reading.then(() => this.dump(wanted));
    this.reading = run.catch(() => {});
    return run;
  }

  private async dump(wanted?: CtWanted): Promise<CtEntry[]> {
    if (this.fd < 0) this.fd = NetlinkConntrack.socket(this.libc);
    if (this.fd < 0) throw new Error(`ctnetlink: socket: ${errnoName(errno())}`);
    try {
      return await this.read(wanted);
    } catch (e) {
      this.close();
      throw e;
    }
  }

  private async read(wanted?: CtWanted): Promise<CtEntry[]> {
    const seq = ++this.seq >>> 0;
    const req = conntrackDumpRequest(seq);
    if (Number(this.libc.send(this.fd, req, req.length, 0)) < 0)
      throw new Error(`ctnetlink dump: send: ${errnoName(errno())}`);
    const out: CtEntry[] = [];
    let lastData = Date.now();
    let slice = performance.now();
    for (;;) {
      const n = Number(this.libc.recv(this.fd, this.buf, this.buf.length, MSG_DONTWAIT));
      if (n < 0) {
        const e = errno();
        if (e !== EAGAIN) throw new Error(`ctnetlink dump: recv: ${errnoName(e)}`);
        if (Date.now() - lastData > STALL_MS) throw new Error('ctnetlink dump: no answer');
        await new Promise((r) => setTimeout(r, 1));
        continue;
      }
      lastData = Date.now();
      const p = decodeConntrackDump(this.buf.subarray(0, n), seq, out, wanted);
      if (p.error) throw new Error(`ctnetlink dump: ${errnoName(p.error)}`);
      if (p.done) return out;
      if (performance.now() - slice > SLICE_MS) {
        await new Promise((r) => setImmediate(r));
        slice = performance.now();
      }
    }
  }

  flushDest(address: string, port: number, protocol: string, family: Family, service?: CtService): Promise<void> {
    return this.flusher.flushDest(address, port, protocol, family, service);
  }

  close(): void {
    if (this.fd >= 0) this.libc.close(this.fd);
    this.fd = -1;
  }
}

/**
 * The kernel plane's conntrack: the table kept by full ctnetlink dumps, and from conntrack events
 * while the plane follows them (conntrack-watch.ts followEvents); without ctnetlink,
 * /proc/net/nf_conntrack. A dump that fails is read from /proc that time. `warn` hears each new
 * reason once.
 */
export function openConntrack(runner: ProcessRunner, warn: (message: string) => void): ConntrackPort {
  const proc = new ProcConntrack(runner);
  const netlink = NetlinkConntrack.open(runner);
  if (!netlink) {
    warn('conntrack: no ctnetlink socket: reading /proc/net/nf_conntrack each second instead');
    return proc;
  }
  const said = new Set<string>();
  const dump: ConntrackPort = {
    async list(wanted) {
      try {
        return await netlink.list(wanted);
      } catch (e) {
        const why = (e as Error).message;
        if (!said.has(why)) warn(`conntrack: ${why}: this read from /proc/net/nf_conntrack instead`);
        said.add(why);
        return proc.list(wanted);
      }
    },
    flushDest: (address, port, protocol, family, service) => proc.flushDest(address, port, protocol, family, service),
    listSync: (wanted) => proc.listSync(wanted),
    countConnections: () => proc.countConnections(),
    drainDestroyed: () => proc.drainDestroyed(),
    close: () => {
      netlink.close();
      proc.close();
    },
  };
  // KEEPVS_CT_EVENTS=0: never follow events (a dump each refresh); =1: always, whatever the plane needs
  const forced = process.env.KEEPVS_CT_EVENTS;
  let events: ConntrackEvents | null = null;
  let read = () => {};
  const subscribe = (on: boolean): string | null => {
    if (!on) {
      if (forced === '1') return 'kept on (KEEPVS_CT_EVENTS=1)';
      events?.close();
      events = null;
      read = () => {};
      return null;
    }
    if (forced === '0') return 'off (KEEPVS_CT_EVENTS=0)';
    const ev = ConntrackEvents.open();
    if (typeof ev === 'string') return ev;
    events = ev;
    read = ev.feed(table);
    return null;
  };
  const table = new ConntrackTable(
    dump,
    Date.now,
    () => read(),
    () => {
      events?.close();
      events = null;
      netlink.close();
    },
    subscribe,
  );
  if (forced === '1') {
    const why = table.followEvents(true);
    if (why) warn(`conntrack events: ${why}: the table is kept by dumps instead`);
  }
  return table;
}
