/**
 * Client steering across proxy workers: a classic BPF program on each listener's SO_REUSEPORT group
 * (SO_ATTACH_REUSEPORT_CBPF). A persistent service's program picks the worker from the client's
 * source address masked with the persistence granularity, so every connection or datagram of a
 * client (or of its persistence netmask) meets the same worker and its template is the director's
 * only one. A TCP service without persistence has the workers take turns (an eBPF counter,
 * src/os/reuseport-counter.ts): one busy client, or many behind one NAT address, is not held to one
 * core, and 64 connections split 32/32 instead of the 4-tuple hash's 27/37; where bpf(2) is refused
 * it keeps the kernel's hash (a cBPF program answering an index past the group), as UDP services
 * always do (one flow's datagrams must meet one worker). Index order is the group's join order; an
 * index past the group's size (also a worker being forked again) falls back to the kernel's hash
 * (reuseport_select_sock, net/core/sock_reuseport.c).
 */
import { attachReuseportCbpf, type SockFilter } from '../../os/libc.js';
import { attachReuseportCounter, type CounterRefusal } from '../../os/reuseport-counter.js';
import type { ProxyContext } from './context.js';

// classic BPF (linux/filter.h)
const BPF_LD_W_ABS = 0x20; // BPF_LD | BPF_W | BPF_ABS
const BPF_ALU_AND_K = 0x54; // BPF_ALU | BPF_AND | BPF_K
const BPF_ALU_MOD_K = 0x94; // BPF_ALU | BPF_MOD | BPF_K
const BPF_RET_A = 0x16; // BPF_RET | BPF_A
const BPF_RET_K = 0x06; // BPF_RET | BPF_K
/** an index no group reaches: the kernel then picks by its 4-tuple hash */
const KERNEL_HASH = 0xffffffff;
/** loads relative to the network header (linux/filter.h SKF_NET_OFF) */
const SKF_NET_OFF = -0x100000;

/**
 * The program for `workers` sockets. IPv4: the source address (offset 12 of the IP header); IPv6:
 * the 32-bit word of the source (offset 8) that holds the end of the persistence prefix.
 * `prefixLen` null (no persistence): the kernel's hash of the 4-tuple.
 */
export function steeringProgram(
  family: 4 | 6,
  workers: number,
  prefixLen: number | null = family === 4 ? 32 : 128,
): SockFilter[] {
  if (prefixLen === null) return [{ code: BPF_RET_K, jt: 0, jf: 0, k: KERNEL_HASH }];
  let offset: number;
  let bits: number;
  if (family === 4) {
    offset = 12;
    bits = Math.max(0, Math.min(32, prefixLen));
  } else {
    const p = Math.max(0, Math.min(128, prefixLen));
    const word = p === 0 ? 0 : Math.min(3, Math.floor((p - 1) / 32));
    offset = 8 + word * 4;
    bits = p - word * 32;
  }
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return [
    { code: BPF_LD_W_ABS, jt: 0, jf: 0, k: (SKF_NET_OFF + offset) >>> 0 },
    { code: BPF_ALU_AND_K, jt: 0, jf: 0, k: mask },
    { code: BPF_ALU_MOD_K, jt: 0, jf: 0, k: Math.max(1, workers) },
    { code: BPF_RET_A, jt: 0, jf: 0, k: 0 },
  ];
}

/** One listener's steering: the program follows the service's persistence prefix (TCP and UDP alike). */
export class ListenerSteering {
  private prefixLen: number | null | undefined;
  private attached = false;
  private fd = -1;

  constructor(
    private readonly ctx: ProxyContext,
    private readonly family: 4 | 6,
    private readonly serviceId: string,
    /** TCP: each new connection may go to the next worker; UDP not (a flow's datagrams must meet one worker) */
    private readonly inTurns = false,
    private readonly attachCounter: (fd: number, sockets: number) => CounterRefusal | null = attachReuseportCounter,
  ) {}

  /** the persistence prefix clients are steered by (null: none, spread by connection); re-attaches the program when listening */
  steerBy(prefixLen: number | null): void {
    if (this.prefixLen === prefixLen) return;
    this.prefixLen = prefixLen;
    if (this.fd >= 0) this.attach(this.fd);
  }

  /** the listening socket (TCP: after listen(), where it joins its reuseport group) */
  attach(fd: number): void {
    if (fd !== this.fd) this.attached = false;
    this.fd = fd;
    const n = this.ctx.steerWorkers;
    if (n <= 1) return;
    const prefixLen = this.prefixLen ?? null;
    if (prefixLen === null && this.inTurns) {
      const refusal = this.attachCounter(fd, n);
      if (refusal === null) {
        this.attached = true;
        return;
      }
      // Without root the kernel refuses bpf(2) by design (unprivileged_bpf_disabled): the hash is
      // the documented non-root behaviour, not a fault to report on every service.
      if (!refusal.denied)
        this.ctx.diagnostic(
          'DP_STEERING_FAILED',
          this.serviceId,
          `${refusal.why}: new connections are spread over the workers by the kernel's 4-tuple hash, not in turn`,
        );
      // a new listener spreading by hash needs no program: the kernel hashes without one
      if (!this.attached) return;
    }
    this.attached = true;
    if (!attachReuseportCbpf(fd, steeringProgram(this.family, n, prefixLen)))
      this.ctx.diagnostic(
        'DP_STEERING_FAILED',
        this.serviceId,
        'SO_ATTACH_REUSEPORT_CBPF refused: clients are spread by the kernel hash',
      );
  }
}
