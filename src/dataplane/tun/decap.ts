/**
 * The real-server side of the TUN plane: kv_tun_decap (tun_decap.bpf.c) on an interface's tc ingress,
 * accepting tunnelled packets (IPIP, GRE, GUE on the given ports) for the given VIPs only. The filter keeps the program and its VIP map
 * alive after this process exits; detaching it is the only undo.
 */
import { BPF_TC_INGRESS, BpfObject, progName, tcAttach, tcDetach, tcHookCreate, tcQuery } from '../../os/libbpf.js';
import { bpfObjectPath, DECAP_FILTER, ifindexOf } from './kernel.js';
import { portKey, vipKey } from './layout.js';

export const DECAP_PROGRAM = 'kv_tun_decap';

export interface DecapAttachment {
  readonly ifname: string;
  readonly ifindex: number;
  readonly progId: number;
  /** this call created the interface's clsact qdisc */
  readonly createdQdisc: boolean;
}

/**
 * Loads one decap program for `vips` (IPIP and GRE, plus GUE on `guePorts`) and attaches it,
 * replacing ours if present, to each interface.
 */
export function attachDecap(
  vips: readonly string[],
  ifnames: readonly string[],
  guePorts: readonly number[] = [],
): DecapAttachment[] {
  const ifindexes = ifnames.map(ifindexOf);
  const obj = BpfObject.load(bpfObjectPath('tun_decap'));
  try {
    const map = obj.map('kv_vips');
    const one = new Uint8Array(4);
    one[0] = 1;
    for (const v of vips) map.update(vipKey(v), one);
    const ports = obj.map('kv_gue_ports');
    for (const p of guePorts) ports.update(portKey(p), one);
    const fd = obj.programFd(DECAP_PROGRAM);
    return ifnames.map((ifname, i) => {
      const ifindex = ifindexes[i];
      const createdQdisc = tcHookCreate({ ifindex, attachPoint: BPF_TC_INGRESS });
      const progId = tcAttach({ ifindex, attachPoint: BPF_TC_INGRESS, ...DECAP_FILTER }, fd);
      return { ifname, ifindex, progId, createdQdisc };
    });
  } finally {
    obj.close(); // the attached filters hold the program and its map
  }
}

/** The decap program id attached to an interface, when it is ours. */
export function decapProgId(ifname: string): number | undefined {
  let ifindex: number;
  try {
    ifindex = ifindexOf(ifname);
  } catch {
    return undefined;
  }
  const id = tcQuery({ ifindex, attachPoint: BPF_TC_INGRESS, ...DECAP_FILTER });
  if (id === undefined) return undefined;
  return progName(id) === DECAP_PROGRAM ? id : undefined;
}

export function detachDecap(ifname: string): boolean {
  let ifindex: number;
  try {
    ifindex = ifindexOf(ifname);
  } catch {
    return false;
  }
  return tcDetach({ ifindex, attachPoint: BPF_TC_INGRESS, ...DECAP_FILTER });
}
