import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LvsService } from '../../src/daemon/lvs-service.js';
import { MemoryDataPlane } from '../../src/dataplane/memory.js';
import { FakeClock } from '../../src/util/clock.js';
import { EventBus } from '../../src/util/events.js';
import { MemoryLogger } from '../../src/util/logger.js';
import type { ProcessRunner } from '../../src/util/ports.js';
import { cfg } from '../config/helpers.js';

const runner: ProcessRunner = { run: async () => ({ exitCode: 0, signal: null, timedOut: false, stdout: '' }) };

async function service(text: string): Promise<LvsService> {
  const svc = new LvsService(cfg(text), {
    clock: new FakeClock(),
    runner,
    logger: new MemoryLogger(),
    events: new EventBus(),
    dataplane: () => new MemoryDataPlane(),
  });
  await svc.start();
  return svc;
}

const weights = (svc: LvsService, service: string): Record<string, number> =>
  Object.fromEntries(
    (svc.table.snapshot().services.find((s) => s.id === service)?.dests ?? []).map((d) => [
      d.family === 6 ? `[${d.address}]:${d.port}` : `${d.address}:${d.port}`,
      d.weight,
    ]),
  );

for (const [family, vip, rs1, rs2] of [
  ['IPv4', '198.18.0.100', '198.18.1.11', '198.18.1.12'],
  ['IPv6', '2001:db8::100', '2001:db8::11', '2001:db8::12'],
] as const) {
  test(`an API drain of an ${family} real server sets its weight to 0, restore brings it back`, async () => {
    const svc = await service(`
virtual_server ${vip} 80 {
  lb_algo rr
  lb_kind NAT
  protocol TCP
  real_server ${rs1} 8080 { weight 3 }
  real_server ${rs2} 8080 { weight 2 }
}`);
    try {
      const host = (a: string) => (family === 'IPv6' ? `[${a}]` : a);
      const sid = `tcp:${host(vip)}:80`;
      const dest = `${host(rs1)}:8080`;
      assert.ok(svc.hasRealServer(sid, dest), `${dest} is a real server of ${sid}`);
      assert.deepEqual(weights(svc, sid), { [dest]: 3, [`${host(rs2)}:8080`]: 2 });
      svc.setOverride(sid, dest, { weight: 0, reason: 'drain' });
      await svc.sync();
      assert.deepEqual(weights(svc, sid), { [dest]: 0, [`${host(rs2)}:8080`]: 2 });
      svc.setOverride(sid, dest, undefined);
      await svc.sync();
      assert.deepEqual(weights(svc, sid), { [dest]: 3, [`${host(rs2)}:8080`]: 2 });
    } finally {
      await svc.stop(0);
    }
  });
}
