/**
 * The virtual-server table's contract: keys, parameters, operations and snapshots.
 * Shared by lb/ (the table and schedulers), dataplane/ (forwarding), cli/ (keepvsadm)
 * and daemon/ (config -> ops, control socket). Plain data only, JSON-serialisable.
 */
import type { Family } from '../config/model.js';

export type Protocol = 'tcp' | 'udp' | 'sctp';

export interface Endpoint {
  /** canonical text (ipaddr.js toString), IPv6 without brackets */
  readonly address: string;
  readonly port: number;
}

export type ServiceKey =
  | {
      readonly kind: 'addr';
      readonly protocol: Protocol;
      readonly family: Family;
      readonly address: string;
      /** 0 = any port (only valid with persistence, as IPVS) */
      readonly port: number;
    }
  | { readonly kind: 'fwmark'; readonly family: Family; readonly fwmark: number };

// the ids are built in lb/ids.ts; re-exported here because most callers import the types from here
export { destId, serviceId } from './ids.js';

/** IPVS forwarding methods: ipvsadm prints Masq, Route, Tunnel, Local; DPVS's ipvsadm FullNat. */
export type ForwardMethod = 'masq' | 'route' | 'tunnel' | 'local' | 'fullnat';

export interface ServiceParams {
  /** rr wrr lc wlc sed nq fo ovf dh sh lblc lblcr mh twos; default wlc */
  readonly scheduler: string;
  /** sh-fallback sh-port mh-fallback mh-port flag-1 flag-2 flag-3 */
  readonly schedFlags: readonly string[];
  /** persistence timeout in seconds; undefined = not persistent */
  readonly persistentTimeout?: number;
  /** persistence granularity: IPv4 netmask as a prefix length (0..32) or IPv6 prefix length (0..128) */
  readonly persistentPrefixLen?: number;
  /** one-packet scheduling (UDP) */
  readonly ops: boolean;
  /** persistence engine name (sip); recorded and shown, not interpreted */
  readonly pe?: string;
  /** keepvs: PROXY protocol header the proxy data plane sends to real servers (not an IPVS field); unset: its default */
  readonly proxyProtocol?: 'v1' | 'v2' | 'off';
  /** keepvs `flow_pinning`: kernel DR pins each flow to its real server, idle timeout in seconds (not an IPVS field) */
  readonly flowPinTimeout?: number;
}

export interface DestParams {
  readonly forward: ForwardMethod;
  /** 0..65535; 0 = quiescent */
  readonly weight: number;
  /** upper connection threshold; 0 = none */
  readonly uThreshold: number;
  /** lower connection threshold; 0 = none (then 3/4 of upper) */
  readonly lThreshold: number;
  readonly tunType?: 'ipip' | 'gue' | 'gre';
  readonly tunPort?: number;
  readonly tunFlags?: readonly ('nocsum' | 'csum' | 'remcsum')[];
}

/** Live changes to the table (keepvsadm, config diff, health checks). Idempotent where IPVS allows. */
export type TableOp =
  | { readonly op: 'add-service'; readonly key: ServiceKey; readonly params: ServiceParams }
  | { readonly op: 'edit-service'; readonly key: ServiceKey; readonly params: ServiceParams }
  | { readonly op: 'del-service'; readonly key: ServiceKey }
  | { readonly op: 'add-dest'; readonly key: ServiceKey; readonly dest: Endpoint; readonly params: DestParams }
  | { readonly op: 'edit-dest'; readonly key: ServiceKey; readonly dest: Endpoint; readonly params: DestParams }
  | { readonly op: 'del-dest'; readonly key: ServiceKey; readonly dest: Endpoint }
  | { readonly op: 'clear' }
  | { readonly op: 'zero'; readonly key?: ServiceKey }
  /** seconds; 0 leaves a value unchanged (ipvsadm --set) */
  | { readonly op: 'set-timeouts'; readonly tcp: number; readonly tcpfin: number; readonly udp: number };

/**
 * Failures of a TableOp. Each maps to ipvsadm's message (cli/ prints them):
 * service-exists "Service already exists", no-service "No such service",
 * dest-exists "Destination already exists", no-dest "No such destination",
 * no-scheduler "Scheduler or persistence engine not found", invalid "Invalid argument".
 */
export type TableOpErrorCode = 'service-exists' | 'no-service' | 'dest-exists' | 'no-dest' | 'no-scheduler' | 'invalid';

export interface TableOpError {
  readonly code: TableOpErrorCode;
  readonly message: string;
}

/** Cumulative counters, as IPVS keeps per service and per destination. */
export interface Stats {
  readonly conns: number;
  readonly inPkts: number;
  readonly outPkts: number;
  readonly inBytes: number;
  readonly outBytes: number;
}

/** Rate estimates (per second), computed as IPVS's estimator does. */
export interface Rates {
  readonly cps: number;
  readonly inPps: number;
  readonly outPps: number;
  readonly inBps: number;
  readonly outBps: number;
}

export interface DestSnapshot extends DestParams {
  /** the real server's id within its service (lb/ids destId): what the API, checks and dashboard name it by */
  readonly id: string;
  readonly address: string;
  readonly port: number;
  readonly family: Family;
  readonly activeConns: number;
  readonly inactConns: number;
  readonly persistConns: number;
  readonly overloaded: boolean;
  readonly stats: Stats;
  readonly rates: Rates;
}

export interface ServiceSnapshot extends ServiceParams {
  readonly key: ServiceKey;
  readonly id: string;
  readonly stats: Stats;
  readonly rates: Rates;
  readonly dests: readonly DestSnapshot[];
  /** new connections refused with "no destination available" (additive) */
  readonly noDest?: number;
}

/** IPVS connection states as ipvsadm -Lc prints them. */
export type ConnState =
  | 'NONE'
  | 'ESTABLISHED'
  | 'SYN_SENT'
  | 'SYN_RECV'
  | 'FIN_WAIT'
  | 'TIME_WAIT'
  | 'CLOSE'
  | 'CLOSE_WAIT'
  | 'LAST_ACK'
  | 'LISTEN'
  | 'SYNACK'
  | 'UDP'
  | 'ERR';

export interface ConnSnapshot {
  readonly protocol: Protocol;
  readonly client: Endpoint;
  readonly virtual: Endpoint;
  readonly dest: Endpoint;
  readonly family: Family;
  readonly state: ConnState;
  /** milliseconds until expiry */
  readonly expiresInMs: number;
  /** true for persistence templates */
  readonly template: boolean;
  /** the service's id (lb/ids serviceId), when the producer knows it (additive: -Lnc ignores it) */
  readonly service?: string;
  /** the real server's id within the service (lb/ids destId), when known */
  readonly realServer?: string;
  /** a kernel DR flow-map entry (flow_pinning), not a conntrack entry */
  readonly pinned?: boolean;
}

export interface Timeouts {
  /** seconds; defaults 900 / 120 / 300 */
  readonly tcp: number;
  readonly tcpfin: number;
  readonly udp: number;
}

export interface SyncDaemonSnapshot {
  readonly role: 'master' | 'backup';
  readonly mcastInterface: string;
  readonly syncId: number;
  readonly maxlen?: number;
  readonly group?: string;
  readonly port?: number;
  readonly ttl?: number;
}

export interface TableSnapshot {
  readonly services: readonly ServiceSnapshot[];
  readonly timeouts: Timeouts;
  /** size of the connection hash table as ipvsadm's header shows it */
  readonly connTableSize: number;
  readonly syncDaemons: readonly SyncDaemonSnapshot[];
}

/**
 * What a data plane asks of the table for each new connection or flow.
 * Implemented by lb/ (scheduler + persistence + accounting); used by dataplane/proxy.
 */
export interface ForwardingTable {
  /** A destination for a new connection from `client` to service `key`, or null (no destination). */
  open(key: ServiceKey, client: Endpoint, hint?: OpenHint): ConnHandle | null;
}

/** Optional facts for `open` (additive): the protocol of a fwmark service's connection. */
export interface OpenHint {
  /** default tcp */
  readonly protocol?: Protocol;
}

/** One accounted connection (IPVS connection entry). */
export interface ConnHandle {
  readonly dest: Endpoint;
  readonly forward: ForwardMethod;
  /** Moves the entry to an IPVS state: ESTABLISHED counts Active, others InAct. */
  setState(state: ConnState): void;
  /** Idle timeout for the current state, in ms (from the table's timeouts). */
  idleTimeoutMs(): number;
  /** client -> server traffic */
  countIn(packets: number, bytes: number): void;
  /** server -> client traffic */
  countOut(packets: number, bytes: number): void;
  /** The connection is gone: its counts leave ActiveConn/InActConn. Idempotent. */
  close(): void;
  /**
   * The data plane is done with a TCP connection, but the entry stays as IPVS keeps it: in
   * `finalState` (TIME_WAIT after both FINs, CLOSE after a reset, per ip_vs_proto_tcp.c
   * tcp_states), counted in InActConn (and so by lc/wlc) until that state's timeout expires it.
   */
  release(finalState: ConnState): void;
}
