/**
 * One epoll set per process for the TCP data plane, driven from Node's event loop.
 *
 * Each turn of Node's loop runs `drive` once (as an immediate): one epoll_wait, then each ready
 * fd's owner. That wait blocks (at most WAIT_MS) so that an idle proxy sleeps in the kernel like
 * HAProxy does; Node's own work still runs promptly because libuv's epoll fd is itself in the set
 * (found once through /proc/self/fdinfo), so any libuv event (IPC, UDP, timers' neighbours) ends the
 * wait and the turn goes back to libuv. Only Node timers can be late, by at most WAIT_MS.
 * With nothing registered, no immediate is scheduled and the process idles in libuv alone.
 *
 * fds closed while a batch is dispatched are closed after it, so a later event of the same batch
 * never reaches a new socket that reused the number.
 */

import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import net from 'node:net';
import {
  EPOLL_CLOEXEC,
  EPOLL_CTL_ADD,
  EPOLL_CTL_DEL,
  EPOLL_CTL_MOD,
  EPOLL_EVENT_BYTES,
  EPOLLIN,
  type Libc,
  NONBLOCK_CLOEXEC,
  setLingerZero,
} from '../../os/libc.js';

export interface FdOwner {
  onEvent(fd: number, events: number): void;
}

/** the longest a Node timer waits for the data plane's epoll_wait */
const WAIT_MS = 10;
const MAX_EVENTS = 256;
const BATCHES_PER_TURN = 8;
/** libuv registers a new fd on its next loop turn: look for it on this many turns */
const DISCOVERY_TURNS = 50;

export class Poller {
  private readonly ep: number;
  private readonly owners: (FdOwner | undefined)[] = [];
  /** the events each fd is registered for (0: not in the epoll set) */
  private readonly masks: number[] = [];
  private readonly events = Buffer.alloc(EPOLL_EVENT_BYTES * MAX_EVENTS);
  private readonly ctlEvent = Buffer.alloc(EPOLL_EVENT_BYTES);
  private registered = 0;
  private scheduled = false;
  private dispatching = false;
  private readonly closeAfterBatch: number[] = [];
  /** 0 until libuv's epoll fd is in the set (a blocking wait would hold libuv's events back) */
  private waitMs = 0;
  private libuvFd = -1;

  constructor(
    private readonly libc: Libc,
    private readonly onError: (e: unknown) => void,
  ) {
    this.ep = libc.epoll_create1(EPOLL_CLOEXEC);
    if (this.ep < 0) throw new Error('epoll_create1 failed');
    this.findLibuvFd();
  }

  /** Registers `fd` for `mask` (0: out of the set, still owned) and routes its events to `owner`. */
  watch(fd: number, mask: number, owner: FdOwner): void {
    this.owners[fd] = owner;
    const old = this.masks[fd] ?? 0;
    if (old === mask) return;
    const ev = this.ctlEvent;
    ev.writeUInt32LE(mask >>> 0, 0);
    ev.writeInt32LE(fd, 4);
    if (old === 0) {
      this.libc.epoll_ctl(this.ep, EPOLL_CTL_ADD, fd, ev);
      this.registered++;
      this.schedule();
    } else if (mask === 0) {
      this.libc.epoll_ctl(this.ep, EPOLL_CTL_DEL, fd, ev);
      this.registered--;
    } else this.libc.epoll_ctl(this.ep, EPOLL_CTL_MOD, fd, ev);
    this.masks[fd] = mask;
  }

  /** how many fds are in the set (0: the poller is not driving) */
  get watching(): number {
    return this.registered;
  }

  /** libuv's epoll fd was found and is in the set (the wait may block) */
  get nested(): boolean {
    return this.libuvFd >= 0;
  }

  mask(fd: number): number {
    return this.masks[fd] ?? 0;
  }

  /** Forgets and closes `fd`; `reset` sends an RST instead of a FIN. */
  close(fd: number, reset = false): void {
    if (fd < 0) return;
    // closing the fd takes it out of the epoll set: no EPOLL_CTL_DEL needed
    if (this.masks[fd]) {
      this.masks[fd] = 0;
      this.registered--;
    }
    this.owners[fd] = undefined;
    if (reset) setLingerZero(this.libc, fd);
    if (this.dispatching) this.closeAfterBatch.push(fd);
    else this.libc.close(fd);
  }

  private schedule(): void {
    if (this.scheduled || this.registered === 0) return;
    this.scheduled = true;
    setImmediate(this.drive);
  }

  private readonly drive = (): void => {
    this.scheduled = false;
    // a busy proxy finds more events at once: a few batches per turn of Node's loop, unless
    // libuv has work too (its fd is in the batch) or there is nothing more
    for (let round = 0; round < BATCHES_PER_TURN && this.registered > 0; round++) {
      const n = this.libc.epoll_wait(this.ep, this.events, MAX_EVENTS, round === 0 ? this.waitMs : 0);
      if (n <= 0 || this.dispatch(n)) break;
    }
    this.schedule();
  };

  /** Runs the owners of n ready fds; true when libuv's fd was among them. */
  private dispatch(n: number): boolean {
    let libuvReady = false;
    this.dispatching = true;
    for (let i = 0; i < n; i++) {
      const off = i * EPOLL_EVENT_BYTES;
      const fd = this.events.readInt32LE(off + 4);
      const owner = this.owners[fd];
      if (owner === undefined) {
        // libuv's fd, or one closed earlier in this batch
        if (fd === this.libuvFd) libuvReady = true;
        continue;
      }
      try {
        owner.onEvent(fd, this.events.readUInt32LE(off));
      } catch (e) {
        this.onError(e);
      }
    }
    this.dispatching = false;
    const closing = this.closeAfterBatch;
    if (closing.length > 0) {
      for (let i = 0; i < closing.length; i++) this.libc.close(closing[i] as number);
      closing.length = 0;
    }
    return libuvReady;
  }

  /**
   * libuv's epoll fd is the eventpoll fd whose watch list holds a pipe Node has just started
   * reading. Without /proc (or if it is never seen) the wait stays short instead: 1 ms.
   */
  private findLibuvFd(): void {
    const fds = new Int32Array(2);
    if (this.libc.pipe2(fds, NONBLOCK_CLOEXEC) !== 0) {
      this.waitMs = 1;
      return;
    }
    const [readEnd, writeEnd] = fds as unknown as [number, number];
    const probe = new net.Socket({ fd: readEnd, readable: true, writable: false });
    probe.on('error', () => {});
    probe.unref();
    let turns = 0;
    const look = (): void => {
      const found = epollHolding(readEnd, this.ep);
      if (found < 0 && ++turns < DISCOVERY_TURNS) {
        setImmediate(look).unref();
        return;
      }
      probe.destroy();
      this.libc.close(writeEnd);
      if (found < 0) {
        this.waitMs = 1;
        return;
      }
      const ev = this.ctlEvent;
      ev.writeUInt32LE(EPOLLIN, 0);
      ev.writeInt32LE(found, 4);
      this.libc.epoll_ctl(this.ep, EPOLL_CTL_ADD, found, ev);
      this.libuvFd = found;
      this.waitMs = WAIT_MS;
    };
    setImmediate(look).unref();
  }
}

/** The eventpoll fd of this process (other than `except`) that watches `target`, or -1. */
function epollHolding(target: number, except: number): number {
  let names: string[];
  try {
    names = readdirSync('/proc/self/fd');
  } catch {
    return -1;
  }
  for (const name of names) {
    const fd = Number(name);
    if (fd === except) continue;
    try {
      if (!readlinkSync(`/proc/self/fd/${name}`).includes('eventpoll')) continue;
      const info = readFileSync(`/proc/self/fdinfo/${name}`, 'utf8');
      if (new RegExp(`^tfd:\\s+${target}\\s`, 'm').test(info)) return fd;
    } catch {}
  }
  return -1;
}

let shared: Poller | null = null;

/** The process's poller (created on first use). */
export function processPoller(libc: Libc): Poller {
  shared ??= new Poller(libc, (e) => process.emitWarning(`keepvs data plane: ${String(e)}`));
  return shared;
}
