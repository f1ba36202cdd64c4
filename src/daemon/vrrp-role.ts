/**
 * The VRRP worker: priority tracking (vrrp_script, track_file, track_process, track_interface)
 * feeding the VRRP driver (src/vrrp/driver.ts), which runs the elections on raw sockets, holds
 * or releases the VIPs and sends gratuitous ARPs. Raw sockets need root (CAP_NET_RAW); without
 * it every instance is reported as not running, with the reason.
 */

import type { AdminAction, VrrpInstanceStatus } from '../api/types.js';
import type { Config } from '../config/model.js';
import { syncSpecOf, type VrrpRole } from '../lb/conn-sync.js';
import { IpCommands } from '../os/ip-commands.js';
import { NetlinkAddresses } from '../os/netlink-address.js';
import { ChildProcessRunner } from '../os/process-runner.js';
import { GratuitousArpSender, sendUnsolicitedNa, Vrrp4Socket, Vrrp6Socket } from '../os/vrrp-socket.js';
import { NodeFileWatcher, ProcProcessLister, SysfsLinkWatcher } from '../os/watchers.js';
import { TrackManager } from '../track/track-manager.js';
import { SystemClock } from '../util/clock.js';
import type { EventSink } from '../util/events.js';
import type { Logger } from '../util/logger.js';
import { VrrpDriver } from '../vrrp/driver.js';
import { vipStatuses } from '../vrrp/status.js';
import type { FromWorker } from './ipc.js';

/** How long a MASTER waits for the LVS worker's commit before adding its VIPs anyway. */
const SYNC_COMMIT_TIMEOUT_MS = 5000;

export const VRRP_NEEDS_ROOT = 'VRRP needs raw sockets (root or CAP_NET_RAW); not running';

export async function startVrrpRole(config: Config, logger: Logger, events: EventSink, send: (m: FromWorker) => void) {
  let current = config;
  const clock = new SystemClock();
  const runner = new ChildProcessRunner();
  const tracking = new Map<string, { effective: number; fault: boolean; reason: string }>();
  const root = process.getuid?.() === 0;
  // connection sync (docs/conn-sync.md): the followed instance's states go to the LVS worker,
  // which owns conntrackd; MASTER waits for its answer (the commit) before adding the VIPs
  const syncWaits = new Map<number, () => void>();
  let syncIds = 0;
  const syncRole = (instance: string, role: VrrpRole): Promise<void> => {
    if (syncSpecOf(current)?.instance !== instance) return Promise.resolve();
    const id = ++syncIds;
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        syncWaits.delete(id);
        if (role === 'MASTER')
          logger.log(
            'warning',
            `VRRP_Instance(${instance}) connection sync: no commit answer within ${SYNC_COMMIT_TIMEOUT_MS / 1000} s; adding the VIPs`,
          );
        resolve();
      }, SYNC_COMMIT_TIMEOUT_MS);
      syncWaits.set(id, () => {
        clearTimeout(timer);
        resolve();
      });
      send({ type: 'sync-role', id, instance, role });
    });
  };
  const garp = new GratuitousArpSender();
  const newManager = (c: Config) =>
    new VrrpDriver(
      c,
      clock,
      {
        openSocket: (ifname, family, onPacket, ah) =>
          family === 4
            ? new Vrrp4Socket(
                ifname,
                ah ? 51 : 112,
                (packet) => onPacket({ family: 4, packet }),
                c.globalDefs.vrrpMcastGroup4,
              )
            : new Vrrp6Socket(
                ifname,
                (vrrp, src, dst, hopLimit) => onPacket({ family: 6, vrrp, src, dst, hopLimit }),
                c.globalDefs.vrrpMcastGroup6,
              ),
        gratuitousArp: (ifname, vip, count) => void garp.send(ifname, vip, count),
        unsolicitedNa: (ifname, vip, count) => void sendUnsolicitedNa(ifname, vip, count),
        ip: new IpCommands(runner, NetlinkAddresses.open()),
        syncRole,
      },
      logger,
      events,
    );
  let manager: VrrpDriver | undefined;
  const describe = (): VrrpInstanceStatus[] => {
    if (manager) return manager.snapshot();
    return current.vrrpInstances.map((i) => {
      const t = tracking.get(i.name);
      return {
        name: i.name,
        state: 'INIT',
        vrid: i.vrid,
        ...(i.interface ? { interface: i.interface } : {}),
        priority: i.priority,
        effectivePriority: t?.effective ?? i.priority,
        vips: i.virtualIpaddresses.map((v) => `${v.address}/${v.prefixLen}`),
        addresses: vipStatuses(i),
        lastTransitions: [],
        stats: {},
        note: VRRP_NEEDS_ROOT,
      };
    });
  };
  const report = () => send({ type: 'vrrp-snapshot', instances: describe(), scripts: tracker.snapshot().scripts });
  // state changes are pushed at once (coalesced per tick: 50 instances stopping send one snapshot)
  let pushQueued = false;
  const push = () => {
    if (pushQueued) return;
    pushQueued = true;
    queueMicrotask(() => {
      pushQueued = false;
      report();
    });
  };
  const tracker = new TrackManager({
    config,
    clock,
    runner,
    fileWatcher: new NodeFileWatcher(),
    linkWatcher: new SysfsLinkWatcher(),
    processLister: new ProcProcessLister(),
    logger,
    onChange: (instance, s) => {
      const base = current.vrrpInstances.find((i) => i.name === instance)?.priority ?? 0;
      tracking.set(instance, { effective: s.effective, fault: s.fault, reason: s.reason });
      events.emit({
        type: 'vrrp-priority',
        instance,
        basePriority: base,
        effectivePriority: s.effective,
        reason: s.reason,
        at: Date.now(),
      });
      manager?.setTracking(instance, s.effective, s.fault, s.reason);
      report();
    },
  });
  tracker.start();
  if (root) {
    manager = newManager(config);
    manager.onStateChange = push;
    await manager.start();
    for (const [name, t] of tracking) manager.setTracking(name, t.effective, t.fault, t.reason);
  } else for (const i of config.vrrpInstances) logger.log('warning', `(${i.name}) not started: ${VRRP_NEEDS_ROOT}`);
  report();
  const timer = setInterval(report, 1000);
  let maintenance = false;
  return {
    async reload(c: Config) {
      current = c;
      tracker.reload(c);
      // only the instances whose configuration changed are touched (the driver diffs them)
      if (manager) {
        await manager.reload(c);
        for (const [name, t] of tracking)
          manager.setTracking(name, maintenance ? 1 : t.effective, t.fault, maintenance ? 'maintenance' : t.reason);
      }
      report();
    },
    async admin(a: AdminAction) {
      if (a.action !== 'maintenance') return { ok: false, error: `${a.action} is not a VRRP action` };
      if (!manager) return { ok: false, error: VRRP_NEEDS_ROOT };
      maintenance = a.on;
      // maintenance: lowest priority, so that any peer preempts this director
      for (const i of current.vrrpInstances) {
        const t = tracking.get(i.name);
        manager.setTracking(
          i.name,
          maintenance ? 1 : (t?.effective ?? i.priority),
          t?.fault ?? false,
          maintenance ? 'maintenance' : (t?.reason ?? 'maintenance off'),
        );
      }
      events.emit({
        type: 'admin',
        action: 'maintenance',
        target: 'director',
        detail: maintenance ? 'on' : 'off',
        at: Date.now(),
      });
      report();
      return { ok: true };
    },
    /** the LVS worker's answer to a sync-role */
    syncDone(id: number) {
      const done = syncWaits.get(id);
      syncWaits.delete(id);
      done?.();
    },
    async stop() {
      clearInterval(timer);
      tracker.stop();
      await manager?.stop();
      garp.close();
      for (const done of syncWaits.values()) done();
    },
  };
}
