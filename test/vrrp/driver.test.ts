import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeAhPacket } from '../../src/codec/ah.js';
import { encodeIpv4 } from '../../src/codec/ipv4.js';
import { decodeVrrp, encodeVrrp } from '../../src/codec/vrrp.js';
import { IpCommands } from '../../src/os/ip-commands.js';
import { FakeClock } from '../../src/util/clock.js';
import { EventBus, type KeepvsEvent } from '../../src/util/events.js';
import { MemoryLogger } from '../../src/util/logger.js';
import type { ProcessRunner } from '../../src/util/ports.js';
import { type Received, VrrpDriver, type VrrpIo } from '../../src/vrrp/driver.js';
import { parse } from '../config/helpers.js';

const CONF = `vrrp_sync_group G {
  group {
    VI_A
    VI_B
  }
}
vrrp_instance VI_A {
  state BACKUP
  interface eth0
  mcast_src_ip 198.18.0.1
  virtual_router_id 10
  priority 100
  advert_int 1
  virtual_ipaddress {
    198.18.0.100/24
  }
  virtual_routes {
    10.9.0.0/16 via 198.18.0.254
  }
}
vrrp_instance VI_B {
  state BACKUP
  interface eth1
  mcast_src_ip 198.18.1.1
  virtual_router_id 11
  priority 100
  advert_int 1
  virtual_ipaddress {
    198.18.1.254/24
  }
}`;

function setup(conf = CONF, extra: Partial<VrrpIo> = {}) {
  const r = parse(conf);
  assert.equal(r.usable, true, JSON.stringify(r.diagnostics));
  const clock = new FakeClock();
  const sent: { ifname: string; dst: string; src: string; packet: Uint8Array; payload: Uint8Array }[] = [];
  const inject = new Map<string, (r: Received) => void>();
  const ipCommands: string[] = [];
  const runner: ProcessRunner = {
    run: async (argv) => {
      ipCommands.push(argv.join(' '));
      return { exitCode: 0, signal: null, timedOut: false, stdout: '' };
    },
  };
  const garps: string[] = [];
  const logger = new MemoryLogger();
  const bus = new EventBus();
  const events: KeepvsEvent[] = [];
  bus.subscribe((e) => events.push(e));
  const m = new VrrpDriver(
    r.config!,
    clock,
    {
      openSocket: (ifname, family, onPacket) => {
        inject.set(ifname, onPacket);
        return {
          send: (packet, dst, src) => {
            // IPv4: the driver built the IP header; the VRRP message follows it (AH: after 24 more bytes)
            const ah = family === 4 && packet[9] === 51;
            const payload = family === 4 ? packet.subarray(ah ? 44 : 20) : packet;
            sent.push({ ifname, dst, src, packet, payload });
            return true;
          },
          close: () => {},
        };
      },
      gratuitousArp: (ifname, vip, count) => void garps.push(`${ifname} ${vip} x${count}`),
      unsolicitedNa: () => {},
      ip: new IpCommands(runner),
      ...extra,
    },
    logger,
    bus,
  );
  /** an advert from a peer, as the raw socket would hand it over */
  /** a v2 advert from a peer (authType 2 announces AH in the VRRP header) */
  const v2 = (vrid: number, priority: number, authType = 0) =>
    encodeVrrp({
      version: 2,
      vrid,
      priority,
      family: 4,
      addresses: ['198.18.0.100'],
      advertInt: 1,
      authType,
      authData: new Uint8Array(8),
    });
  /** an advert as the raw socket would hand it over, without AH */
  const advert = (ifname: string, vrid: number, priority: number, src: string, ttl = 255, authType = 0) => {
    const vrrp = v2(vrid, priority, authType);
    const ip = encodeIpv4({
      tos: 0xc0,
      totalLength: 20 + vrrp.length,
      id: 1,
      fragment: 0,
      ttl,
      protocol: 112,
      src,
      dst: '224.0.0.18',
    });
    inject.get(ifname)!({ family: 4, packet: Uint8Array.from([...ip, ...vrrp]) });
  };
  /** the same advert inside keepalived's AH (HMAC-MD5-96 keyed with `pass`) */
  let ahSeq = 0;
  const ahAdvert = (ifname: string, vrid: number, priority: number, src: string, pass: string, seq = ++ahSeq) => {
    const packet = encodeAhPacket(
      { tos: 0xc0, id: 1, ttl: 255, src, dst: '224.0.0.18' },
      seq,
      v2(vrid, priority, 2),
      pass,
      false,
    );
    inject.get(ifname)!({ family: 4, packet });
  };
  const flush = () => new Promise((res) => setImmediate(res));
  return { m, clock, sent, advert, ahAdvert, ipCommands, garps, events, flush, logger };
}

const state = (m: VrrpDriver, name: string) => m.snapshot().find((i) => i.name === name)!.state;

test('the driver elects, adds VIPs, sends GARP bursts and adverts with the configured fields', async () => {
  const { m, clock, sent, ipCommands, garps, flush } = setup();
  await m.start();
  assert.ok(ipCommands.includes('ip -4 addr del 198.18.0.100/24 dev eth0'), 'stale VIPs removed at start');
  assert.equal(state(m, 'VI_A'), 'BACKUP');
  clock.advance(3700);
  await flush();
  assert.equal(state(m, 'VI_A'), 'MASTER');
  assert.ok(ipCommands.includes('ip -4 addr add 198.18.0.100/24 dev eth0'));
  assert.ok(ipCommands.includes('ip -4 route replace 10.9.0.0/16 via 198.18.0.254'), 'virtual_routes added on MASTER');
  assert.ok(garps.includes('eth0 198.18.0.100 x5'));
  const adv = sent.find((s) => s.ifname === 'eth0')!;
  assert.equal(adv.dst, '224.0.0.18');
  const d = decodeVrrp(adv.payload, 4);
  assert.ok(d.ok && d.value.vrid === 10 && d.value.priority === 100 && d.value.addresses[0] === '198.18.0.100');
  clock.advance(5000);
  await flush();
  assert.equal(garps.filter((g) => g.startsWith('eth0')).length, 2, 'second burst after garp_master_delay');
  await m.stop();
  const last = decodeVrrp(sent.filter((s) => s.ifname === 'eth0').at(-1)!.payload, 4);
  assert.ok(last.ok && last.value.priority === 0, 'priority 0 advert on stop');
  assert.ok(
    ipCommands.includes('ip -4 route del 10.9.0.0/16 via 198.18.0.254'),
    'virtual_routes removed on leaving MASTER',
  );
  assert.ok(ipCommands.includes('ip -4 addr del 198.18.0.100/24 dev eth0'));
});

test('a MASTER hearing a lower-priority master re-announces its VIPs: garp_lower_prio_repeat now, again garp_lower_prio_delay later', async () => {
  // keepalived's vrrp_state_master_rx: after a healed partition the neighbours' caches may still point at
  // the other master; the GARPs (default: vrrp_garp_master_repeat, vrrp_garp_master_delay) fix them
  const { m, clock, advert, garps, flush } = setup();
  await m.start();
  clock.advance(3700);
  await flush();
  assert.equal(state(m, 'VI_A'), 'MASTER');
  clock.advance(5000);
  await flush();
  garps.length = 0;
  advert('eth0', 10, 50, '198.18.0.2');
  await flush();
  assert.equal(state(m, 'VI_A'), 'MASTER');
  assert.deepEqual(garps, ['eth0 198.18.0.100 x5'], 'a burst right after the lower-priority advert');
  clock.advance(5000);
  await flush();
  assert.deepEqual(
    garps,
    ['eth0 198.18.0.100 x5', 'eth0 198.18.0.100 x5'],
    'a second burst garp_lower_prio_delay later',
  );
  await m.stop();
});

test('garp_lower_prio_repeat 0 keeps a MASTER quiet on lower-priority adverts (ARP-wise)', async () => {
  const conf = CONF.replace('  virtual_router_id 10\n', '  virtual_router_id 10\n  garp_lower_prio_repeat 0\n');
  const { m, clock, advert, garps, flush } = setup(conf);
  await m.start();
  clock.advance(3700);
  await flush();
  clock.advance(5000);
  await flush();
  garps.length = 0;
  advert('eth0', 10, 50, '198.18.0.2');
  clock.advance(6000);
  await flush();
  assert.deepEqual(
    garps.filter((g) => g.startsWith('eth0')),
    [],
  );
  await m.stop();
});

test('garp_master_refresh: while MASTER the addresses are announced again every N seconds, garp_master_refresh_repeat each', async () => {
  const conf = `vrrp_instance VI_R {
  state BACKUP
  interface eth0
  virtual_router_id 12
  priority 100
  advert_int 1
  garp_master_delay 0
  garp_master_refresh 2
  garp_master_refresh_repeat 3
  virtual_ipaddress {
    198.18.0.100/24
  }
}`;
  const { m, clock, garps, advert, flush } = setup(conf);
  await m.start();
  clock.advance(3700);
  await flush();
  assert.equal(state(m, 'VI_R'), 'MASTER');
  assert.deepEqual(garps, ['eth0 198.18.0.100 x5']);
  clock.advance(2000);
  await flush();
  clock.advance(2000);
  await flush();
  assert.deepEqual(garps, ['eth0 198.18.0.100 x5', 'eth0 198.18.0.100 x3', 'eth0 198.18.0.100 x3']);
  // no refresh once it is backup
  advert('eth0', 12, 200, '198.18.0.9');
  await flush();
  assert.equal(state(m, 'VI_R'), 'BACKUP');
  clock.advance(2500);
  await flush();
  assert.equal(garps.length, 3);
  await m.stop();
});

test('connection sync: becoming MASTER waits for the sync hook (the commit) before adding the VIPs', async () => {
  const calls: string[] = [];
  const pending: (() => void)[] = [];
  const release = () => {
    for (const p of pending.splice(0)) p();
  };
  const ctx = setup(CONF, {
    syncRole: (instance, to) => {
      calls.push(`${instance} ${to}`);
      if (to !== 'MASTER') return Promise.resolve();
      return new Promise<void>((res) => pending.push(res));
    },
  });
  const { m, clock, ipCommands, flush } = ctx;
  await m.start();
  clock.advance(3700);
  await flush();
  assert.equal(state(m, 'VI_A'), 'MASTER');
  assert.ok(calls.includes('VI_A MASTER'), calls.join());
  const added = () => ipCommands.filter((c) => c.startsWith('ip -4 addr add 198.18.0.100'));
  await flush();
  assert.equal(added().length, 0, 'no VIP before the sync hook returns');
  clock.advance(12);
  release();
  await flush();
  await flush();
  assert.equal(added().length, 1, 'the VIP is added once the commit is done');
  // each step's time from the transition is logged (the takeover's cost, docs/director-pair.md)
  const took = ctx.logger.lines.find((l) => l.message.startsWith('(VI_A) took over'));
  const steps =
    /^\(VI_A\) took over: connection sync commit (\d+) ms, VIPs 0 ms, announced (\d+) ms after the transition$/.exec(
      took?.message ?? '',
    );
  assert.ok(steps && Number(steps[1]) >= 12 && steps[2] === steps[1], took?.message);
  // a higher-priority peer: back to BACKUP, and the sync role is told
  ctx.advert('eth0', 10, 200, '198.18.0.9');
  await flush();
  assert.ok(calls.includes('VI_A BACKUP'), calls.join());
  await m.stop();
});

test('a higher-priority peer keeps it backup; packets with a bad TTL or from itself are ignored and counted', async () => {
  const { m, clock, advert, flush } = setup();
  await m.start();
  for (let t = 0; t < 5; t++) {
    advert('eth0', 10, 150, '198.18.0.2');
    clock.advance(1000);
    await flush();
  }
  assert.equal(state(m, 'VI_A'), 'BACKUP');
  assert.equal(m.snapshot()[0].stats.advert_rcvd, 5);
  assert.equal(m.snapshot()[0].masterAddress, '198.18.0.2');
  advert('eth0', 10, 150, '198.18.0.2', 64);
  advert('eth0', 10, 150, '198.18.0.1');
  assert.equal(m.snapshot()[0].stats.ip_ttl_err, 1, 'RFC 5798 §7.1: TTL must be 255');
  assert.equal(m.snapshot()[0].stats.advert_rcvd, 5, 'its own adverts are not counted');
  await m.stop();
});

test('vrrp_sync_group: members move together to MASTER, and FAULT in one takes all to FAULT and back', async () => {
  const { m, clock, advert, flush } = setup();
  await m.start();
  // VI_B hears a higher master on its link; VI_A's timer runs out first and pulls VI_B along
  advert('eth1', 11, 150, '198.18.1.2');
  clock.advance(3700);
  await flush();
  assert.equal(state(m, 'VI_A'), 'MASTER');
  assert.equal(state(m, 'VI_B'), 'MASTER');
  m.setTracking('VI_B', 100, true, 'eth1 down');
  await flush();
  assert.equal(state(m, 'VI_B'), 'FAULT');
  assert.equal(state(m, 'VI_A'), 'FAULT');
  // keepalived's become_master / release_master (the keepalived exporter's *_master_total)
  const a = m.snapshot().find((i) => i.name === 'VI_A')!;
  assert.equal(a.stats.become_master, 1);
  assert.equal(a.stats.release_master, 1);
  m.setTracking('VI_B', 100, false, 'eth1 up');
  await flush();
  assert.equal(state(m, 'VI_B'), 'BACKUP');
  assert.equal(state(m, 'VI_A'), 'BACKUP');
  await m.stop();
});

test('vrrp_sync_group: the group itself moves BACKUP -> MASTER -> FAULT -> BACKUP, once each (group notify scripts)', async () => {
  const { m, clock, advert, flush, events } = setup();
  await m.start();
  advert('eth1', 11, 150, '198.18.1.2');
  clock.advance(3700);
  await flush();
  m.setTracking('VI_B', 100, true, 'eth1 down');
  await flush();
  m.setTracking('VI_B', 100, false, 'eth1 up');
  await flush();
  await m.stop();
  const group = events.flatMap((e) => (e.type === 'sync-group-state' ? [`${e.group} ${e.from}->${e.to}`] : []));
  assert.deepEqual(group, [
    'G INIT->BACKUP',
    'G BACKUP->MASTER',
    'G MASTER->FAULT',
    'G FAULT->BACKUP',
    'G BACKUP->STOP',
  ]);
});

const AH_CONF = `vrrp_instance VI_A {
  state BACKUP
  interface eth0
  mcast_src_ip 198.18.0.1
  virtual_router_id 10
  priority 100
  advert_int 1
  authentication {
    auth_type AH
    auth_pass secret
  }
  virtual_ipaddress {
    198.18.0.100/24
  }
}`;

test('AH: adverts with the right ICV keep it backup; a wrong key or no AH header is an auth failure', async () => {
  const good = setup(AH_CONF);
  await good.m.start();
  for (let t = 0; t < 5; t++) {
    good.ahAdvert('eth0', 10, 150, '198.18.0.2', 'secret');
    good.clock.advance(1000);
    await good.flush();
  }
  assert.equal(state(good.m, 'VI_A'), 'BACKUP');
  assert.equal(good.m.snapshot()[0].stats.auth_failure ?? 0, 0);
  await good.m.stop();

  const bad = setup(AH_CONF);
  await bad.m.start();
  for (let t = 0; t < 5; t++) {
    bad.ahAdvert('eth0', 10, 150, '198.18.0.2', 'guess');
    bad.clock.advance(1000);
    await bad.flush();
  }
  assert.equal(state(bad.m, 'VI_A'), 'MASTER', 'adverts with a wrong ICV are not heard');
  assert.equal(bad.m.snapshot()[0].stats.auth_failure, 5);
  await bad.m.stop();

  const plain = setup(AH_CONF);
  await plain.m.start();
  for (let t = 0; t < 5; t++) {
    plain.advert('eth0', 10, 150, '198.18.0.2', 255, 2);
    plain.clock.advance(1000);
    await plain.flush();
  }
  assert.equal(state(plain.m, 'VI_A'), 'MASTER', 'an AH-less advert is not heard by an AH instance');
  assert.equal(plain.m.snapshot()[0].stats.authtype_mismatch, 5, 'keepalived: "No AH header but auth type is AH"');
  await plain.m.stop();
});

test('use_vmac: adverts leave from the VMAC; a peer (same virtual MAC) is heard on the parent interface', async () => {
  const conf = `vrrp_instance VI_V {
  state BACKUP
  interface eth0
  mcast_src_ip 198.18.0.1
  use_vmac
  virtual_router_id 10
  priority 100
  advert_int 1
  virtual_ipaddress {
    198.18.0.100/24
  }
}`;
  const { m, clock, sent, advert, flush } = setup(conf);
  await m.start();
  // a live higher-priority master, as the parent interface's socket hands its adverts over
  for (let t = 0; t < 5; t++) {
    advert('eth0', 10, 150, '198.18.0.2');
    clock.advance(1000);
    await flush();
  }
  assert.equal(state(m, 'VI_V'), 'BACKUP');
  assert.equal(m.snapshot()[0].stats.advert_rcvd, 5);
  // the master is gone: it takes over and speaks from vrrp.10
  clock.advance(4000);
  await flush();
  assert.equal(state(m, 'VI_V'), 'MASTER');
  assert.ok(sent.length > 0);
  assert.deepEqual([...new Set(sent.map((s) => s.ifname))], ['vrrp.10']);
  await m.stop();
});
