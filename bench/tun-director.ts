/**
 * Runs a TunDataPlane on the real kernel inside a lab director namespace (TUN lab test, bench/tun.sh):
 * reads JSON lines ({ops} | {slots: serviceId} | {stop: true}) on stdin, answers one JSON line each.
 * Usage: ip netns exec NS node dist/bench/tun-director.js IFACE...
 */
import { createInterface } from 'node:readline';
import { BpfTunKernel } from '../src/dataplane/tun/kernel.js';
import { TunDataPlane } from '../src/dataplane/tun/plane.js';
import type { TableOp } from '../src/lb/types.js';
import { interfaceMtu, routeGet } from '../src/os/route.js';

const plane = new TunDataPlane({
  kernel: new BpfTunKernel(),
  routes: { resolve: routeGet, mtu: interfaceMtu },
  interfaces: process.argv.slice(2),
});
const say = (o: unknown) => process.stdout.write(`${JSON.stringify(o)}\n`);
for await (const line of createInterface({ input: process.stdin })) {
  try {
    const msg = JSON.parse(line) as { ops?: TableOp[]; slots?: string; stop?: boolean };
    if (msg.ops) await plane.apply(msg.ops);
    if (msg.stop) {
      await plane.stop(0);
      say({ ok: true });
      break;
    }
    const view = msg.slots ? plane.slotView(msg.slots) : undefined;
    say({
      ok: true,
      snapshot: plane.snapshot(),
      counters: plane.counters(),
      ...(view ? { slots: { real: [...view.real], realSyn: [...view.realSyn], reals: [...view.reals] } } : {}),
    });
  } catch (e) {
    say({ ok: false, error: (e as Error).message });
  }
}
