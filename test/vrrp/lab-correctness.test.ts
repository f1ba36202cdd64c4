/**
 * VRRP correctness against keepalived 2.2.7 in one lab, cases run one after the other: the known
 * split-brain and slow-failover cases of issue #13 (IPv6 unicast, secondary source, group signal,
 * sync group), each checked as "exactly one VIP holder" and each failing on the code before its
 * fix. Needs root, keepalived and ../shared/lab; skipped otherwise.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { globalDefs, holds, instance, keepalivedLab, sleep, stopProc, until } from './lab-peers.js';

const { lab, opts, VIP, VIP6, one } = keepalivedLab('kvc');

test(
  'v3 IPv6 unicast over link-local addresses: keepalived master, keepvs stays backup, then takes over',
  opts,
  async () => {
    const ll1 = lab.linkLocal('lb1');
    const ll2 = lab.linkLocal('lb2');
    // keepalived's own IPv6 unicast adverts leave with hop limit 64 (vrrp-peers.md §4): keepvs
    // accepts that from this peer only because min_ttl says so
    const ka = lab.keepalived(
      'lb1',
      globalDefs('ka') +
        instance({
          priority: 100,
          vips: [VIP6],
          extra: `  unicast_src_ip ${ll1}\n  unicast_peer {\n    ${ll2}\n  }`,
        }),
      'll-ka',
    );
    const kv = lab.keepvs(
      'lb2',
      globalDefs('kv') +
        instance({
          priority: 90,
          vips: [VIP6],
          extra: `  unicast_src_ip ${ll2}\n  unicast_peer {\n    ${ll1} min_ttl 64\n  }`,
        }),
      'll-kv',
    );
    try {
      await until('keepalived holds the VIP', one(VIP6, 'lb1'), 15000);
      // before: every advert from keepalived failed the checksum (checked against ff02::12) -> two masters
      await holds('keepalived the only holder', one(VIP6, 'lb1'), 5000);
      const st = lab.vrrpStatus('lb2', kv.port)[0];
      assert.equal(st?.state, 'BACKUP');
      assert.ok((st?.stats.advert_rcvd ?? 0) > 3, JSON.stringify(st?.stats));
      await stopProc(ka);
      await until('keepvs takes over', one(VIP6, 'lb2'), 3000);
    } finally {
      await stopProc(kv.proc, 'SIGTERM', true);
      await stopProc(ka, 'SIGKILL');
    }
  },
);

test(
  'v3 IPv6 unicast over global addresses: adverts leave from unicast_src_ip, not the VIP (check_unicast_src)',
  opts,
  async () => {
    const kv = lab.keepvs(
      'lb1',
      globalDefs('kv') +
        instance({
          priority: 100,
          vips: [VIP6],
          extra: '  unicast_src_ip 2001:2::1\n  unicast_peer {\n    2001:2::2 min_ttl 64\n  }',
        }),
      'g-kv',
    );
    await sleep(300);
    const ka = lab.keepalived(
      'lb2',
      globalDefs('ka', '  vrrp_check_unicast_src\n') +
        instance({
          priority: 90,
          vips: [VIP6],
          extra: '  unicast_src_ip 2001:2::2\n  unicast_peer {\n    2001:2::1\n  }',
        }),
      'g-ka',
    );
    try {
      await until('keepvs holds the VIP', one(VIP6, 'lb1'), 15000);
      // before: once the VIP was up, adverts left from it and keepalived rejected them -> two masters
      await holds('keepvs the only holder', one(VIP6, 'lb1'), 5000);
      assert.doesNotMatch(lab.keepaliveLog('g-ka'), /not a unicast peer/);
      await stopProc(kv.proc, 'SIGTERM', true);
      await until('keepalived takes over', one(VIP6, 'lb2'), 3000);
    } finally {
      await stopProc(kv.proc, 'SIGKILL', true);
      await stopProc(ka, 'SIGKILL');
    }
  },
);

test('v3 IPv4 unicast from a secondary unicast_src_ip: the checksum matches the source on the wire', opts, async () => {
  lab.ip('lb1', '-4', 'addr', 'add', '198.18.0.11/24', 'dev', 'eth0');
  const kv = lab.keepvs(
    'lb1',
    globalDefs('kv') +
      instance({
        priority: 100,
        vips: [VIP],
        extra: '  unicast_src_ip 198.18.0.11\n  unicast_peer {\n    198.18.0.2\n  }',
      }),
    's-kv',
  );
  await sleep(300);
  const ka = lab.keepalived(
    'lb2',
    globalDefs('ka') +
      instance({
        priority: 90,
        vips: [VIP],
        extra: '  unicast_src_ip 198.18.0.2\n  unicast_peer {\n    198.18.0.11\n  }',
      }),
    's-ka',
  );
  try {
    await until('keepvs holds the VIP', one(VIP, 'lb1'), 15000);
    // before: sent from the primary address with a checksum over the secondary -> "Invalid VRRPv3 checksum"
    await holds('keepvs the only holder', one(VIP, 'lb1'), 5000);
    assert.doesNotMatch(lab.keepaliveLog('s-ka'), /Invalid VRRPv3 checksum/);
  } finally {
    await stopProc(kv.proc, 'SIGKILL', true);
    await stopProc(ka, 'SIGKILL');
    lab.ip('lb1', '-4', 'addr', 'del', '198.18.0.11/24', 'dev', 'eth0');
  }
});

test(
  'SIGTERM to the whole process group: priority 0 sent, VIP removed, keepalived takes over after its skew time',
  opts,
  async () => {
    const kv = lab.keepvs('lb1', globalDefs('kv') + instance({ priority: 100, vips: [VIP] }), 'pg-kv');
    await sleep(300);
    const ka = lab.keepalived('lb2', globalDefs('ka') + instance({ priority: 90, vips: [VIP] }), 'pg-ka');
    try {
      await until('keepvs holds the VIP', one(VIP, 'lb1'), 15000);
      await sleep(1500);
      const t0 = Date.now();
      process.kill(-kv.proc.pid!, 'SIGTERM');
      // before: the workers died at once: no priority 0, the VIP stayed on lb1 (two holders) for ~3.6 s
      await until('keepalived the only holder', one(VIP, 'lb2'), 2500);
      const took = Date.now() - t0;
      assert.ok(took < 1500, `group-signal failover took ${took} ms`);
      await until('keepvs exits', () => kv.proc.exitCode !== null || kv.proc.signalCode !== null, 5000);
      assert.match(lab.keepaliveLog('pg-ka'), /priority 0/i);
    } finally {
      await stopProc(kv.proc, 'SIGKILL', true);
      await stopProc(ka, 'SIGKILL');
    }
  },
);

test('sync group of 3, one member with a live higher-priority peer: the group stays BACKUP', opts, async () => {
  const vips = ['198.18.0.161', '198.18.0.162', '198.18.0.163'];
  const group = 'vrrp_sync_group G {\n  group {\n    VI_A\n    VI_B\n    VI_C\n  }\n}\n';
  const kvConf =
    globalDefs('kv') +
    group +
    ['A', 'B', 'C'].map((n, k) => instance({ name: `VI_${n}`, vrid: 61 + k, priority: 100, vips: [vips[k]] })).join('');
  const kaConf =
    globalDefs('ka') +
    ['A', 'B', 'C']
      .map((n, k) => instance({ name: `VI_${n}`, vrid: 61 + k, priority: k === 2 ? 150 : 90, vips: [vips[k]] }))
      .join('');
  const ka = lab.keepalived('lb2', kaConf, 'sg-ka');
  const kv = lab.keepvs('lb1', kvConf, 'sg-kv');
  try {
    for (const v of vips) await until(`keepalived holds ${v}`, one(v, 'lb2'), 15000);
    // before: VI_A's timer pulled the group to MASTER, VI_C's peer pushed it back, every few seconds
    await holds('keepalived holds all three', () => vips.every((v) => one(v, 'lb2')()), 8000);
    assert.doesNotMatch(lab.keepvsLog('sg-kv'), /Entering MASTER/);
    assert.deepEqual(
      lab.vrrpStatus('lb1', kv.port).map((i) => i.state),
      ['BACKUP', 'BACKUP', 'BACKUP'],
    );
  } finally {
    await stopProc(kv.proc, 'SIGKILL', true);
    await stopProc(ka, 'SIGKILL');
  }
});
