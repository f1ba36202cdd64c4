/**
 * IPVS connection states and their timeouts (ip_vs_proto_tcp.c tcp_timeouts[],
 * ip_vs_proto_udp.c udp_timeouts[]). `--set tcp tcpfin udp` rewrites ESTABLISHED,
 * FIN_WAIT and UDP; the others are fixed.
 */
import type { ConnState, Timeouts } from './types.js';

export const DEFAULT_TIMEOUTS: Timeouts = { tcp: 900, tcpfin: 120, udp: 300 };

/** Fixed TCP state timeouts in seconds. */
const FIXED_SECONDS: Readonly<Record<ConnState, number>> = {
  NONE: 2,
  ESTABLISHED: 900,
  SYN_SENT: 120,
  SYN_RECV: 60,
  FIN_WAIT: 120,
  TIME_WAIT: 120,
  CLOSE: 10,
  CLOSE_WAIT: 60,
  LAST_ACK: 30,
  LISTEN: 120,
  SYNACK: 120,
  UDP: 300,
  ERR: 2,
};

/** State order used for compact storage (index = stored byte). */
export const CONN_STATES: readonly ConnState[] = [
  'NONE',
  'ESTABLISHED',
  'SYN_SENT',
  'SYN_RECV',
  'FIN_WAIT',
  'TIME_WAIT',
  'CLOSE',
  'CLOSE_WAIT',
  'LAST_ACK',
  'LISTEN',
  'SYNACK',
  'UDP',
  'ERR',
];
export const STATE_INDEX: ReadonlyMap<ConnState, number> = new Map(CONN_STATES.map((s, i) => [s, i]));

/** Idle timeout of a state in seconds, with the configurable ones taken from `t`. */
export function stateTimeoutSeconds(state: ConnState, t: Timeouts): number {
  if (state === 'ESTABLISHED') return t.tcp;
  if (state === 'FIN_WAIT') return t.tcpfin;
  if (state === 'UDP') return t.udp;
  return FIXED_SECONDS[state];
}

/** ipvsadm --set: 0 leaves a value unchanged. */
export function mergeTimeouts(current: Timeouts, set: { tcp: number; tcpfin: number; udp: number }): Timeouts {
  return {
    tcp: set.tcp > 0 ? set.tcp : current.tcp,
    tcpfin: set.tcpfin > 0 ? set.tcpfin : current.tcpfin,
    udp: set.udp > 0 ? set.udp : current.udp,
  };
}
