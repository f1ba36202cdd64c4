/**
 * Connection sync in the LVS worker (docs/conn-sync.md): keepalived's `lvs_sync_daemon` and
 * ipvsadm's --start-daemon/--stop-daemon, done by one conntrackd. The VRRP worker tells it each
 * state of the followed instance (through the supervisor); becoming MASTER commits the peer's
 * flows before the VIPs are added. One owner: this class decides whether conntrackd runs, with
 * which configuration, and in which role.
 */
import { readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Config } from '../config/model.js';
import {
  COMMAND_FLAGS,
  daemonLine,
  SYNC_DEFAULTS,
  type SyncCommand,
  type SyncedFlow,
  SyncRoleController,
  type SyncSpec,
  type SyncState,
  syncSpecOf,
  syncStateFor,
  type VrrpRole,
} from '../lb/conn-sync.js';
import { renderConntrackdConf, unsupportedSpec } from '../lb/conntrackd-conf.js';
import type { SyncDaemonSnapshot } from '../lb/types.js';
import { Conntrackd, interfaceAddress4 } from '../os/conntrackd.js';
import type { Logger } from '../util/logger.js';
import type { ProcessRunner } from '../util/ports.js';

/** Said at start, in the log, by keepvsadm and the API when the plane is the userspace proxy (KV319). */
export const SYNC_NEEDS_KERNEL =
  'connection sync needs the kernel data plane (--dataplane nft): the userspace proxy terminates TCP in this process, and a socket cannot move to the other director';

/**
 * conntrackd's private directory (configuration, pid file, control socket) for the keepvs whose
 * control socket is `socket`: named after the socket, so two keepvs instances whose sockets share a
 * directory (two directors in one PID namespace) never share a pid file, where a restarting one
 * took the other's conntrackd for its own stale one and killed it.
 */
export function conntrackdDir(socket: string): string {
  return join(dirname(socket), `${basename(socket).replace(/\.sock$/, '')}.conntrackd`);
}

export interface ConnSyncDeps {
  readonly plane: 'nft' | 'proxy';
  readonly runner: ProcessRunner;
  readonly logger: Logger;
  /** private run directory for conntrackd's files */
  readonly dir: string;
  /** the real servers' addresses and protocols of the table (the filter) */
  readonly flows: () => { realServers: string[]; protocols: ('tcp' | 'udp' | 'sctp')[] };
  /** tests: the daemon */
  readonly daemon?: SyncDaemonPort;
}

/** What this class needs of conntrackd (src/os/conntrackd.ts). */
export interface SyncDaemonPort {
  readonly running: boolean;
  start(confText: string): Promise<string | undefined>;
  command(flag: (typeof COMMAND_FLAGS)[SyncCommand], what: SyncCommand): Promise<boolean>;
  external(): Promise<SyncedFlow[]>;
  stop(): Promise<void>;
  readonly controlSocket: string;
  readonly lockFile: string;
}

/** keepvsadm's request: --start-daemon STATE with its options */
export interface ManualStart {
  readonly state: SyncState;
  readonly interface: string;
  readonly syncId: number;
  readonly maxlen?: number;
  readonly group?: string;
  readonly port?: number;
  readonly ttl?: number;
}

/** ip_vs_sync.c: the default message length is the MTU less the IP and UDP headers, at most 1500's */
function defaultMaxlen(ifname: string): number {
  try {
    const mtu = Number(readFileSync(`/sys/class/net/${ifname}/mtu`, 'utf8').trim());
    if (Number.isInteger(mtu) && mtu > 28) return Math.min(mtu, 1500) - 28;
  } catch {
    // no such interface
  }
  return 1472;
}

export class ConnSync {
  private spec: SyncSpec | undefined;
  /** keepvsadm --start-daemon (when the configuration asks for none) */
  private readonly manual = new Map<SyncState, SyncSpec>();
  private readonly daemon: SyncDaemonPort;
  private readonly controller: SyncRoleController;
  private runningConf: string | undefined;
  private runningSpec: SyncSpec | undefined;
  private problem: string | undefined;
  private applying: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(
    config: Config,
    private readonly deps: ConnSyncDeps,
  ) {
    this.spec = syncSpecOf(config);
    this.daemon =
      deps.daemon ??
      new Conntrackd({
        dir: deps.dir,
        runner: deps.runner,
        logger: deps.logger,
        onExit: (code, signal) => {
          deps.logger.log('error', `conntrackd exited (${signal ?? `status ${code}`}); connection sync stopped`);
          this.runningConf = undefined;
          this.controller.forget();
          // started again at the next reload or keepvsadm --start-daemon, not in a loop
        },
      });
    this.controller = new SyncRoleController({ run: (c) => this.daemon.command(COMMAND_FLAGS[c], c) });
  }

  /** The daemon the configuration or keepvsadm wants, or none. */
  private wanted(): SyncSpec | undefined {
    return this.spec ?? this.manual.get('master') ?? this.manual.get('backup');
  }

  /** Starts, restarts (configuration changed) or stops conntrackd; one change at a time. */
  private apply(): Promise<void> {
    this.applying = this.applying.then(() => this.applyNow()).catch(() => undefined);
    return this.applying;
  }

  private async applyNow(): Promise<void> {
    const spec = this.stopped ? undefined : this.wanted();
    if (!spec) {
      if (this.daemon.running) {
        await this.daemon.stop();
        this.deps.logger.log('notice', 'connection sync stopped (conntrackd)');
      }
      this.runningConf = undefined;
      this.runningSpec = undefined;
      this.problem = undefined;
      return;
    }
    if (this.deps.plane !== 'nft') {
      if (this.problem !== SYNC_NEEDS_KERNEL) this.deps.logger.log('warning', `${SYNC_NEEDS_KERNEL} (KV319)`);
      this.problem = SYNC_NEEDS_KERNEL;
      return;
    }
    const unsupported = unsupportedSpec(spec);
    const local = interfaceAddress4(spec.interface);
    const why =
      unsupported ?? (local ? undefined : `sync interface ${spec.interface} has no IPv4 address (or does not exist)`);
    if (why) {
      if (this.problem !== why) this.deps.logger.log('error', `connection sync not started: ${why}`);
      this.problem = why;
      if (this.daemon.running) await this.daemon.stop();
      this.runningConf = undefined;
      return;
    }
    const flows = this.deps.flows();
    const conf = renderConntrackdConf({
      spec,
      localAddress: local!,
      controlSocket: this.daemon.controlSocket,
      lockFile: this.daemon.lockFile,
      realServers: flows.realServers,
      protocols: flows.protocols,
      injectDirectly: this.spec !== undefined && this.spec.instance === undefined,
    });
    if (conf === this.runningConf && this.daemon.running) return;
    const failed = await this.daemon.start(conf);
    if (failed) {
      if (this.problem !== failed) this.deps.logger.log('error', `connection sync not started: ${failed}`);
      this.problem = failed;
      this.runningConf = undefined;
      return;
    }
    this.problem = undefined;
    this.runningConf = conf;
    this.runningSpec = spec;
    this.deps.logger.log(
      'notice',
      `connection sync started: conntrackd FTFW on ${spec.interface} (${spec.group} port ${spec.port}, syncid ${spec.syncId})` +
        (spec.instance ? `, following VRRP_Instance(${spec.instance})` : ''),
    );
    // a restarted daemon has empty caches: the role's commands run again (a MASTER bulk-sends)
    const role = this.controller.current;
    this.controller.forget();
    if (role) void this.controller.changed(role);
  }

  start(): Promise<void> {
    return this.apply();
  }

  reload(config: Config): Promise<void> {
    this.spec = syncSpecOf(config);
    return this.apply();
  }

  /** The table changed (keepvsadm, reload): the filter follows its real servers. */
  tableChanged(): Promise<void> {
    return this.runningConf ? this.apply() : Promise.resolve();
  }

  /**
   * A state of a VRRP instance. Resolves when the VIPs may be added: after the commit when it
   * becomes MASTER. Instances the sync does not follow resolve at once.
   */
  async vrrpRole(instance: string, role: VrrpRole): Promise<void> {
    if (!this.spec || this.spec.instance !== instance) return;
    await this.applying;
    await this.controller.changed(role);
  }

  /** keepvsadm --start-daemon; an error text as ipvsadm prints it, or undefined. */
  async startDaemon(m: ManualStart): Promise<string | undefined> {
    if (this.deps.plane !== 'nft') return `${SYNC_NEEDS_KERNEL} (KV319)`;
    if (this.spec) return 'Daemon has already run';
    if (this.manual.has(m.state)) return 'Daemon has already run';
    const spec: SyncSpec = {
      interface: m.interface,
      syncId: m.syncId,
      group: m.group ?? SYNC_DEFAULTS.group,
      port: m.port ?? SYNC_DEFAULTS.port,
      ttl: m.ttl ?? SYNC_DEFAULTS.ttl,
      ...(m.maxlen !== undefined ? { maxlen: m.maxlen } : {}),
    };
    const other = this.manual.get(m.state === 'master' ? 'backup' : 'master');
    if (other && (other.interface !== spec.interface || other.group !== spec.group || other.port !== spec.port))
      return `keepvs runs one conntrackd for both states: the ${m.state} daemon must use the ${other.interface} / ${other.group}:${other.port} of the running one`;
    this.manual.set(m.state, spec);
    await this.apply();
    if (!this.daemon.running) {
      this.manual.delete(m.state);
      const why = this.problem ?? 'conntrackd did not start';
      await this.apply();
      return why;
    }
    // the master daemon: the peer's flows into the kernel, then ours to the peer (as a takeover)
    await this.controller.changed(m.state === 'master' ? 'MASTER' : 'BACKUP');
    await this.controller.settled();
    return undefined;
  }

  /** keepvsadm --stop-daemon */
  async stopDaemon(state: SyncState): Promise<string | undefined> {
    if (this.spec) return 'keepvs runs the sync daemon for lvs_sync_daemon in its configuration; remove it there';
    if (!this.manual.delete(state)) return 'No daemon is running';
    await this.apply();
    return undefined;
  }

  /** ipvsadm -L --daemon: the states that run (ipvsadm.c list_daemon), with the kernel's defaults filled in. */
  daemons(): SyncDaemonSnapshot[] {
    const spec = this.runningSpec;
    if (!spec || !this.daemon.running) return [];
    const states: SyncState[] = this.spec
      ? this.spec.instance === undefined
        ? ['master', 'backup']
        : [this.controller.current ? syncStateFor(this.controller.current) : 'backup']
      : (['master', 'backup'] as const).filter((s) => this.manual.has(s));
    return states.map((role) => ({
      role,
      mcastInterface: spec.interface,
      syncId: spec.syncId,
      maxlen: spec.maxlen ?? defaultMaxlen(spec.interface),
      group: spec.group,
      port: spec.port,
      ttl: spec.ttl,
    }));
  }

  /** The -L --daemon lines, for logs and tests. */
  lines(): string[] {
    return this.daemons().map((d) => daemonLine(d.role, { interface: d.mcastInterface, syncId: d.syncId }));
  }

  /** The peer's flows this director holds ready (conntrackd's external cache) while it is not MASTER. */
  async synced(): Promise<SyncedFlow[]> {
    if (!this.daemon.running || this.controller.current === 'MASTER') return [];
    return this.daemon.external();
  }

  /** Why sync does not run although asked for (status API, dashboard). */
  note(): string | undefined {
    return this.wanted() ? this.problem : undefined;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.apply();
  }
}
