/** Whether the kernel (nftables) data plane can run here: root, libnftables, and nftables answering. */
import type { KernelProbe } from '../dataplane/select.js';
import { LibNftables, libnftablesAvailable } from './libnftables.js';

export function probeKernelPlane(): KernelProbe {
  const tun = false; // the tc-BPF TUN plane reports itself here once it is built in
  if (process.platform !== 'linux') return { usable: false, reason: 'not Linux', tun };
  if (process.getuid?.() !== 0) return { usable: false, reason: 'not running as root', tun };
  if (!libnftablesAvailable()) return { usable: false, reason: 'libnftables.so.1 missing (Debian libnftables1)', tun };
  try {
    const nft = new LibNftables();
    const r = nft.run('list tables');
    nft.close();
    if (!r.ok) return { usable: false, reason: `nftables refused: ${r.error.trim()}`, tun };
  } catch (e) {
    return { usable: false, reason: e instanceof Error ? e.message : String(e), tun };
  }
  return { usable: true, reason: '', tun };
}
