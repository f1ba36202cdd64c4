/**
 * The data plane port: whatever moves packets for the virtual services (the userspace proxy here,
 * nftables elsewhere, a recording fake in tests). The daemon feeds it the same TableOps it feeds
 * the table; the data plane opens/closes listeners and reacts to destinations leaving.
 */
import type { Endpoint, Protocol, ServiceKey, TableOp } from '../lb/types.js';

/**
 * Per-destination view of the data plane (summed over workers). The counts ipvsadm shows are the
 * table's (TableSnapshot): the proxy reports into the table through its ConnHandles and leaves
 * them out here; only a plane whose packets bypass the table (the kernel plane: conntrack, nft
 * counter sets, the tc-BPF map) gives them, and LvsService lays them over the table's snapshot.
 */
export interface DataPlaneDestSnapshot extends Endpoint {
  readonly id: string;
  readonly activeConns?: number;
  readonly inactConns?: number;
  readonly conns?: number;
  readonly inPkts?: number;
  readonly outPkts?: number;
  readonly inBytes?: number;
  readonly outBytes?: number;
  /** connects to this real server that were refused, reset or timed out */
  readonly connectFailures: number;
  /** false: the data plane cannot send it traffic yet (kernel plane DR: its MAC is not resolved) */
  readonly forwarding?: boolean;
}

/** A destination with no traffic counted (yet): only the connection counts given. */
export function quietDestSnapshot(id: string, ep: Endpoint, activeConns = 0, inactConns = 0): DataPlaneDestSnapshot {
  return {
    id,
    address: ep.address,
    port: ep.port,
    activeConns,
    inactConns,
    conns: 0,
    inPkts: 0,
    outPkts: 0,
    inBytes: 0,
    outBytes: 0,
    connectFailures: 0,
  };
}

export type ListenerState = 'listening' | 'waiting-for-address' | 'failed' | 'draining';

export interface DataPlaneServiceSnapshot {
  readonly id: string;
  readonly key: ServiceKey;
  readonly protocol: Protocol;
  readonly listener: ListenerState;
  /** bound port (differs from key.port only when key.port was 0 in tests) */
  readonly boundPort: number;
  /** last listener error (EADDRNOTAVAIL...) */
  readonly error?: string;
  /** connections/flows the table gave no destination: closed (TCP) or dropped (UDP) */
  readonly noDest: number;
  /** connections whose real server refused or timed out */
  readonly connectFailures: number;
  /** open client connections (TCP) or flows (UDP) */
  readonly open: number;
  readonly dests: readonly DataPlaneDestSnapshot[];
  /** limits hit (proxy data plane): absent when none was */
  readonly limits?: LimitCounters;
}

/** Resource limits the proxy hit, per service (summed over workers); logged once per interval. */
export interface LimitCounters {
  /** accept() or socket() failed with EMFILE/ENFILE (TCP keeps serving: the listener pauses briefly) */
  fdExhausted: number;
  /** UDP datagrams of new flows dropped: the worker's flow limit was reached and no flow was idle */
  udpFlowsDropped: number;
  /** idle UDP flows closed early to make room for new ones at the flow limit */
  udpFlowsEvicted: number;
}

export interface DataPlaneSnapshot {
  readonly kind: string;
  readonly workers: number;
  readonly services: readonly DataPlaneServiceSnapshot[];
  /** ops the data plane could not honour (fwmark, sctp, bad address), newest last */
  readonly diagnostics: readonly DataPlaneDiagnostic[];
}

export interface DataPlaneDiagnostic {
  /** stable codes: DP_UNSUPPORTED_FWMARK, DP_UNSUPPORTED_PROTOCOL, DP_UNSUPPORTED_FORWARD, DP_LISTEN_FAILED,
   * DP_FD_EXHAUSTED, DP_UDP_FLOW_LIMIT (those two at most once per 10 s per service) */
  readonly code: string;
  readonly service: string;
  readonly message: string;
}

export interface DataPlane {
  /** Applies table changes in order; tolerant of replays (add of an existing service is a no-op). */
  apply(ops: readonly TableOp[]): Promise<void>;
  snapshot(): DataPlaneSnapshot;
  /** Closes every listener, lets open connections finish for up to drainMs, then closes them. */
  stop(drainMs: number): Promise<void>;
  /** Options that change on a running plane (a reload, a new controller): absent ones keep their value. */
  setOptions?(options: RuntimeDataPlaneOptions): void;
}

/** The data-plane options a reload or a new keepvs can change without a restart. */
export interface RuntimeDataPlaneOptions {
  readonly expireNodestConn?: NodestPolicy;
  /** the whole map: a default ('*') or service that is no longer there is gone */
  readonly proxyProtocol?: Readonly<Record<string, 'v1' | 'v2'>>;
}

/** What to do with connections to a destination that was deleted (IPVS sysctl expire_nodest_conn). */
export type NodestPolicy = 'close' | 'keep';

export interface DataPlaneOptions {
  /** default 'keep' (the IPVS default expire_nodest_conn = 0) */
  readonly expireNodestConn?: NodestPolicy;
  /** connect timeout towards real servers, ms (default 5000) */
  readonly connectTimeoutMs?: number;
  /** del-service: how long open connections may drain before being closed, ms (default 2000) */
  readonly drainMs?: number;
  /** PROXY protocol header sent to real servers, per service id (or '*' for all TCP services) */
  readonly proxyProtocol?: Readonly<Record<string, 'v1' | 'v2'>>;
  /** period of the shared idle/connect-timeout sweep, ms (default 1000) */
  readonly sweepMs?: number;
  /** retry period for UDP services whose VIP is not local yet, ms (default 1000) */
  readonly bindRetryMs?: number;
  /**
   * UDP flows (each owns an upstream socket, an fd) one proxy process keeps at most, all UDP
   * services together (default: a quarter of the process's open-file limit, at most 16384), so
   * UDP clients cannot take the fds TCP needs
   */
  readonly maxUdpFlows?: number;
  /** the number of proxy workers sharing each listener; > 1: clients are steered by source address */
  readonly steerWorkers?: number;
}
