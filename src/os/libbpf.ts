/**
 * libbpf (Debian's libbpf1, libbpf.so.1) bound through koffi: open and load a BPF object, attach its
 * program to a tc clsact hook (direct-action), update/read its maps, detach. No native addon.
 * Every failure is a LibbpfError naming the step and the errno text; a missing library or object
 * file says what to install or build.
 */
import { constants as osConstants } from 'node:os';
import koffi from 'koffi';
import { loadLibc } from './libc.js';

export class LibbpfError extends Error {
  constructor(
    message: string,
    readonly errno?: number,
  ) {
    super(message);
    this.name = 'LibbpfError';
  }
}

const ERRNO_NAMES: Readonly<Record<number, string>> = Object.fromEntries(
  Object.entries(osConstants.errno).map(([name, n]) => [n, name]),
);
export const errnoName = (n: number): string => ERRNO_NAMES[Math.abs(n)] ?? `errno ${Math.abs(n)}`;

/** libbpf's bpf_tc_attach_point */
export const BPF_TC_INGRESS = 1;
export const BPF_TC_EGRESS = 2;
const BPF_TC_F_REPLACE = 1;
const BPF_ANY = 0;

type Fn = (...args: unknown[]) => unknown;
interface Lib {
  openFile: Fn;
  load: Fn;
  close: Fn;
  findProgram: Fn;
  progFd: Fn;
  findMap: Fn;
  mapFd: Fn;
  hookCreate: Fn;
  hookDestroy: Fn;
  tcAttach: Fn;
  tcDetach: Fn;
  tcQuery: Fn;
  update: Fn;
  lookup: Fn;
  del: Fn;
  updateBatch: Fn;
  progFdById: Fn;
  objInfo: Fn;
  closeFd: Fn;
  setPrint: Fn;
  possibleCpus: Fn;
}

let lib: Lib | undefined;
let loadError: string | undefined;

function bind(): Lib {
  if (lib) return lib;
  if (loadError) throw new LibbpfError(loadError);
  let l: ReturnType<typeof koffi.load>;
  try {
    l = koffi.load('libbpf.so.1');
  } catch (e) {
    loadError = `libbpf.so.1 not found (install Debian's libbpf1): ${(e as Error).message}`;
    throw new LibbpfError(loadError);
  }
  koffi.struct('kv_bpf_tc_hook', {
    sz: 'size_t',
    ifindex: 'int',
    attach_point: 'int',
    parent: 'uint32_t',
    pad: 'uint32_t',
  });
  koffi.struct('kv_bpf_tc_opts', {
    sz: 'size_t',
    prog_fd: 'int',
    flags: 'uint32_t',
    prog_id: 'uint32_t',
    handle: 'uint32_t',
    priority: 'uint32_t',
    pad: 'uint32_t',
  });
  lib = {
    openFile: l.func('void *bpf_object__open_file(const char *path, void *opts)'),
    load: l.func('int bpf_object__load(void *obj)'),
    close: l.func('void bpf_object__close(void *obj)'),
    findProgram: l.func('void *bpf_object__find_program_by_name(void *obj, const char *name)'),
    progFd: l.func('int bpf_program__fd(void *prog)'),
    findMap: l.func('void *bpf_object__find_map_by_name(void *obj, const char *name)'),
    mapFd: l.func('int bpf_map__fd(void *map)'),
    hookCreate: l.func('int bpf_tc_hook_create(kv_bpf_tc_hook *hook)'),
    hookDestroy: l.func('int bpf_tc_hook_destroy(kv_bpf_tc_hook *hook)'),
    tcAttach: l.func('int bpf_tc_attach(kv_bpf_tc_hook *hook, _Inout_ kv_bpf_tc_opts *opts)'),
    tcDetach: l.func('int bpf_tc_detach(kv_bpf_tc_hook *hook, kv_bpf_tc_opts *opts)'),
    tcQuery: l.func('int bpf_tc_query(kv_bpf_tc_hook *hook, _Inout_ kv_bpf_tc_opts *opts)'),
    update: l.func('int bpf_map_update_elem(int fd, const void *key, const void *value, uint64_t flags)'),
    lookup: l.func('int bpf_map_lookup_elem(int fd, const void *key, _Out_ void *value)'),
    del: l.func('int bpf_map_delete_elem(int fd, const void *key)'),
    updateBatch: l.func(
      'int bpf_map_update_batch(int fd, const void *keys, const void *values, _Inout_ uint32_t *count, void *opts)',
    ),
    progFdById: l.func('int bpf_prog_get_fd_by_id(uint32_t id)'),
    objInfo: l.func('int bpf_obj_get_info_by_fd(int fd, _Inout_ void *info, _Inout_ uint32_t *len)'),
    closeFd: (fd: unknown) => loadLibc()?.close(fd as number),
    setPrint: l.func('void *libbpf_set_print(void *fn)'),
    possibleCpus: l.func('int libbpf_num_possible_cpus(void)'),
  };
  // libbpf's own messages (verifier logs...) go to stderr only when asked for
  if (!process.env.KEEPVS_BPF_DEBUG) lib.setPrint(null);
  return lib;
}

/** True when libbpf.so.1 can be loaded here. */
export function libbpfAvailable(): boolean {
  try {
    bind();
    return true;
  } catch {
    return false;
  }
}

function check(rc: number, what: string): number {
  if (rc < 0) throw new LibbpfError(`${what}: ${errnoName(rc)}`, -rc);
  return rc;
}

export interface TcHookRef {
  readonly ifindex: number;
  readonly attachPoint: number;
}

const hookStruct = (h: TcHookRef) => ({ sz: 24, ifindex: h.ifindex, attach_point: h.attachPoint, parent: 0, pad: 0 });

/**
 * Creates the clsact qdisc of an interface (tc's `qdisc add clsact`). Returns false when it was
 * already there (someone else's or an earlier run's), true when this call created it.
 */
export function tcHookCreate(h: TcHookRef): boolean {
  const rc = bind().hookCreate(hookStruct(h)) as number;
  if (rc === -17) return false; // EEXIST
  check(rc, `creating the clsact qdisc on ifindex ${h.ifindex}`);
  return true;
}

/** Removes the whole clsact qdisc (every filter on it): only for a qdisc this code created. */
export function tcHookDestroy(ifindex: number): void {
  const rc = bind().hookDestroy({
    sz: 24,
    ifindex,
    attach_point: BPF_TC_INGRESS | BPF_TC_EGRESS,
    parent: 0,
    pad: 0,
  }) as number;
  if (rc !== -2 && rc !== -22) check(rc, `removing the clsact qdisc on ifindex ${ifindex}`);
}

export interface TcFilterRef extends TcHookRef {
  readonly handle: number;
  readonly priority: number;
}

/** Attaches (or atomically replaces) a direct-action filter; returns the attached program id. */
export function tcAttach(f: TcFilterRef, progFd: number): number {
  const opts = {
    sz: 32,
    prog_fd: progFd,
    flags: BPF_TC_F_REPLACE,
    prog_id: 0,
    handle: f.handle,
    priority: f.priority,
    pad: 0,
  };
  check(bind().tcAttach(hookStruct(f), opts) as number, `attaching the tc filter on ifindex ${f.ifindex}`);
  return opts.prog_id;
}

/** Detaches the filter; false when it was not there. */
export function tcDetach(f: TcFilterRef): boolean {
  const opts = { sz: 32, prog_fd: 0, flags: 0, prog_id: 0, handle: f.handle, priority: f.priority, pad: 0 };
  const rc = bind().tcDetach(hookStruct(f), opts) as number;
  if (rc === -2 || rc === -22) return false; // ENOENT, or no clsact qdisc at all
  check(rc, `detaching the tc filter on ifindex ${f.ifindex}`);
  return true;
}

/** The program id attached at that handle/priority, or undefined. */
export function tcQuery(f: TcFilterRef): number | undefined {
  const opts = { sz: 32, prog_fd: 0, flags: 0, prog_id: 0, handle: f.handle, priority: f.priority, pad: 0 };
  const rc = bind().tcQuery(hookStruct(f), opts) as number;
  if (rc === -2 || rc === -22) return undefined;
  check(rc, `querying the tc filter on ifindex ${f.ifindex}`);
  return opts.prog_id;
}

/** bpf_prog_info.name (offset 64, 16 bytes) of a loaded program, by id; undefined when gone. */
export function progName(id: number): string | undefined {
  const l = bind();
  const fd = l.progFdById(id) as number;
  if (fd < 0) return undefined;
  try {
    const info = Buffer.alloc(256);
    const len = [info.length];
    check(l.objInfo(fd, info, len) as number, `reading program ${id}`);
    const name = info.subarray(64, 80);
    const end = name.indexOf(0);
    return name.subarray(0, end < 0 ? 16 : end).toString('latin1');
  } finally {
    l.closeFd(fd);
  }
}

/** Possible CPUs: the number of values a per-CPU map element holds. */
export function possibleCpus(): number {
  return check(bind().possibleCpus() as number, 'counting possible CPUs');
}

/** A loaded BPF object: its programs and maps by name. Close it when done (attached filters stay). */
export class BpfObject {
  private closed = false;
  private constructor(private readonly obj: unknown) {}

  static load(path: string): BpfObject {
    const l = bind();
    const obj = l.openFile(path, null);
    if (!obj) throw new LibbpfError(`opening BPF object ${path}: ${errnoName(koffi.errno())}`, koffi.errno());
    const rc = l.load(obj) as number;
    if (rc < 0) {
      l.close(obj);
      throw new LibbpfError(
        `loading BPF object ${path} into the kernel: ${errnoName(rc)}${rc === -1 ? ' (not root / no CAP_BPF?)' : ''}`,
        -rc,
      );
    }
    return new BpfObject(obj);
  }

  programFd(name: string): number {
    const l = bind();
    const p = l.findProgram(this.obj, name);
    if (!p) throw new LibbpfError(`BPF object has no program ${name}`);
    return check(l.progFd(p) as number, `program ${name}`);
  }

  map(name: string): BpfMap {
    const l = bind();
    const m = l.findMap(this.obj, name);
    if (!m) throw new LibbpfError(`BPF object has no map ${name}`);
    return new BpfMap(name, check(l.mapFd(m) as number, `map ${name}`));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    bind().close(this.obj);
  }
}

/** A map file descriptor with raw-byte element access. */
export class BpfMap {
  constructor(
    readonly name: string,
    readonly fd: number,
  ) {}

  update(key: Uint8Array, value: Uint8Array): void {
    check(bind().update(this.fd, key, value, BPF_ANY) as number, `updating map ${this.name}`);
  }

  /** Many elements in one syscall (keys and values concatenated); falls back to one call each. */
  updateMany(keys: Uint8Array, values: Uint8Array, count: number): void {
    if (count === 0) return;
    const n = [count];
    const rc = bind().updateBatch(this.fd, keys, values, n, null) as number;
    if (rc === 0 && n[0] === count) return;
    const ks = keys.length / count;
    const vs = values.length / count;
    for (let i = 0; i < count; i++) {
      this.update(keys.subarray(i * ks, (i + 1) * ks), values.subarray(i * vs, (i + 1) * vs));
    }
  }

  /** Reads into `out`; false when the key is absent. */
  lookup(key: Uint8Array, out: Uint8Array): boolean {
    const rc = bind().lookup(this.fd, key, out) as number;
    if (rc === -2) return false;
    check(rc, `reading map ${this.name}`);
    return true;
  }

  delete(key: Uint8Array): boolean {
    const rc = bind().del(this.fd, key) as number;
    if (rc === -2) return false;
    check(rc, `deleting from map ${this.name}`);
    return true;
  }
}
