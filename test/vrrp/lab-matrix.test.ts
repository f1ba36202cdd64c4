/**
 * The rest of the keepalived 2.2.7 interop matrix: v3 unicast from the primary address, multicast
 * from a secondary mcast_src_ip, and the reverse direction (keepalived master) for v2 PASS, v2 AH
 * and v3 IPv6. One lab, cases one after the other. Needs root, keepalived and ../shared/lab.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { globalDefs, holds, instance, keepalivedLab, sleep, stopProc, until } from './lab-peers.js';

const { lab, opts, VIP, VIP6, one } = keepalivedLab('kvm');

for (const [label, kvExtra, kaExtra, secondary] of [
  [
    'v3 IPv4 unicast from the primary address',
    '  unicast_src_ip 198.18.0.1\n  unicast_peer {\n    198.18.0.2\n  }',
    '  unicast_src_ip 198.18.0.2\n  unicast_peer {\n    198.18.0.1\n  }',
    false,
  ],
  ['v3 IPv4 multicast from a secondary mcast_src_ip', '  mcast_src_ip 198.18.0.11', '', true],
] as const) {
  test(`${label}: keepvs master, keepalived backup, graceful stop hands over`, opts, async () => {
    if (secondary) lab.ip('lb1', '-4', 'addr', 'add', '198.18.0.11/24', 'dev', 'eth0');
    const kv = lab.keepvs('lb1', globalDefs('kv') + instance({ priority: 100, vips: [VIP], extra: kvExtra }), 'm-kv');
    await sleep(300);
    const ka = lab.keepalived(
      'lb2',
      globalDefs('ka') + instance({ priority: 90, vips: [VIP], extra: kaExtra }),
      'm-ka',
    );
    try {
      await until('keepvs holds the VIP', one(VIP, 'lb1'), 15000);
      await holds('keepvs the only holder', one(VIP, 'lb1'), 3000);
      assert.doesNotMatch(lab.keepaliveLog('m-ka'), /Invalid VRRPv3 checksum/);
      await stopProc(kv.proc, 'SIGTERM', true);
      await until('keepalived takes over', one(VIP, 'lb2'), 3000);
    } finally {
      await stopProc(kv.proc, 'SIGKILL', true);
      await stopProc(ka);
      if (secondary) lab.ip('lb1', '-4', 'addr', 'del', '198.18.0.11/24', 'dev', 'eth0');
    }
  });
}

for (const [label, version, vip, extra] of [
  ['v2 PASS', 2, VIP, '  authentication {\n    auth_type PASS\n    auth_pass s3cr3t\n  }'],
  ['v2 AH', 2, VIP, '  authentication {\n    auth_type AH\n    auth_pass s3cr3t\n  }'],
  ['v3 IPv6 multicast', 3, VIP6, ''],
] as const) {
  test(
    `${label}, the reverse: keepalived master, keepvs backup takes over on its stop, keepalived preempts back`,
    opts,
    async () => {
      const kaConf = globalDefs('ka') + instance({ priority: 100, version, vips: [vip], extra });
      const kv = lab.keepvs('lb2', globalDefs('kv') + instance({ priority: 90, version, vips: [vip], extra }), 'r-kv');
      let ka = lab.keepalived('lb1', kaConf, 'r-ka');
      try {
        await until('keepalived master', one(vip, 'lb1'), 15000);
        await holds('keepalived the only holder', one(vip, 'lb1'), 3000);
        await stopProc(ka);
        await until('keepvs takes over', one(vip, 'lb2'), 3000);
        ka = lab.keepalived('lb1', kaConf, 'r-ka2');
        // AH: keepalived restarts its sequence numbers; keepvs's answers carry it past them
        await until('keepalived preempts back', one(vip, 'lb1'), 15000);
      } finally {
        await stopProc(kv.proc, 'SIGKILL', true);
        await stopProc(ka);
      }
    },
  );
}
