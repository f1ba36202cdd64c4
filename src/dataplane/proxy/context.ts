/** What every service of one proxy process shares: the table, a coarse clock, options, libc helpers. */
import type { ForwardingTable } from '../../lb/types.js';
import type { FreebindLib } from './freebind.js';
import type { ProxyProtocolVersion } from './proxy-protocol.js';

export interface ProxyContext {
  readonly table: ForwardingTable;
  /** coarse monotonic ms, refreshed by the shared sweep (no clock read per chunk) */
  now: number;
  readonly connectTimeoutMs: number;
  readonly bindRetryMs: number;
  readonly freebind: FreebindLib | null;
  /** the port to bind for a service (tests pass key.port 0; a cluster primary may pre-resolve it) */
  bindPort(serviceId: string, port: number): number;
  proxyProtocol(serviceId: string): ProxyProtocolVersion | undefined;
  /** listeners report state changes and errors here */
  diagnostic(code: string, serviceId: string, message: string): void;
  /** only one worker binds UDP services (datagrams of one flow must reach one process) */
  readonly udpEnabled: boolean;
  /** UDP flows this process keeps at most (all services); the count is `udpFlows` */
  readonly maxUdpFlows: number;
  /** proxy workers sharing each listener (SO_REUSEPORT group): > 1 steers each client to one (steer.ts) */
  readonly steerWorkers: number;
  udpFlows: number;
  /** a limit was hit: counted by the caller, reported here (rate-limited diagnostic) */
  limitHit(serviceId: string, code: 'DP_FD_EXHAUSTED' | 'DP_UDP_FLOW_LIMIT', message: string): void;
}
