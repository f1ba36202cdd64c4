/**
 * Health-check contracts: the checker interface, the I/O ports checkers use, and the
 * HealthView the lb engine turns into table ops.
 */
import type { Duplex } from 'node:stream';
import type { Checker as CheckerConfig, Family, RealServer, VirtualServer } from '../config/model.js';
import type { ProcessRunner } from '../util/ports.js';

/** What one probe concluded. */
export interface CheckResult {
  readonly up: boolean;
  /** keepalived-style reason, used in log lines, e.g. "TCP connection to [198.18.1.11]:tcp:80 failed" */
  readonly reason: string;
  /**
   * Dynamic weight reported by the checker (MISC_CHECK misc_dynamic, FILE_CHECK): the real
   * server's effective weight from now on. Undefined = keep the current weight.
   */
  readonly weight?: number;
}

/** The real server a checker probes, with its resolved addresses. */
export interface CheckTarget {
  readonly vs: VirtualServer;
  readonly rs: RealServer;
  /** address/port probed: connect_ip/connect_port, else the real server's */
  readonly address: string;
  readonly port: number;
  readonly family: Family;
  /** configured weight of the real server (for dynamic weight checkers) */
  readonly weight: number;
}

/** One keepalived checker. `run` must settle when `signal` aborts and release every socket. */
export interface Checker {
  readonly type: CheckerConfig['type'];
  run(target: CheckTarget, signal: AbortSignal): Promise<CheckResult>;
}

export interface TcpDialOptions {
  readonly host: string;
  readonly port: number;
  readonly family: Family;
  readonly localAddress?: string;
  readonly localPort?: number;
  /** TLS client (SSL_GET): SNI name, or undefined to send none */
  readonly tls?: { readonly servername?: string };
  readonly signal: AbortSignal;
}

export interface UdpExchangeOptions {
  readonly host: string;
  readonly port: number;
  readonly family: Family;
  readonly localAddress?: string;
  readonly localPort?: number;
  readonly payload: Uint8Array;
  /** replies for which this returns false are ignored and the wait goes on (e.g. a DNS id mismatch) */
  readonly accept?: (reply: Uint8Array) => boolean;
  /** ends the wait for a reply or an ICMP error (the result is then `silence`) */
  readonly signal: AbortSignal;
}

export type UdpExchangeResult =
  | { readonly kind: 'reply'; readonly data: Uint8Array }
  /** ICMP unreachable (ECONNREFUSED) or another socket error */
  | { readonly kind: 'error'; readonly code: string }
  /** the signal aborted before any reply or error */
  | { readonly kind: 'silence' };

/** Network port for checkers (implemented by src/os/dialer.ts). */
export interface Dialer {
  /** Resolves once connected (and TLS handshake done); rejects with an Error carrying `code`. */
  connectTcp(options: TcpDialOptions): Promise<Duplex>;
  udpExchange(options: UdpExchangeOptions): Promise<UdpExchangeResult>;
  /** ICMP echo; resolves true on an echo reply. Rejects (code KV_PING_UNAVAILABLE) when no ICMP socket is allowed. */
  ping(options: { readonly host: string; readonly family: Family; readonly signal: AbortSignal }): Promise<boolean>;
}

/** File port (FILE_CHECK). Resolves the content, or undefined when the file cannot be read. */
export interface FileReader {
  readText(path: string): Promise<string | undefined>;
}

/** Everything checkers may use. */
export interface CheckPorts {
  readonly dialer: Dialer;
  readonly runner: ProcessRunner;
  readonly files: FileReader;
}

/**
 * Health input for the virtual-server table (consumed by src/lb/desired.ts).
 *
 * services[serviceId(key)] (src/lb/types serviceId; a virtual_server_group VS uses `group:<name>:<proto>`):
 * - quorumUp: keepalived's quorum_state_up.
 * - dests[destId(dest)]:
 *   - up: the real server passes all its checkers (keepalived ISALIVE).
 *   - weight: the weight to program: the dynamic weight (misc_dynamic/FILE_CHECK) or the
 *     configured one; 0 while inhibited (inhibit_on_failure and down).
 *   - inPool: the destination should be in the table: (up, or inhibit_on_failure) and not
 *     displaced by an active sorry server.
 * - sorry: the sorry server, when configured: inPool true while quorum is lost
 *   (or always, weight 0 while quorum is up, with sorry_server_inhibit).
 */
export interface HealthView {
  readonly services: Readonly<Record<string, ServiceHealth>>;
}

export interface ServiceHealth {
  readonly quorumUp: boolean;
  readonly dests: Readonly<Record<string, DestHealth>>;
  readonly sorry?: DestHealth & { readonly dest: string };
}

export interface DestHealth {
  readonly up: boolean;
  readonly weight: number;
  readonly inPool: boolean;
}

/**
 * The same health in the shape the lb engine's desired-state builder takes (src/lb/desired.ts
 * `HealthInput`): keyed by its virtualServerId / realServerId (the real server as configured,
 * port 0 kept). `weight` is present only when a checker changed it (misc_dynamic, FILE_CHECK).
 * `pool` is the policy's verdict (who is in the pool, with which weight, and the sorry server):
 * the desired-state builder programs it as it is, so quorum, hysteresis, sorry server and
 * inhibit_on_failure are decided here only.
 */
export interface LbHealthInput {
  readonly pool?: Readonly<
    Record<
      string,
      {
        readonly dests: Readonly<Record<string, { readonly inPool: boolean; readonly weight: number }>>;
        readonly sorry?: { readonly inPool: boolean; readonly weight: number };
      }
    >
  >;
  readonly realServers: Readonly<
    Record<string, Readonly<Record<string, { readonly up: boolean; readonly weight?: number }>>>
  >;
  readonly quorum: Readonly<Record<string, boolean>>;
}
