/**
 * `--dataplane auto|nft|proxy`: auto takes the kernel (nftables) plane when keepvs runs as root and
 * nftables answers, the userspace proxy otherwise; nft and proxy force one (nft fails to start when
 * the kernel plane is unusable, never falling back in silence). Pure: the probe is given.
 */
import type { DataplaneCapabilities } from '../config/model.js';

export type DataplaneRequest = 'auto' | 'nft' | 'proxy';

export interface KernelProbe {
  readonly usable: boolean;
  /** why not, when unusable */
  readonly reason: string;
  /** the TUN encapsulation is available */
  readonly tun: boolean;
  /** why not, when it is not */
  readonly tunReason?: string;
}

export interface DataplaneChoice {
  readonly plane: 'nft' | 'proxy';
  readonly capabilities: DataplaneCapabilities;
  /** set when the request cannot be met (--dataplane nft without a usable kernel plane) */
  readonly error?: string;
  /** one line for the log: what was chosen and why */
  readonly reason: string;
}

export function chooseDataplane(request: DataplaneRequest, probe: () => KernelProbe): DataplaneChoice {
  const proxy = (reason: string): DataplaneChoice => ({
    plane: 'proxy',
    capabilities: { name: 'proxy', kernel: false, tun: false },
    reason,
  });
  if (request === 'proxy') return proxy('userspace proxy (--dataplane proxy)');
  const p = probe();
  if (p.usable)
    return {
      plane: 'nft',
      capabilities: { name: 'nft', kernel: true, tun: p.tun, ...(p.tunReason ? { tunUnavailable: p.tunReason } : {}) },
      reason: `kernel plane (nftables${p.tun ? ', tc-BPF TUN' : ''}; --dataplane ${request})`,
    };
  if (request === 'nft')
    return {
      ...proxy(`kernel plane unusable: ${p.reason}`),
      capabilities: { name: 'nft', kernel: false, tun: false },
      error: `--dataplane nft: the kernel data plane is not usable here: ${p.reason}`,
    };
  return proxy(`userspace proxy (--dataplane auto: ${p.reason})`);
}
