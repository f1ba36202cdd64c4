/** ListenerSteering's reports when the workers cannot take turns (the eBPF counter is refused). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ProxyContext } from '../../src/dataplane/proxy/context.js';
import { ListenerSteering } from '../../src/dataplane/proxy/steer.js';
import type { CounterRefusal } from '../../src/os/reuseport-counter.js';

function steeringWith(refusal: CounterRefusal | null): { diagnostics: string[]; steering: ListenerSteering } {
  const diagnostics: string[] = [];
  const ctx = {
    steerWorkers: 2,
    diagnostic: (code: string, serviceId: string, message: string) =>
      diagnostics.push(`${code} ${serviceId} ${message}`),
  } as unknown as ProxyContext;
  const steering = new ListenerSteering(ctx, 4, 'tcp:127.0.0.1:80', true, () => refusal);
  return { diagnostics, steering };
}

test('a proxy without root keeps the kernel hash without a diagnostic (bpf(2) denied is the expected case)', () => {
  const { diagnostics, steering } = steeringWith({ why: 'BPF_MAP_CREATE: EPERM', denied: true });
  steering.attach(-1);
  assert.deepEqual(diagnostics, []);
});

test('a refusal that is not a permission matter is reported on the service', () => {
  const { diagnostics, steering } = steeringWith({ why: 'SO_ATTACH_REUSEPORT_EBPF: EINVAL', denied: false });
  steering.attach(-1);
  assert.equal(diagnostics.length, 1);
  assert.match(
    diagnostics[0] ?? '',
    /^DP_STEERING_FAILED tcp:127\.0\.0\.1:80 SO_ATTACH_REUSEPORT_EBPF: EINVAL: .*4-tuple hash/,
  );
});
