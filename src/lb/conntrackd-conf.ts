/**
 * keepvs's private conntrackd.conf (conntrackd.conf(5)), rendered from the sync spec: FTFW
 * (reliable, with the external cache that the new master commits), multicast to the sync group
 * or UDP to a unicast peer, and an address filter so only the flows keepvs forwards to its real
 * servers are replicated.
 */
import { canonicalAddress } from '../util/address.js';
import type { SyncSpec } from './conn-sync.js';

export interface ConntrackdConfInput {
  readonly spec: SyncSpec;
  /** this director's IPv4 address on the sync interface (multicast IPv4_interface, UDP source) */
  readonly localAddress: string;
  /** the UNIX control socket and lock file (in keepvs's private run directory) */
  readonly controlSocket: string;
  readonly lockFile: string;
  /**
   * The real servers' addresses. conntrackd's address filter looks at the original source and
   * the reply source of a flow; for a NAT or full-NAT flow those are the client and the real
   * server, never the VIP (seen in the lab: an Accept list of VIPs replicates nothing), so the
   * real servers are what selects keepvs's flows. It filters in userspace: the kernel-space
   * variant (BPF on the event socket) replicated nothing with the same list on this kernel.
   */
  readonly realServers: readonly string[];
  readonly protocols: readonly ('tcp' | 'udp' | 'sctp')[];
  /**
   * The peer's flows go straight into the kernel table (conntrackd's DisableExternalCache on),
   * as IPVS's backup daemon inserts its connections: when no VRRP instance is followed and so
   * no takeover would ever commit them.
   */
  readonly injectDirectly?: boolean;
}

const isIPv4 = (a: string) => canonicalAddress(a, 4) !== null;
const isMulticast4 = (a: string) => isIPv4(a) && Number(a.split('.')[0]) >= 224 && Number(a.split('.')[0]) <= 239;

/** Why conntrackd cannot do what the spec asks (undefined: it can). */
export function unsupportedSpec(spec: SyncSpec): string | undefined {
  if (!isIPv4(spec.group))
    return `sync group ${spec.group}: conntrackd is driven over IPv4 here (an IPv4 multicast group or unicast peer)`;
  return undefined;
}

export function renderConntrackdConf(i: ConntrackdConfInput): string {
  const s = i.spec;
  const transport = isMulticast4(s.group)
    ? [
        '  Multicast Default {',
        `    IPv4_address ${s.group}`,
        `    Group ${s.port}`,
        `    IPv4_interface ${i.localAddress}`,
        `    Interface ${s.interface}`,
        '    SndSocketBuffer 1249280',
        '    RcvSocketBuffer 1249280',
        '    Checksum on',
        '  }',
      ]
    : [
        '  UDP Default {',
        `    IPv4_address ${i.localAddress}`,
        `    IPv4_Destination_Address ${s.group}`,
        `    Port ${s.port}`,
        `    Interface ${s.interface}`,
        '    SndSocketBuffer 1249280',
        '    RcvSocketBuffer 1249280',
        '    Checksum on',
        '  }',
      ];
  const protos = [...new Set(i.protocols)].map((p) => `      ${p.toUpperCase()}`);
  const v4 = [...new Set(i.realServers)].filter((a) => isIPv4(a)).map((a) => `      IPv4_address ${a}`);
  const v6 = [...new Set(i.realServers)].filter((a) => !isIPv4(a)).map((a) => `      IPv6_address ${a}`);
  // with no real server yet, accept nothing rather than everything (an empty Accept list matches none)
  const addresses = v4.length + v6.length > 0 ? [...v4, ...v6] : ['      IPv4_address 0.0.0.0/32'];
  return [
    '# written by keepvs for its connection sync (docs/conn-sync.md); rewritten at each start',
    'Sync {',
    '  Mode FTFW {',
    `    DisableExternalCache ${i.injectDirectly ? 'on' : 'off'}`,
    '    StartupResync on',
    '  }',
    ...transport,
    '}',
    'General {',
    '  HashSize 32768',
    '  HashLimit 131072',
    '  LogFile off',
    '  Syslog off',
    `  LockFile ${i.lockFile}`,
    '  UNIX {',
    `    Path ${i.controlSocket}`,
    '  }',
    '  NetlinkBufferSize 2097152',
    '  NetlinkBufferSizeMaxGrowth 8388608',
    '  Filter From Userspace {',
    '    Protocol Accept {',
    ...(protos.length ? protos : ['      TCP']),
    '    }',
    '    Address Accept {',
    ...addresses,
    '    }',
    '  }',
    '}',
    '',
  ].join('\n');
}
