/**
 * An even split of new connections over a reuseport group: an eBPF socket-filter program
 * (SO_ATTACH_REUSEPORT_EBPF) whose answer, the index of the group's socket, is a counter in a
 * one-entry array map taken modulo the group's size, so the sockets take turns. The kernel's own
 * choice without a program is a hash of the 4-tuple: 64 connections of one client split about
 * 27/37 over two workers. An index past the group (a worker being forked again) falls back to
 * that hash (reuseport_select_sock and run_bpf_filter, net/core/sock_reuseport.c).
 * Built with bpf(2) directly (instructions assembled here): no compiler or object file needed.
 */
import { bpfCall, errno, errnoName, loadLibc, nativeBuffer, SOL_SOCKET } from './libc.js';

// linux/bpf.h
const BPF_MAP_CREATE = 0;
const BPF_PROG_LOAD = 5;
const BPF_MAP_TYPE_ARRAY = 2;
const BPF_PROG_TYPE_SOCKET_FILTER = 1;
const BPF_PSEUDO_MAP_FD = 1;
const BPF_FUNC_map_lookup_elem = 1;
const BPF_ADD_FETCH = 0x01; // BPF_ADD | BPF_FETCH: the old value comes back in the source register
/** linux/socket.h (asm-generic) */
const SO_ATTACH_REUSEPORT_EBPF = 52;
/** union bpf_attr is smaller; the kernel wants the bytes past its own size zero */
const ATTR_BYTES = 128;

interface Insn {
  code: number;
  dst: number;
  src: number;
  off: number;
  imm: number;
}

const insn = (code: number, dst: number, src: number, off: number, imm: number): Insn => ({ code, dst, src, off, imm });

/** The program for a group of `sockets` and the counter map `mapFd` (linux/bpf_common.h encodings). */
export function counterProgram(mapFd: number, sockets: number): Insn[] {
  const R0 = 0;
  const R1 = 1;
  const R2 = 2;
  const R10 = 10;
  return [
    insn(0x62, R10, 0, -4, 0), // *(u32 *)(r10 - 4) = 0: the key
    insn(0x18, R1, BPF_PSEUDO_MAP_FD, 0, mapFd), // r1 = map (ld_imm64, two slots)
    insn(0x00, 0, 0, 0, 0),
    insn(0xbf, R2, R10, 0, 0), // r2 = r10
    insn(0x07, R2, 0, 0, -4), // r2 += -4
    insn(0x85, 0, 0, 0, BPF_FUNC_map_lookup_elem), // r0 = &counter
    insn(0x15, R0, 0, 5, 0), // if r0 == 0 goto kernel hash
    insn(0xb7, R1, 0, 0, 1), // r1 = 1
    insn(0xc3, R0, R1, 0, BPF_ADD_FETCH), // r1 = atomic fetch-add(*(u32 *)r0, 1)
    insn(0x94, R1, 0, 0, Math.max(1, sockets)), // w1 %= sockets
    insn(0xbf, R0, R1, 0, 0), // r0 = r1
    insn(0x95, 0, 0, 0, 0), // exit
    insn(0xb4, R0, 0, 0, -1), // w0 = 0xffffffff: past the group, the kernel's hash
    insn(0x95, 0, 0, 0, 0), // exit
  ];
}

function encode(prog: readonly Insn[]): Buffer {
  const b = Buffer.alloc(prog.length * 8);
  for (const [i, x] of prog.entries()) {
    b.writeUInt8(x.code, i * 8);
    b.writeUInt8((x.src << 4) | x.dst, i * 8 + 1);
    b.writeInt16LE(x.off, i * 8 + 2);
    b.writeInt32LE(x.imm, i * 8 + 4);
  }
  return b;
}

/** Why the program is not attached; `denied` when bpf(2) refused this user (EPERM/EACCES: no CAP_BPF and kernel.unprivileged_bpf_disabled), the expected case without root. */
export interface CounterRefusal {
  why: string;
  denied: boolean;
}

const EPERM = 1;
const EACCES = 13;

function fail(step: string): CounterRefusal {
  const e = errno();
  return {
    why: `${step}: ${errnoName(e)}`,
    denied: step !== 'SO_ATTACH_REUSEPORT_EBPF' && (e === EPERM || e === EACCES),
  };
}

/**
 * Attaches the turn-taking program to the listening socket `fd` (after listen(), when it is in its
 * group) for a group of `sockets`. null when done, else why not (no bpf(2) for this user or
 * kernel): the group then keeps the kernel's hash.
 */
export function attachReuseportCounter(fd: number, sockets: number): CounterRefusal | null {
  const libc = loadLibc();
  if (!libc) return { why: 'libc is not available through koffi', denied: false };
  const mapAttr = Buffer.alloc(ATTR_BYTES);
  mapAttr.writeUInt32LE(BPF_MAP_TYPE_ARRAY, 0);
  mapAttr.writeUInt32LE(4, 4); // key size
  mapAttr.writeUInt32LE(4, 8); // value size
  mapAttr.writeUInt32LE(1, 12); // max entries
  const mapFd = bpfCall(BPF_MAP_CREATE, mapAttr);
  if (mapFd === null) return { why: 'bpf(2) is not available through koffi', denied: false };
  if (mapFd < 0) return fail('BPF_MAP_CREATE');
  const code = encode(counterProgram(mapFd, sockets));
  const insns = nativeBuffer(code.length);
  const license = nativeBuffer(4);
  try {
    insns.bytes.set(code);
    license.bytes.set([0x47, 0x50, 0x4c, 0]); // "GPL"
    const progAttr = Buffer.alloc(ATTR_BYTES);
    progAttr.writeUInt32LE(BPF_PROG_TYPE_SOCKET_FILTER, 0);
    progAttr.writeUInt32LE(code.length / 8, 4);
    progAttr.writeBigUInt64LE(insns.address, 8);
    progAttr.writeBigUInt64LE(license.address, 16);
    const progFd = bpfCall(BPF_PROG_LOAD, progAttr) ?? -1;
    if (progFd < 0) return fail('BPF_PROG_LOAD');
    const value = Buffer.alloc(4);
    value.writeInt32LE(progFd);
    // the group holds the program (and it the map): our fds can go
    const attached = libc.setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_EBPF, value, 4) === 0;
    const why = attached ? null : fail('SO_ATTACH_REUSEPORT_EBPF');
    libc.close(progFd);
    return why;
  } finally {
    insns.free();
    license.free();
    libc.close(mapFd);
  }
}
