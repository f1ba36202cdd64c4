/**
 * A worker process forked by the supervisor, like keepalived's VRRP and checker children. Each
 * worker runs the configuration the supervisor validated and sends it (at init and at each good
 * reload), and reports snapshots, events and logs over IPC; a crash here leaves the supervisor
 * and the other worker running.
 */

import type { AdminAction } from '../api/types.js';
import type { Config } from '../config/model.js';
import { type ControlServer, DEFAULT_CONTROL_LIMITS, startControlServer } from '../control/server.js';
import type { DataPlaneSnapshot } from '../dataplane/port.js';
import { type ConnGroup, type ConnListing, type ConnQuery, listConnections } from '../lb/conn-list.js';
import { syncedConnections, type VrrpRole } from '../lb/conn-sync.js';
import type { TableSnapshot } from '../lb/types.js';
import { ChildProcessRunner } from '../os/process-runner.js';
import { SystemClock } from '../util/clock.js';
import type { EventSink, KeepvsEvent } from '../util/events.js';
import type { Logger, LogLevel } from '../util/logger.js';
import { ConnSync, conntrackdDir } from './conn-sync.js';
import type { FromWorker, ToWorker, WorkerInit, WorkerRole } from './ipc.js';
import { LimitLog } from './limit-log.js';
import { DaemonLogger, SYSLOG_IDENT } from './log.js';
import { LvsService } from './lvs-service.js';
import { startVrrpRole } from './vrrp-role.js';

// after the supervisor is gone (crash) the worker still stops gracefully: messages are dropped, not thrown
const send = (m: FromWorker) => {
  if (process.connected) process.send?.(m, undefined, undefined, () => {});
};

/** A worker's log: to syslog under the worker's own ident (when the daemon uses syslog), and to the supervisor for the console and file. */
class IpcLogger implements Logger {
  constructor(
    private readonly prefix: string,
    private readonly detail: boolean,
    private readonly syslog?: DaemonLogger,
  ) {}
  log(level: LogLevel, message: string): void {
    if (level === 'debug' && !this.detail) return;
    this.syslog?.log(level, this.prefix + message);
    send({ type: 'log', level, message: this.prefix + message, ...(this.syslog ? { syslogged: true } : {}) });
  }
  child(prefix: string): Logger {
    return new IpcLogger(this.prefix + prefix, this.detail, this.syslog);
  }
}

const events: EventSink = { emit: (event: KeepvsEvent) => send({ type: 'event', event }) };

interface Role {
  reload(config: Config): Promise<void>;
  /** LVS worker: a VRRP state for connection sync; resolves when the VIPs may be added */
  syncRole?(instance: string, role: VrrpRole): Promise<void>;
  /** VRRP worker: the answer to its sync-role */
  syncDone?(id: number): void;
  admin(action: AdminAction): Promise<{ ok: boolean; error?: string }>;
  /** LVS worker: the API's connection list, filtered and cut here (a table can hold 100k+ entries) */
  connections?(query: ConnQuery): Promise<ConnListing>;
  /** `orphaned`: the supervisor is gone; kernel forwarding state is left in place */
  stop(drainMs: number, orphaned?: boolean): Promise<void>;
}

async function startLvs(init: WorkerInit, config: Config, logger: Logger): Promise<Role> {
  // made after the service (it reads the table); the kernel plane asks it only once polling
  let sync: ConnSync | undefined;
  const svc = new LvsService(config, {
    clock: new SystemClock(),
    runner: new ChildProcessRunner(),
    logger,
    events,
    dataplaneWorkers: init.dataplaneWorkers,
    // expire_nodest_conn: on for good from the command line; else global_defs, at start and each reload
    expireNodestConn: init.proxyOptions?.expireNodestConn ?? false,
    ...(init.proxyOptions?.proxyProtocol ? { proxyProtocol: init.proxyOptions.proxyProtocol } : {}),
    ...(init.proxyOptions?.udpFlows ? { maxUdpFlows: init.proxyOptions.udpFlows } : {}),
    ...(init.proxySockets ? { proxySockets: init.proxySockets } : {}),
    ...(init.operator ? { operator: init.operator } : {}),
    onOperatorChange: (state) => {
      send({ type: 'operator-state', state });
      // the API shows a keepvsadm change at once, not at the next periodic report
      setImmediate(() => send({ type: 'lvs-snapshot', snapshot: svc.snapshot() }));
    },
    plane: init.dataplane,
    // a running conntrackd commits the peer's flows into conntrack, past the plane's counters
    flowsFromElsewhere: () => (sync?.daemons().length ?? 0) > 0,
  });
  await svc.start();
  // connection sync (lvs_sync_daemon, keepvsadm --start-daemon): conntrackd, filtered to the table's real servers
  sync = new ConnSync(config, {
    plane: init.dataplane,
    runner: new ChildProcessRunner(),
    logger,
    dir: conntrackdDir(init.socket),
    flows: () => {
      const t = svc.table.snapshot();
      return {
        realServers: t.services.flatMap((s) => s.dests.map((d) => d.address)),
        protocols: [...new Set(t.services.map((s) => (s.key.kind === 'addr' ? s.key.protocol : 'tcp')))],
      };
    },
  });
  await sync.start();
  const withSync = (t: TableSnapshot): TableSnapshot => ({ ...t, syncDaemons: sync.daemons() });
  // what stops the sync daemon from running, in the API's and dashboard's data-plane diagnostics
  const withSyncNote = (d: DataPlaneSnapshot): DataPlaneSnapshot => {
    const note = sync.note();
    return note ? { ...d, diagnostics: [...d.diagnostics, { code: 'DP_CONN_SYNC', service: '', message: note }] } : d;
  };
  // the kernel plane forwards packets: it cannot add a PROXY header (never degrade silently).
  // A proxy_protocol keyword is KV318 at -t and start; this covers --proxy-protocol on the command line.
  const checkProxyProtocol = (c: Config) => {
    if (init.dataplane !== 'nft') return;
    const wanting = c.virtualServers.filter(
      (v) => v.proxyProtocol === undefined && (init.proxyOptions?.proxyProtocol ?? 'off') !== 'off',
    );
    for (const v of wanting)
      logger.log(
        'warning',
        `${v.loc.file}:${v.loc.line}: proxy_protocol is not sent by the kernel (nft) data plane; run keepvs with --dataplane proxy for it`,
      );
  };
  checkProxyProtocol(config);
  // the backup's -Lnc also lists the peer's flows it holds ready for a takeover
  const connectionGroups = async (): Promise<ConnGroup[]> => [
    ...(await svc.connectionGroups()),
    { plane: 'kernel', synced: true, conns: syncedConnections(await sync.synced(), svc.table.snapshot()) },
  ];
  let control: ControlServer | undefined;
  try {
    control = await startControlServer(
      init.socket,
      {
        snapshot: () => withSync(svc.tableSnapshot()),
        connections: async () => (await connectionGroups()).flatMap((g) => g.conns),
        apply: async (ops) => {
          const r = await svc.applyOperatorOps(ops);
          void sync.tableChanged();
          return r;
        },
        startDaemon: (m) => sync.startDaemon(m),
        stopDaemon: (state) => sync.stopDaemon(state),
      },
      DEFAULT_CONTROL_LIMITS,
      (m) => logger.log('warning', m),
    );
    logger.log('info', `control socket ready at ${init.socket}`);
  } catch (e) {
    logger.log(
      'error',
      `control socket ${init.socket} unavailable (keepvsadm will not connect): ${e instanceof Error ? e.message : e}`,
    );
  }
  const limits = new LimitLog((m) => logger.log('warning', m));
  // each data-plane diagnostic (a service it cannot forward, e.g. one added with keepvsadm) is
  // logged once, with the words the API and the dashboard show
  let logged = new Set<string>();
  const report = () => {
    const snapshot = svc.snapshot();
    limits.report(snapshot.dataplane, Date.now());
    const now = new Set<string>();
    for (const d of snapshot.dataplane.diagnostics ?? []) {
      const line = `${d.service}: ${d.message} [${d.code}]`;
      now.add(line);
      if (!logged.has(line)) logger.log('warning', line);
    }
    logged = now;
    send({
      type: 'lvs-snapshot',
      snapshot: {
        ...snapshot,
        table: withSync(snapshot.table),
        dataplane: withSyncNote(snapshot.dataplane),
        ...(control ? { control: { ...control.stats } } : {}),
      },
    });
  };
  const timer = setInterval(report, 1000);
  svc.checks.onChange(() => setImmediate(report));
  report();
  return {
    reload: async (c) => {
      checkProxyProtocol(c);
      await svc.reload(c);
      await sync.reload(c);
      report();
    },
    syncRole: (instance, role) => sync.vrrpRole(instance, role),
    connections: async (q) => listConnections(await connectionGroups(), q),
    async admin(a) {
      if (a.action === 'drain' || a.action === 'restore' || a.action === 'weight') {
        const known = svc.table.snapshot().services.find((s) => s.id === a.service);
        if (!known) return { ok: false, error: `no such service ${a.service}` };
        if (!svc.hasRealServer(a.service, a.dest))
          return { ok: false, error: `no such real server ${a.dest} in ${a.service}` };
        if (a.action === 'restore') svc.setOverride(a.service, a.dest, undefined);
        else svc.setOverride(a.service, a.dest, { weight: a.action === 'drain' ? 0 : a.weight, reason: a.action });
        events.emit({
          type: 'admin',
          action: a.action,
          target: `${a.service} ${a.dest}`,
          detail: a.action === 'weight' ? `weight ${a.weight}` : '',
          at: Date.now(),
        });
        setImmediate(report);
        return { ok: true };
      }
      return { ok: false, error: `action ${a.action} is not handled by the LVS worker` };
    },
    async stop(drainMs, orphaned = false) {
      clearInterval(timer);
      control?.close();
      await sync.stop();
      await svc.stop(drainMs, orphaned);
    },
  };
}

let role: Role | undefined;
/** what this worker was started as (its init message) */
let initRole: WorkerRole | undefined;

process.on('message', (m: ToWorker) => {
  void (async () => {
    if (m.type === 'init') {
      initRole = m.init.role;
      let syslog: DaemonLogger | undefined;
      if (m.init.syslogFacility !== undefined) {
        syslog = new DaemonLogger({
          console: false,
          detail: m.init.logDetail,
          syslog: true,
          facility: m.init.syslogFacility,
          ident: SYSLOG_IDENT[m.init.role],
        });
        await syslog.init();
      }
      const logger = new IpcLogger('', m.init.logDetail, syslog);
      const config = m.init.config;
      role =
        m.init.role === 'lvs'
          ? await startLvs(m.init, config, logger)
          : await startVrrpRole(config, logger, events, send);
      send({ type: 'ready' });
    } else if (m.type === 'reload' && role) {
      await role.reload(m.config);
    } else if (m.type === 'admin' && role) {
      const r = await role.admin(m.action);
      send({ type: 'admin-result', id: m.id, ...r });
    } else if (m.type === 'connections') {
      try {
        if (!role?.connections) throw new Error('this worker holds no connections');
        send({ type: 'connections-result', id: m.id, listing: await role.connections(m.query) });
      } catch (e) {
        send({ type: 'connections-result', id: m.id, error: e instanceof Error ? e.message : String(e) });
      }
    } else if (m.type === 'sync-role') {
      // answered even when this worker has no sync to do (or is not started yet): the VIPs must not wait
      await role?.syncRole?.(m.instance, m.role).catch(() => undefined);
      send({ type: 'sync-role-done', id: m.id });
    } else if (m.type === 'sync-role-done') {
      role?.syncDone?.(m.id);
    } else if (m.type === 'stop') {
      await stopOnce(m.drainMs);
    }
  })().catch((e) => {
    send({ type: 'fatal', message: e instanceof Error ? (e.stack ?? e.message) : String(e) });
    process.exit(70);
  });
});

// heap in use, for the supervisor's status (leaks show there before they show in RSS)
setInterval(() => {
  if (process.connected) send({ type: 'memory', heapUsed: process.memoryUsage().heapUsed });
}, 2000).unref();

/** One graceful stop whichever asks first: the supervisor, a signal to the process group, or the supervisor's death. */
let stopping: Promise<void> | undefined;
function stopOnce(drainMs: number, orphaned = false): Promise<void> {
  stopping ??= (async () => {
    try {
      await role?.stop(drainMs, orphaned);
    } finally {
      process.exit(0);
    }
  })();
  return stopping;
}

// the supervisor going away must not leave an orphan forwarding traffic
process.on('disconnect', () => void stopOnce(1000, true));
// SIGTERM/SIGINT to the whole process group (systemd's KillMode=control-group, Ctrl-C) reach the
// workers too: they stop as gracefully as when the supervisor asks (VRRP: priority 0, VIPs removed).
// The LVS worker leaves the order to a supervisor that is there: it stops the VRRP worker first, so
// the kernel tables go only once this host no longer holds the VIPs (main.ts stop); on its own after
// LVS_SIGNAL_WAIT_MS (the supervisor missed the signal, or only this process got it)
const LVS_SIGNAL_WAIT_MS = 5000;
function signalled(): void {
  if (initRole !== 'lvs' || !process.connected) {
    void stopOnce(3000);
    return;
  }
  setTimeout(() => void stopOnce(3000), LVS_SIGNAL_WAIT_MS).unref();
}
process.on('SIGTERM', signalled);
process.on('SIGINT', signalled);
