/**
 * What the proxy keeps per real server beside the table: its connect failures and the open
 * connections to expire when it is deleted (expire_nodest_conn). The counts ipvsadm shows
 * (ActiveConn, InActConn, connections, packets, bytes) are the table's: the proxy reports each
 * state change and byte delta through its ConnHandle and keeps no copy of them.
 */
import type { Family } from '../../config/model.js';
import { destId, type Endpoint } from '../../lb/types.js';

export class ProxyDest {
  /** connects to this real server that were refused, reset or timed out (the table never sees them) */
  connectFailures = 0;
  /** open connections tied to this destination (for expire_nodest_conn) */
  readonly open = new Set<{ expire(): void; hold(on: boolean): void }>();
  /** removed from its service with expire_nodest_conn off: its connections are held (IPVS drops their packets) */
  removed = false;
  constructor(
    readonly id: string,
    readonly endpoint: Endpoint,
  ) {}
}

/** A service's ProxyDests by real server, looked up by address and port (no id string built per connection). */
export class ProxyDests {
  private readonly byId = new Map<string, ProxyDest>();
  private readonly index = new Map<string, Map<number, ProxyDest>>();
  constructor(private readonly family: Family) {}

  /** The real server's record, made at its first add-dest or connection. */
  of(ep: Endpoint): ProxyDest {
    let byPort = this.index.get(ep.address);
    const hit = byPort?.get(ep.port);
    if (hit) return hit;
    const id = destId(ep, this.family);
    let d = this.byId.get(id);
    if (!d) {
      d = new ProxyDest(id, { address: ep.address, port: ep.port });
      this.byId.set(id, d);
    }
    if (!byPort) {
      byPort = new Map();
      this.index.set(ep.address, byPort);
    }
    byPort.set(ep.port, d);
    return d;
  }

  /**
   * del-dest: with expire_nodest_conn (`expire`) its open connections go now; else what their clients
   * send no longer reaches it (IPVS ip_vs_in_hook drops a connection's packets while its destination
   * is not available) until they expire idle, or the real server comes back (back()).
   */
  forget(ep: Endpoint, expire: boolean): void {
    const d = this.byId.get(destId(ep, this.family));
    if (!d) return;
    if (expire) {
      for (const c of [...d.open]) c.expire();
      return;
    }
    d.removed = true;
    for (const c of d.open) c.hold(true);
  }

  /** add-dest of a real server removed before: IPVS restores it from the trash, its connections go on. */
  back(ep: Endpoint): void {
    const d = this.byId.get(destId(ep, this.family));
    if (!d?.removed) return;
    d.removed = false;
    for (const c of d.open) c.hold(false);
  }

  /** ipvsadm -Z */
  zero(): void {
    for (const d of this.byId.values()) d.connectFailures = 0;
  }

  values(): IterableIterator<ProxyDest> {
    return this.byId.values();
  }
}
