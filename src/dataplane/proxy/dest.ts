/**
 * What the proxy keeps per real server beside the table: its connect failures and the open
 * connections to expire when it is deleted (expire_nodest_conn). The counts ipvsadm shows
 * (ActiveConn, InActConn, connections, packets, bytes) are the table's: the proxy reports each
 * state change and byte delta through its ConnHandle and keeps no copy of them.
 */
import type { Endpoint } from '../../lb/types.js';

export class ProxyDest {
  /** connects to this real server that were refused, reset or timed out (the table never sees them) */
  connectFailures = 0;
  /** open connections tied to this destination (for expire_nodest_conn) */
  readonly open = new Set<{ expire(): void }>();
  constructor(
    readonly id: string,
    readonly endpoint: Endpoint,
  ) {}
}
