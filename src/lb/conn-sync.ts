/**
 * Connection sync, the pure part: what IPVS's sync daemon is asked to do (keepalived's
 * `lvs_sync_daemon`, ipvsadm's --start-daemon), done by Debian's conntrackd in FTFW mode
 * (docs/conn-sync.md). This file decides; src/os/conntrackd.ts runs the daemon.
 */
import type { Config } from '../config/model.js';
import { canonicalAddress } from '../util/address.js';
import { serviceId } from './ids.js';
import { stateTimeoutSeconds } from './timeouts.js';
import type { ConnSnapshot, ConnState, TableSnapshot } from './types.js';

/** ipvsadm's daemon states (IP_VS_STATE_MASTER / IP_VS_STATE_BACKUP) */
export type SyncState = 'master' | 'backup';

/** What the sync daemon is configured with (ipvsadm's daemon options; keepalived's lvs_sync_daemon). */
export interface SyncSpec {
  readonly interface: string;
  /** ipvsadm --syncid (0..255, default 0) */
  readonly syncId: number;
  /** --mcast-group (default 224.0.0.81); a unicast address is the peer director (conntrackd's UDP transport) */
  readonly group: string;
  /** --mcast-port (default 8848) */
  readonly port: number;
  /** --mcast-ttl (default 1) */
  readonly ttl: number;
  readonly maxlen?: number;
  /**
   * the vrrp_instance whose state the role follows (keepalived); unset: both the master and the
   * backup daemon run for as long as keepvs runs (keepalived.conf(5)), or keepvsadm set it
   */
  readonly instance?: string;
}

/** ip_vs_sync.c / ipvsadm defaults: IP_VS_SYNC_GROUP 224.0.0.81, IP_VS_SYNC_PORT 8848, TTL 1 */
export const SYNC_DEFAULTS = { group: '224.0.0.81', port: 8848, ttl: 1, syncId: 0 } as const;

/**
 * The sync daemon the configuration asks for: global_defs `lvs_sync_daemon`, else the older
 * per-instance `lvs_sync_daemon_interface` (keepalived's vrrp_parser lvs_syncd_handler: the first
 * instance that names one; its instance is the one followed).
 */
export function syncSpecOf(config: Pick<Config, 'globalDefs' | 'vrrpInstances'>): SyncSpec | undefined {
  const g = config.globalDefs.lvsSyncDaemon;
  // keepalived.conf(5): the sync id defaults to the instance's VRID, or 0 without an instance
  const vrid = (name: string | undefined) => config.vrrpInstances.find((i) => i.name === name)?.vrid;
  if (g)
    return {
      interface: g.interface,
      syncId: g.syncId ?? vrid(g.instance) ?? SYNC_DEFAULTS.syncId,
      group: g.group ?? SYNC_DEFAULTS.group,
      port: g.port ?? SYNC_DEFAULTS.port,
      ttl: g.ttl ?? SYNC_DEFAULTS.ttl,
      ...(g.maxlen !== undefined ? { maxlen: g.maxlen } : {}),
      ...(g.instance !== undefined ? { instance: g.instance } : {}),
    };
  const vi = config.vrrpInstances.find((i) => i.lvsSyncDaemonInterface);
  if (!vi?.lvsSyncDaemonInterface) return undefined;
  return {
    interface: vi.lvsSyncDaemonInterface,
    syncId: vi.vrid,
    group: SYNC_DEFAULTS.group,
    port: SYNC_DEFAULTS.port,
    ttl: SYNC_DEFAULTS.ttl,
    instance: vi.name,
  };
}

/** conntrackd's client commands, named by what they do (conntrackd(8)). */
export type SyncCommand =
  /** -c: commit the external cache (the peer's flows) into the kernel table */
  | 'commit'
  /** -f: flush the internal and external caches */
  | 'flush'
  /** -R: resynchronize the internal cache with the kernel table */
  | 'resync-kernel'
  /** -B: bulk-send the internal cache to the peer */
  | 'bulk-send'
  /** -t: shorten the kernel's timers (the flows this director forwarded become zombies) */
  | 'shorten-timers'
  /** -n: ask the peer to resend its flows */
  | 'request-resync';

export const COMMAND_FLAGS = {
  commit: '-c',
  flush: '-f',
  'resync-kernel': '-R',
  'bulk-send': '-B',
  'shorten-timers': '-t',
  'request-resync': '-n',
} as const satisfies Record<SyncCommand, string>;

export type VrrpRole = 'MASTER' | 'BACKUP' | 'FAULT';

/**
 * What a VRRP transition asks of conntrackd, in conntrackd's primary-backup.sh order (its
 * doc/sync/primary-backup.sh): becoming MASTER commits the peer's flows before anything else,
 * then flushes both caches, reloads the internal one from the kernel and sends it to the new
 * backup; becoming BACKUP shortens the kernel timers and asks the master to resend; FAULT only
 * shortens the timers.
 */
export function commandsFor(to: VrrpRole): readonly SyncCommand[] {
  if (to === 'MASTER') return ['commit', 'flush', 'resync-kernel', 'bulk-send'];
  if (to === 'BACKUP') return ['shorten-timers', 'request-resync'];
  return ['shorten-timers'];
}

/** keepalived's ipvs_syncd_master/backup: MASTER runs the master daemon only, anything else the backup one. */
export const syncStateFor = (to: VrrpRole): SyncState => (to === 'MASTER' ? 'master' : 'backup');

export interface SyncExecutor {
  /** runs one client command; false when it failed (the executor logs why) */
  run(command: SyncCommand): Promise<boolean>;
}

/**
 * The sync role of one director, following one VRRP instance. Transitions are applied one
 * after the other (a MASTER right after a BACKUP waits for the BACKUP's commands); a repeated
 * state does nothing. `changed` resolves as soon as the VIPs may be added: for MASTER once the
 * commit ran (the flush, resync and bulk send follow), otherwise once all commands ran.
 */
export class SyncRoleController {
  private role: VrrpRole | undefined;
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly exec: SyncExecutor) {}

  get current(): VrrpRole | undefined {
    return this.role;
  }

  changed(to: VrrpRole): Promise<void> {
    let mayProceed: () => void = () => {};
    const proceed = new Promise<void>((resolve) => (mayProceed = resolve));
    this.chain = this.chain
      .then(async () => {
        try {
          if (this.role === to) return;
          this.role = to;
          for (const c of commandsFor(to)) {
            await this.exec.run(c);
            if (c === 'commit') mayProceed();
          }
        } finally {
          mayProceed();
        }
      })
      .catch(() => undefined);
    return proceed;
  }

  /** resolves when every transition asked so far has run all its commands */
  settled(): Promise<void> {
    return this.chain;
  }

  /** after a daemon restart: the next transition runs its commands again */
  forget(): void {
    this.role = undefined;
  }
}

/** One line of ipvsadm -L --daemon (ipvsadm.c list_daemon). */
export function daemonLine(state: SyncState, spec: Pick<SyncSpec, 'interface' | 'syncId'>): string {
  return `${state} sync daemon (mcast=${spec.interface}, syncid=${spec.syncId})`;
}

/** A flow in conntrackd's external cache (the peer's), as `conntrackd -e ct` prints it. */
export interface SyncedFlow {
  readonly family: 4 | 6;
  readonly protocol: string;
  /** conntrack's TCP state, '' for UDP */
  readonly state: string;
  readonly src: string;
  readonly dst: string;
  readonly sport: number;
  readonly dport: number;
}

const IPVS_STATE: Readonly<Record<string, ConnState>> = {
  ESTABLISHED: 'ESTABLISHED',
  SYN_SENT: 'SYN_RECV',
  SYN_RECV: 'SYN_RECV',
  FIN_WAIT: 'FIN_WAIT',
  CLOSE_WAIT: 'CLOSE_WAIT',
  LAST_ACK: 'LAST_ACK',
  TIME_WAIT: 'TIME_WAIT',
  CLOSE: 'CLOSE',
};

/**
 * -Lnc on the backup: the peer's flows to this table's services, in IPVS's terms. conntrackd's
 * external cache keeps the original direction and the NAT target as attributes it does not
 * print, so the real server is unknown until the commit: the destination column shows
 * 0.0.0.0:0 (::, port 0 for IPv6). The expiry is the state's IPVS timeout, as IPVS's backup
 * daemon gives a synced connection (docs/conn-sync.md).
 */
export function syncedConnections(flows: readonly SyncedFlow[], table: TableSnapshot): ConnSnapshot[] {
  const services = new Map(
    table.services.flatMap((s) =>
      s.key.kind === 'addr'
        ? [
            [
              `${s.key.protocol}|${canonicalAddress(s.key.address, s.key.family) ?? s.key.address}|${s.key.port}`,
              serviceId(s.key),
            ] as const,
          ]
        : [],
    ),
  );
  const out: ConnSnapshot[] = [];
  for (const f of flows) {
    if (f.protocol !== 'tcp' && f.protocol !== 'udp' && f.protocol !== 'sctp') continue;
    const dst = canonicalAddress(f.dst, f.family) ?? f.dst;
    const service = services.get(`${f.protocol}|${dst}|${f.dport}`) ?? services.get(`${f.protocol}|${dst}|0`);
    if (service === undefined) continue;
    const state: ConnState = f.protocol === 'udp' ? 'UDP' : (IPVS_STATE[f.state] ?? 'NONE');
    out.push({
      protocol: f.protocol,
      client: { address: canonicalAddress(f.src, f.family) ?? f.src, port: f.sport },
      virtual: { address: dst, port: f.dport },
      dest: { address: f.family === 6 ? '::' : '0.0.0.0', port: 0 },
      family: f.family,
      state,
      expiresInMs: stateTimeoutSeconds(state, table.timeouts) * 1000,
      template: false,
      service,
    });
  }
  return out;
}
