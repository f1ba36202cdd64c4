import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RealVal } from '../../src/dataplane/tun/layout.js';
import { TunDataPlane, type TunKernel, type TunRoute } from '../../src/dataplane/tun/plane.js';
import type { DestParams, Endpoint, ServiceKey, TableOp } from '../../src/lb/types.js';

class FakeKernel implements TunKernel {
  readonly log: string[] = [];
  readonly slots = new Map<number, [number, number]>();
  readonly services = new Map<string, DataView>();
  readonly reals = new Map<number, RealVal>();
  attached: string[] | null = null;
  failAttach: string | undefined;
  attach(ifname: string): void {
    if (this.failAttach) throw new Error(this.failAttach);
    this.attached = [...(this.attached ?? []), ifname];
  }
  setService(key: Uint8Array, val: Uint8Array): void {
    const v = new DataView(val.buffer.slice(0));
    this.log.push(`svc base=${v.getUint32(0, true)}`);
    this.services.set(Buffer.from(key).toString('hex'), v);
  }
  deleteService(key: Uint8Array): void {
    this.log.push('del-svc');
    this.services.delete(Buffer.from(key).toString('hex'));
  }
  writeSlots(keys: Uint8Array, values: Uint8Array, count: number): void {
    this.log.push(`slots ${count}`);
    const k = new DataView(keys.buffer);
    const v = new DataView(values.buffer);
    for (let i = 0; i < count; i++)
      this.slots.set(k.getUint32(i * 4, true), [v.getUint32(i * 8, true), v.getUint32(i * 8 + 4, true)]);
  }
  setReal(index: number, real: RealVal): void {
    this.reals.set(index, real);
  }
  realStats(): { packets: number; bytes: number; conns: number } {
    return { packets: 0, bytes: 0, conns: 0 };
  }
  resetReal(): void {}
  stats(): readonly number[] {
    return [];
  }
  detach(): void {
    this.attached = null;
  }
  release(): void {}
  cleared: number[] = [];
  clearReal(index: number): void {
    this.cleared.push(index);
    this.reals.delete(index);
  }
  /** real server address per slot of the active table of the (only) service */
  table(): string[] {
    const [v] = [...this.services.values()];
    const base = v.getUint32(0, true);
    const n = v.getUint32(4, true);
    const out: string[] = [];
    for (let i = 0; i < n; i++) out.push(this.reals.get(this.slots.get(base + i)![0])!.daddr);
    return out;
  }
}

const routes = (mtu = 1600) => ({
  resolve: async (address: string): Promise<TunRoute> => {
    if (address === '198.18.9.9') throw new Error('Network is unreachable');
    return { ifname: 'eth1', ifindex: 3, mtu, source: '198.18.1.1' };
  },
  mtu: () => 1500,
});

const key: ServiceKey = { kind: 'addr', protocol: 'tcp', family: 4, address: '198.18.0.100', port: 80 };
const tun = (weight = 1, extra: Partial<DestParams> = {}): DestParams => ({
  forward: 'tunnel',
  weight,
  uThreshold: 0,
  lThreshold: 0,
  ...extra,
});
const ep = (i: number): Endpoint => ({ address: `198.18.1.${10 + i}`, port: 80 });
const service = (scheduler = 'mh', k: ServiceKey = key): TableOp => ({
  op: 'add-service',
  key: k,
  params: { scheduler, schedFlags: [], ops: false },
});

test('a TUN service is programmed: reals with their route, slots written before the service entry', async () => {
  const kernel = new FakeKernel();
  const dp = new TunDataPlane({ kernel, routes: routes(), interfaces: ['eth0'] });
  await dp.apply([service(), ...[1, 2, 3].map((i): TableOp => ({ op: 'add-dest', key, dest: ep(i), params: tun() }))]);
  assert.deepEqual(kernel.attached, ['eth0']);
  assert.deepEqual(kernel.log, ['slots 4093', 'svc base=4096']);
  assert.deepEqual([...kernel.reals.values()].map((r) => [r.daddr, r.saddr, r.ifindex]).sort(), [
    ['198.18.1.11', '198.18.1.1', 3],
    ['198.18.1.12', '198.18.1.1', 3],
    ['198.18.1.13', '198.18.1.1', 3],
  ]);
  const t = kernel.table();
  for (const a of ['198.18.1.11', '198.18.1.12', '198.18.1.13']) assert.ok(t.filter((x) => x === a).length > 1200);
  assert.equal(dp.snapshot().services.length, 1);
  assert.equal(dp.snapshot().kind, 'tun');
  await dp.stop(0);
  assert.equal(kernel.attached, null);
});

test('removing a real server rewrites only the changed slots of the standby region, then flips', async () => {
  const kernel = new FakeKernel();
  const dp = new TunDataPlane({ kernel, routes: routes(), interfaces: ['eth0'], expireNodestConn: true });
  await dp.apply([
    service(),
    ...[1, 2, 3, 4].map((i): TableOp => ({ op: 'add-dest', key, dest: ep(i), params: tun() })),
  ]);
  const before = kernel.table();
  await dp.apply([{ op: 'del-dest', key, dest: ep(2) }]);
  const after = kernel.table();
  // first write of the second region: all of it; the flip goes to region 0
  assert.deepEqual(kernel.log.slice(2), ['slots 4093', 'svc base=0']);
  const own = before.filter((a) => a === '198.18.1.12').length;
  let moved = 0;
  for (let i = 0; i < before.length; i++) if (before[i] !== after[i]) moved++;
  assert.ok(after.every((a) => a !== '198.18.1.12'));
  assert.equal(kernel.cleared.length, 1, 'the removed real server entry is emptied (pinned flows reschedule)');
  assert.ok(moved >= own && moved <= own * 1.2, `moved ${moved}, owned ${own}`);
  // back again: region 1 still holds the 4-server table, so only the differing slots are written
  await dp.apply([{ op: 'add-dest', key, dest: ep(2), params: tun() }]);
  const written = Number(kernel.log[4].split(' ')[1]);
  assert.equal(kernel.log[5], 'svc base=4096');
  assert.ok(written < own * 1.3, `wrote ${written}`);
  // nothing changed: nothing written
  await dp.apply([{ op: 'edit-dest', key, dest: ep(2), params: tun() }]);
  assert.equal(kernel.log.length, 6);
});

// IPVS (ip_vs_core.c ip_vs_in, "Check the server status"): with expire_nodest_conn 0 a connection whose
// destination was removed is dropped, not rescheduled, until its entry expires
test("expire_nodest_conn off: a removed real server's pinned flows are dropped (its entry marked gone) until its time is up; back before, the same index and generation", async () => {
  const kernel = new FakeKernel();
  const dp = new TunDataPlane({ kernel, routes: routes(), interfaces: ['eth0'] });
  await dp.apply([
    { op: 'set-timeouts', tcp: 1, tcpfin: 0, udp: 0 },
    service(),
    ...[1, 2, 3].map((i): TableOp => ({ op: 'add-dest', key, dest: ep(i), params: tun() })),
  ]);
  const index = [...kernel.reals].find(([, r]) => r.daddr === '198.18.1.12')?.[0] as number;
  const gen = kernel.reals.get(index)?.gen;
  await dp.apply([{ op: 'del-dest', key, dest: ep(2) }]);
  assert.ok(
    kernel.table().every((a) => a !== '198.18.1.12'),
    'out of the slots: new flows go elsewhere',
  );
  assert.deepEqual(kernel.cleared, [], 'not emptied: its pinned flows would reschedule');
  assert.equal(kernel.reals.get(index)?.gone, true);
  assert.equal(kernel.reals.get(index)?.gen, gen);
  // back within the time: IPVS takes it from the trash, its flows go on
  await dp.apply([{ op: 'add-dest', key, dest: ep(2), params: tun() }]);
  assert.equal(kernel.reals.get(index)?.gone, undefined);
  assert.equal(kernel.reals.get(index)?.gen, gen);
  // removed again: after the time (tcp 1 s) the index is emptied and free
  await dp.apply([{ op: 'del-dest', key, dest: ep(2) }]);
  const deadline = Date.now() + 3000;
  while (!kernel.cleared.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(kernel.cleared, [index]);
  // expire_nodest_conn on by a reload: emptied at once
  dp.setOptions({ expireNodestConn: 'close' });
  await dp.apply([{ op: 'del-dest', key, dest: ep(3) }]);
  assert.equal(kernel.cleared.length, 2);
  await dp.stop(0);
});

test('services without tunnel real servers are left to other planes; a mixed one is diagnosed', async () => {
  const kernel = new FakeKernel();
  const dp = new TunDataPlane({ kernel, routes: routes(), interfaces: ['eth0'] });
  await dp.apply([service('rr'), { op: 'add-dest', key, dest: ep(1), params: { ...tun(), forward: 'route' } }]);
  assert.equal(kernel.attached, null);
  assert.equal(dp.snapshot().services.length, 0);
  await dp.apply([{ op: 'add-dest', key, dest: ep(2), params: tun() }]);
  assert.equal(dp.snapshot().services.length, 1);
  const codes = dp.snapshot().diagnostics.map((d) => d.code);
  assert.ok(codes.includes('DP_TUN_MIXED'));
  assert.ok(codes.includes('DP_TUN_SCHEDULER'));
  assert.deepEqual(new Set(kernel.table()), new Set(['198.18.1.12']));
  await dp.apply([{ op: 'del-service', key }]);
  assert.equal(kernel.services.size, 0);
});

test('unsupported tunnel types, families, routes and a too small MTU get diagnostics, not traffic', async () => {
  const kernel = new FakeKernel();
  const dp = new TunDataPlane({ kernel, routes: routes(1500), interfaces: ['eth0'] });
  await dp.apply([
    service(),
    { op: 'add-dest', key, dest: ep(1), params: tun(1, { tunType: 'gue', tunPort: 6080, tunFlags: ['csum'] }) },
    { op: 'add-dest', key, dest: { address: '2001:2:0:1::11', port: 80 }, params: tun() },
    { op: 'add-dest', key, dest: { address: '198.18.9.9', port: 80 }, params: tun() },
    { op: 'add-dest', key, dest: ep(3), params: tun() },
  ]);
  const diags = dp.snapshot().diagnostics;
  const msg = (code: string) => diags.find((d) => d.code === code)?.message ?? '';
  assert.match(msg('DP_TUN_TYPE_UNSUPPORTED'), /tun_type gue .*tun_flags csum is not supported .*nocsum only/);
  assert.match(msg('DP_TUN_FAMILY'), /IPv6 in an IPv4 service/);
  assert.match(msg('DP_TUN_NO_ROUTE'), /198\.18\.9\.9.*unreachable/);
  assert.match(msg('DP_TUN_MTU'), /MTU 1500, below eth0's 1500 \+ 20 B.*MSS to 1440/);
  assert.deepEqual(new Set(kernel.table()), new Set(['198.18.1.13']));
});

test('without the kernel program every TUN service says why it is not forwarded', async () => {
  const kernel = new FakeKernel();
  kernel.failAttach = 'BPF object dist/bpf/tun_encap.bpf.o is missing: build it with `npm run build:bpf`';
  const dp = new TunDataPlane({ kernel, routes: routes(), interfaces: ['eth0'] });
  await dp.apply([service(), { op: 'add-dest', key, dest: ep(1), params: tun() }]);
  const d = dp.snapshot().diagnostics.find((x) => x.code === 'DP_TUN_UNAVAILABLE');
  assert.match(d?.message ?? '', /not available on eth0: BPF object .*npm run build:bpf/);
  assert.equal(dp.snapshot().services.length, 0);
});

test('per-service ingress: the program is attached where each VIP lives, once per interface', async () => {
  const kernel = new FakeKernel();
  const where: Record<string, string | null> = {
    '198.18.0.100': 'eth0',
    '198.18.0.101': 'eth0',
    '198.18.5.1': 'eth2',
    '198.18.7.7': null,
  };
  const dp = new TunDataPlane({ kernel, routes: routes(), ingressOf: async (k) => where[k.address] ?? null });
  const k = (address: string): ServiceKey => ({ ...key, address }) as ServiceKey;
  for (const a of Object.keys(where))
    await dp.apply([service('mh', k(a)), { op: 'add-dest', key: k(a), dest: ep(1), params: tun() }]);
  assert.deepEqual(kernel.attached, ['eth0', 'eth2']);
  assert.equal(dp.snapshot().services.length, 3);
  assert.match(dp.snapshot().diagnostics.find((d) => d.code === 'DP_TUN_NO_INGRESS')?.message ?? '', /198\.18\.7\.7/);
});

test('gre and gue (IPv4, nocsum) are programmed with their type and port; GUE over IPv6 is refused', async () => {
  const kernel = new FakeKernel();
  const dp = new TunDataPlane({ kernel, routes: routes(), interfaces: ['eth0'] });
  await dp.apply([
    service(),
    { op: 'add-dest', key, dest: ep(1), params: tun(1, { tunType: 'gre' }) },
    { op: 'add-dest', key, dest: ep(2), params: tun(1, { tunType: 'gue', tunPort: 6080, tunFlags: ['nocsum'] }) },
  ]);
  const reals = [...kernel.reals.values()].map((r) => [r.daddr, r.encap, r.port]).sort();
  assert.deepEqual(reals, [
    ['198.18.1.11', 'gre', undefined],
    ['198.18.1.12', 'gue', 6080],
  ]);
  const k6: ServiceKey = { kind: 'addr', protocol: 'tcp', family: 6, address: '2001:2::100', port: 80 };
  await dp.apply([
    service('mh', k6),
    {
      op: 'add-dest',
      key: k6,
      dest: { address: '2001:2:0:1::11', port: 80 },
      params: tun(1, { tunType: 'gue', tunPort: 6080 }),
    },
  ]);
  assert.match(
    dp.snapshot().diagnostics.find((d) => d.code === 'DP_TUN_TYPE_UNSUPPORTED')?.message ?? '',
    /GUE over IPv6 needs a UDP checksum/,
  );
});
