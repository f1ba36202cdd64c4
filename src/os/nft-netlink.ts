/**
 * The kernel plane's content updates (set elements, a rule's modulus) as one nfnetlink batch over a
 * NETLINK_NETFILTER socket (codec/nftables.ts), without libnftables: a weight change in a
 * 1,000-service ruleset costs what the kernel's transaction costs, not a whole-ruleset cache fetch.
 * nfnetlink runs a batch inside send() and queues every acknowledgement before send() returns
 * (nfnetlink_rcv_batch), so the outcome is read without waiting. All-or-nothing: on any error the
 * kernel aborts the whole batch.
 */
import {
  batch,
  type ContentBatch,
  type DumpedElem,
  type DumpedRule,
  decodeReplies,
  getGenMessage,
  getRulesMessage,
  getSetElemsMessage,
  type NftFamily,
  patchModulus,
  type Reply,
  replaceRuleMessage,
  setElemMessages,
} from '../codec/nftables.js';
import { errno, errnoName, intOption, type Libc, loadLibc, SOL_SOCKET } from './libc.js';

const AF_NETLINK = 16;
const NETLINK_NETFILTER = 12;
const SOCK_RAW_CLOEXEC = 3 | 0o2000000;
const MSG_DONTWAIT = 0x40;
const SOL_NETLINK = 270;
/** acknowledgements without the request's payload (an error would echo a 30 KiB element list) */
const NETLINK_CAP_ACK = 10;
const SO_SNDBUF = 7;
const SO_RCVBUF = 8;
const EAGAIN = 11;
const POLLIN = 1;

/**
 * The outcome of one batch: applied; refused by the kernel (nothing changed, `error` names the
 * errno); or `unknown` (the acknowledgements were lost: the kernel state must be rebuilt).
 */
export type ContentOutcome = { ok: true } | { ok: false; error: string; unknown?: boolean };

/** What the kernel plane needs: a content batch applied, or null when this writer declines (use libnftables). */
export interface NftContentWriter {
  apply(batch: ContentBatch): ContentOutcome | null;
  /** One set's elements (the counter sets each second), or null when it cannot (use libnftables). */
  listSet?(family: NftFamily, table: string, set: string): DumpedElem[] | null;
}

export class NftNetlink implements NftContentWriter {
  private seq = Math.floor(Math.random() * 0x3fffffff);
  private readonly reply = Buffer.alloc(256 * 1024);
  private readonly pollFd = Buffer.alloc(8);

  private constructor(
    private readonly libc: Libc,
    private readonly fd: number,
  ) {
    this.pollFd.writeInt32LE(fd, 0);
    this.pollFd.writeInt16LE(POLLIN, 4);
  }

  /** A NETLINK_NETFILTER socket, or null where there is none (no libc through koffi, not Linux). */
  static open(): NftNetlink | null {
    const libc = loadLibc();
    if (!libc) return null;
    const fd = libc.socket(AF_NETLINK, SOCK_RAW_CLOEXEC, NETLINK_NETFILTER);
    if (fd < 0) return null;
    libc.setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, intOption(1), 4);
    // a batch of 4,096 slot changes is about 300 KiB; the kernel caps these at net.core.[rw]mem_max
    libc.setsockopt(fd, SOL_SOCKET, SO_SNDBUF, intOption(4 << 20), 4);
    libc.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, intOption(1 << 20), 4);
    return new NftNetlink(libc, fd);
  }

  apply(b: ContentBatch): ContentOutcome {
    try {
      return this.applyBatch(b);
    } catch (e) {
      return { ok: false, error: `${(e as Error).message}` };
    }
  }

  private applyBatch(b: ContentBatch): ContentOutcome {
    const messages: Buffer[] = [];
    // sequence numbers: this.seq is the last one used
    const first = this.seq + 1;
    this.seq += 2; // BATCH_BEGIN and BATCH_END
    let genid: number | undefined;
    if (b.moduli.length) {
      // read-modify-write of rules: the batch only commits on the generation the rules were read in
      genid = this.generation();
      for (const m of b.moduli) {
        const rules = this.chainRules(m.family, m.table, m.chain);
        let count = 0;
        for (const r of rules) {
          const p = patchModulus(r.expressions, m.from, m.to);
          if (p.count === 0) continue;
          count += p.count;
          messages.push(
            replaceRuleMessage(m.family, m.table, m.chain, { ...r, expressions: p.expressions }, ++this.seq),
          );
        }
        if (count !== m.count)
          return { ok: false, error: `${m.chain}: ${count} rules of modulus ${m.from}, not ${m.count}` };
      }
    }
    for (const c of b.sets) {
      for (const op of ['del', 'add'] as const) {
        const ms = setElemMessages(op, c, op === 'del' ? c.del : c.add, this.seq + 1);
        this.seq += ms.length;
        messages.push(...ms);
      }
    }
    if (messages.length === 0) return { ok: true };
    const acked = new Set(messages.map((m) => m.readUInt32LE(8)));
    const out = batch(messages, first, genid);
    this.drain();
    if (Number(this.libc.send(this.fd, out, out.length, 0)) < 0) return { ok: false, error: errnoName(errno()) };
    let error: string | null = null;
    for (;;) {
      let replies: Reply[] | null;
      try {
        replies = this.receive(false);
      } catch (e) {
        // sent, and the answer unreadable: the batch may or may not have committed
        return { ok: false, error: `${(e as Error).message}`, unknown: true };
      }
      if (replies === null) break;
      for (const r of replies) {
        if (r.error === undefined) continue;
        if (r.error !== 0) error ??= errnoName(r.error);
        acked.delete(r.seq);
      }
      if (acked.size === 0 && error === null) return { ok: true };
    }
    if (error) return { ok: false, error };
    return { ok: false, error: `${acked.size} acknowledgements missing`, unknown: true };
  }

  /** NFT_MSG_GETGEN: the generation the next batch must find. */
  private generation(): number {
    const seq = ++this.seq;
    const m = getGenMessage(seq);
    this.drain();
    if (Number(this.libc.send(this.fd, m, m.length, 0)) < 0) throw new Error(`getgen: ${errnoName(errno())}`);
    for (;;) {
      const replies = this.receive(true);
      if (replies === null) throw new Error('getgen: no answer');
      for (const r of replies) {
        if (r.seq !== seq) continue;
        if (r.genid !== undefined) return r.genid;
        if (r.error) throw new Error(`getgen: ${errnoName(r.error)}`);
      }
    }
  }

  listSet(family: NftFamily, table: string, set: string): DumpedElem[] | null {
    try {
      const seq = ++this.seq;
      const m = getSetElemsMessage(family, table, set, seq);
      this.drain();
      if (Number(this.libc.send(this.fd, m, m.length, 0)) < 0) return null;
      const out: DumpedElem[] = [];
      for (;;) {
        const replies = this.receive(true);
        if (replies === null) return null;
        for (const r of replies) {
          if (r.seq !== seq) continue;
          if (r.elements) out.push(...r.elements);
          if (r.error) return null;
          if (r.done) return out;
        }
      }
    } catch {
      return null;
    }
  }

  /** The rules of one chain as the kernel holds them. */
  private chainRules(family: NftFamily, table: string, chain: string): DumpedRule[] {
    const seq = ++this.seq;
    const m = getRulesMessage(family, table, chain, seq);
    this.drain();
    if (Number(this.libc.send(this.fd, m, m.length, 0)) < 0) throw new Error(`getrule: ${errnoName(errno())}`);
    const rules: DumpedRule[] = [];
    for (;;) {
      const replies = this.receive(true);
      if (replies === null) throw new Error('getrule: no answer');
      for (const r of replies) {
        if (r.seq !== seq) continue;
        // the kernel filters the dump by chain; a rule of another chain is never patched
        if (r.rule && r.rule.chain === chain) rules.push(r.rule);
        if (r.error) throw new Error(`getrule ${chain}: ${errnoName(r.error)}`);
        if (r.done) return rules;
      }
    }
  }

  /** One datagram's replies; null when nothing is queued (`wait`: after up to 1 s). */
  private receive(wait: boolean): Reply[] | null {
    for (let tries = 0; tries < 2; tries++) {
      const n = Number(this.libc.recv(this.fd, this.reply, this.reply.length, MSG_DONTWAIT));
      // a copy: replies keep views into it past the next recv (a dump spans datagrams)
      if (n > 0) return decodeReplies(Buffer.from(this.reply.subarray(0, n)));
      if (n < 0 && errno() !== EAGAIN) throw new Error(`recv: ${errnoName(errno())}`);
      if (!wait || this.libc.poll(this.pollFd, 1, 1000) <= 0) return null;
    }
    return null;
  }

  /** Drops what an earlier, abandoned request left queued. */
  private drain(): void {
    while (Number(this.libc.recv(this.fd, this.reply, this.reply.length, MSG_DONTWAIT)) > 0) {}
  }

  close(): void {
    this.libc.close(this.fd);
  }
}
