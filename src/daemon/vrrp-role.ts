/**
 * The VRRP worker. The wire codec and the state machine live in src/codec and src/vrrp; the raw
 * socket driver that would let this worker take part in elections is not built yet, so each
 * configured instance is reported as not running, with the reason, rather than pretending.
 */
import type { AdminAction, VrrpInstanceStatus } from '../api/types.js';
import type { Config } from '../config/model.js';
import type { EventSink } from '../util/events.js';
import type { Logger } from '../util/logger.js';
import type { FromWorker } from './ipc.js';

const NOTE = 'VRRP elections are not run by this keepvs build (raw-socket driver pending); the instance holds no VIP';

export async function startVrrpRole(config: Config, logger: Logger, _events: EventSink, send: (m: FromWorker) => void) {
  let instances: VrrpInstanceStatus[] = [];
  const describe = (c: Config) => {
    instances = c.vrrpInstances.map((i) => ({
      name: i.name,
      state: 'INIT',
      vrid: i.vrid,
      ...(i.interface ? { interface: i.interface } : {}),
      priority: i.priority,
      effectivePriority: i.priority,
      vips: i.virtualIpaddresses.map((v) => `${v.address}/${v.prefixLen}`),
      lastTransitions: [],
      stats: {},
      note: NOTE,
    }));
    for (const i of c.vrrpInstances) logger.log('warning', `VRRP_Instance(${i.name}) not started: ${NOTE}`);
    send({ type: 'vrrp-snapshot', instances });
  };
  describe(config);
  const timer = setInterval(() => send({ type: 'vrrp-snapshot', instances }), 1000);
  return {
    async reload(c: Config) {
      describe(c);
    },
    async admin(a: AdminAction) {
      return { ok: false, error: `${a.action}: ${NOTE}` };
    },
    async stop() {
      clearInterval(timer);
    },
  };
}
