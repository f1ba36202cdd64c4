/**
 * conntrack's own timeouts per protocol state (net.netfilter.nf_conntrack_*_timeout_*), to tell how
 * long ago an entry last saw a packet: each packet sets its timeout to the state's value, so
 * idle = that value - the seconds left.
 */
import { readFileSync } from 'node:fs';
import type { CtEntry } from '../codec/conntrack.js';

export interface CtTimeouts {
  /** TCP states as conntrack names them (ESTABLISHED, FIN_WAIT...) -> seconds */
  readonly tcp: Readonly<Record<string, number>>;
  /** an established entry with data not acknowledged yet gets this one instead (if shorter) */
  readonly tcpUnacked: number;
  /** UDP: unreplied, and assured (a stream) */
  readonly udp: number;
  readonly udpStream: number;
}

const TCP_STATES = ['SYN_SENT', 'SYN_RECV', 'ESTABLISHED', 'FIN_WAIT', 'CLOSE_WAIT', 'LAST_ACK', 'TIME_WAIT', 'CLOSE'];

/** The values of this network namespace (the kernel's defaults where a file cannot be read). */
export function readCtTimeouts(dir = '/proc/sys/net/netfilter'): CtTimeouts {
  const read = (name: string, dflt: number): number => {
    try {
      const v = Number(readFileSync(`${dir}/nf_conntrack_${name}`, 'utf8').trim());
      return Number.isFinite(v) && v > 0 ? v : dflt;
    } catch {
      return dflt;
    }
  };
  // nf_conntrack_proto_tcp.c tcp_timeouts[], nf_conntrack_proto_udp.c udp_timeouts[]
  const dflt: Record<string, number> = {
    SYN_SENT: 120,
    SYN_RECV: 60,
    ESTABLISHED: 432000,
    FIN_WAIT: 120,
    CLOSE_WAIT: 60,
    LAST_ACK: 30,
    TIME_WAIT: 120,
    CLOSE: 10,
  };
  const tcp: Record<string, number> = {};
  for (const st of TCP_STATES) tcp[st] = read(`tcp_timeout_${st.toLowerCase()}`, dflt[st]);
  return {
    tcp,
    tcpUnacked: read('tcp_timeout_unacknowledged', 300),
    udp: read('udp_timeout', 30),
    udpStream: read('udp_timeout_stream', 120),
  };
}

/**
 * Seconds since the entry's last packet, or null when its timeout cannot be told. Where two values
 * could apply (an established entry with unacknowledged data, an unreplied or assured UDP one), the
 * shorter is taken when the seconds left fit it: the entry is then taken for recently active,
 * which keeps its drop longer rather than shorter.
 */
export function ctIdleSeconds(e: CtEntry, t: CtTimeouts): number | null {
  let full: number | undefined;
  if (e.protocol === 'tcp') {
    full = t.tcp[e.state];
    if (full !== undefined && e.state === 'ESTABLISHED' && t.tcpUnacked < full && e.timeout <= t.tcpUnacked)
      full = t.tcpUnacked;
  } else if (e.protocol === 'udp') full = e.timeout <= t.udp ? t.udp : t.udpStream;
  if (full === undefined) return null;
  return Math.max(0, full - e.timeout);
}
