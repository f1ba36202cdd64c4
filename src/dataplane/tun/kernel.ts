/**
 * TunKernel over libbpf: loads dist/bpf/tun_encap.bpf.o, attaches kv_tun_encap to the tc ingress of
 * the director's VIP interfaces (replacing, in one netlink request, the filter a previous keepvs
 * left there, so traffic keeps flowing across a restart) and writes the maps.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  BPF_TC_INGRESS,
  type BpfMap,
  BpfObject,
  libbpfAvailable,
  possibleCpus,
  tcAttach,
  tcDetach,
  tcHookCreate,
} from '../../os/libbpf.js';
import { REAL_SIZE, REAL_STATS_SIZE, type RealVal, realVal, ST_COUNT, u32Key } from './layout.js';
import type { TunKernel } from './plane.js';

/** tc filter handle/priority of the director program ("kv"); the real-server program uses +1. */
export const ENCAP_FILTER = { handle: 0x6b76, priority: 0x6b76 } as const;
export const DECAP_FILTER = { handle: 0x6b77, priority: 0x6b77 } as const;

const here = dirname(fileURLToPath(import.meta.url));

/** dist/bpf/NAME.bpf.o (built by `npm run build:bpf`), or a readable error. */
export function bpfObjectPath(name: 'tun_encap' | 'tun_decap'): string {
  // dist/src/dataplane/tun -> dist/bpf
  const p = join(here, '..', '..', '..', 'bpf', `${name}.bpf.o`);
  if (!existsSync(p)) {
    throw new Error(
      `BPF object ${p} is missing: build it with \`npm run build:bpf\` (needs clang, llvm and libbpf-dev)`,
    );
  }
  return p;
}

/**
 * Why the TUN plane cannot run here, or null when it can (object built, libbpf loadable, root):
 * for the kernel-plane probe. Loads nothing into the kernel.
 */
export function tunPlaneUnavailable(): string | null {
  if (process.platform !== 'linux') return 'not Linux';
  if (process.getuid?.() !== 0) return 'not running as root';
  try {
    bpfObjectPath('tun_encap');
  } catch (e) {
    return (e as Error).message;
  }
  if (!libbpfAvailable()) return 'libbpf.so.1 missing (Debian libbpf1)';
  return null;
}

export function ifindexOf(ifname: string): number {
  if (!/^[A-Za-z0-9_.:@-]{1,15}$/.test(ifname)) throw new Error(`bad interface name '${ifname}'`);
  try {
    return Number(readFileSync(`/sys/class/net/${ifname}/ifindex`, 'utf8'));
  } catch {
    throw new Error(`no interface ${ifname}`);
  }
}

export class BpfTunKernel implements TunKernel {
  private obj: BpfObject | undefined;
  private maps: Record<'services' | 'slots' | 'reals' | 'realStats' | 'stats', BpfMap> | undefined;
  private attachedTo: number[] = [];
  private cpus = 1;
  private progFd = -1;

  attach(ifname: string): void {
    const ifindex = ifindexOf(ifname);
    if (this.attachedTo.includes(ifindex)) return;
    if (!this.obj) {
      const obj = BpfObject.load(bpfObjectPath('tun_encap'));
      try {
        this.cpus = possibleCpus();
        this.maps = {
          services: obj.map('kv_services'),
          slots: obj.map('kv_slots'),
          reals: obj.map('kv_reals'),
          realStats: obj.map('kv_real_stats'),
          stats: obj.map('kv_stats'),
        };
        this.progFd = obj.programFd('kv_tun_encap');
      } catch (e) {
        obj.close();
        this.maps = undefined;
        throw e;
      }
      this.obj = obj;
    }
    tcHookCreate({ ifindex, attachPoint: BPF_TC_INGRESS });
    tcAttach({ ifindex, attachPoint: BPF_TC_INGRESS, ...ENCAP_FILTER }, this.progFd);
    this.attachedTo.push(ifindex);
  }

  private m() {
    if (!this.maps) throw new Error('the TUN program is not loaded');
    return this.maps;
  }

  setService(key: Uint8Array, val: Uint8Array): void {
    this.m().services.update(key, val);
  }
  deleteService(key: Uint8Array): void {
    this.m().services.delete(key);
  }
  writeSlots(keys: Uint8Array, values: Uint8Array, count: number): void {
    this.m().slots.updateMany(keys, values, count);
  }
  setReal(index: number, real: RealVal): void {
    this.m().reals.update(u32Key(index), realVal(real));
  }
  clearReal(index: number): void {
    this.m().reals.update(u32Key(index), new Uint8Array(REAL_SIZE));
  }
  realStats(index: number): { packets: number; bytes: number; conns: number } {
    const buf = new Uint8Array(REAL_STATS_SIZE * this.cpus);
    if (!this.m().realStats.lookup(u32Key(index), buf)) return { packets: 0, bytes: 0, conns: 0 };
    const v = new DataView(buf.buffer);
    let packets = 0;
    let bytes = 0;
    let conns = 0;
    for (let c = 0; c < this.cpus; c++) {
      packets += Number(v.getBigUint64(c * REAL_STATS_SIZE, true));
      bytes += Number(v.getBigUint64(c * REAL_STATS_SIZE + 8, true));
      conns += Number(v.getBigUint64(c * REAL_STATS_SIZE + 16, true));
    }
    return { packets, bytes, conns };
  }
  resetReal(index: number): void {
    this.m().realStats.update(u32Key(index), new Uint8Array(REAL_STATS_SIZE * this.cpus));
  }
  stats(): readonly number[] {
    const out: number[] = [];
    const buf = new Uint8Array(8 * this.cpus);
    const v = new DataView(buf.buffer);
    for (let i = 0; i < ST_COUNT; i++) {
      let n = 0;
      if (this.m().stats.lookup(u32Key(i), buf))
        for (let c = 0; c < this.cpus; c++) n += Number(v.getBigUint64(c * 8, true));
      out.push(n);
    }
    return out;
  }
  release(): void {
    this.attachedTo = [];
    this.obj?.close();
    this.obj = undefined;
    this.maps = undefined;
  }
  detach(): void {
    for (const ifindex of this.attachedTo.splice(0)) {
      try {
        tcDetach({ ifindex, attachPoint: BPF_TC_INGRESS, ...ENCAP_FILTER });
      } catch {
        // the interface may be gone
      }
    }
    this.obj?.close();
    this.obj = undefined;
    this.maps = undefined;
  }
}
