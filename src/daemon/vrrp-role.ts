/**
 * The VRRP worker. Priority tracking (vrrp_script, track_file, track_process, track_interface)
 * runs here and its effective priority and FAULT reason are reported. Elections are not run by
 * this build: the raw-socket VRRP driver is not part of it yet, so every instance is reported as
 * not running, with that reason, instead of pretending to hold or release a VIP.
 */
import type { AdminAction, VrrpInstanceStatus } from '../api/types.js';
import type { Config } from '../config/model.js';
import { ChildProcessRunner } from '../os/process-runner.js';
import { NodeFileWatcher, ProcProcessLister, SysfsLinkWatcher } from '../os/watchers.js';
import { TrackManager } from '../track/manager.js';
import { SystemClock } from '../util/clock.js';
import type { EventSink } from '../util/events.js';
import type { Logger } from '../util/logger.js';
import type { FromWorker } from './ipc.js';

export const VRRP_NOT_RUN =
  'VRRP elections are not run by this keepvs build (raw-socket driver pending); this director holds no VIP';

export async function startVrrpRole(config: Config, logger: Logger, events: EventSink, send: (m: FromWorker) => void) {
  let current = config;
  const tracking = new Map<string, { effective: number; fault: boolean; reason: string }>();
  const describe = (): VrrpInstanceStatus[] =>
    current.vrrpInstances.map((i) => {
      const t = tracking.get(i.name);
      return {
        name: i.name,
        state: 'INIT',
        vrid: i.vrid,
        ...(i.interface ? { interface: i.interface } : {}),
        priority: i.priority,
        effectivePriority: t?.effective ?? i.priority,
        vips: i.virtualIpaddresses.map((v) => `${v.address}/${v.prefixLen}`),
        lastTransitions: [],
        stats: {},
        note: t?.fault ? `${VRRP_NOT_RUN}; tracking reports FAULT: ${t.reason}` : VRRP_NOT_RUN,
      };
    });
  const report = () => send({ type: 'vrrp-snapshot', instances: describe() });
  const tracker = new TrackManager({
    config,
    clock: new SystemClock(),
    runner: new ChildProcessRunner(),
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
      report();
    },
  });
  tracker.start();
  for (const i of config.vrrpInstances) logger.log('warning', `VRRP_Instance(${i.name}) not started: ${VRRP_NOT_RUN}`);
  report();
  const timer = setInterval(report, 1000);
  return {
    async reload(c: Config) {
      current = c;
      tracker.reload(c);
      report();
    },
    async admin(a: AdminAction) {
      return { ok: false, error: `${a.action}: ${VRRP_NOT_RUN}` };
    },
    async stop() {
      clearInterval(timer);
      tracker.stop();
    },
  };
}
