/**
 * Interop with Debian's keepalived in the network lab (../shared/lab/lab.sh): keepvs and
 * keepalived as the two directors of one virtual router. Needs root, keepalived and the lab;
 * skipped otherwise. Only the lab's own addresses are used; the lab is torn down at the end.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { keepalivedPair } from './keepalived-pair.js';

const { opts, hasVip, setVip, conf, startKeepalived, startKeepvs, until, stop } = keepalivedPair('kvi');

for (const [version, extra, vip] of [
  [2, '  authentication {\n    auth_type PASS\n    auth_pass s3cr3t\n  }', '198.18.0.100'],
  [2, '  authentication {\n    auth_type AH\n    auth_pass s3cr3t\n  }', '198.18.0.100'],
  [3, '', '198.18.0.100'],
  [3, '', '2001:2::100'],
] as const) {
  test(
    `VRRPv${version} ${vip}${extra.includes('AH') ? ' AH' : extra ? ' PASS' : ''}: keepvs (priority 100) and keepalived (90): start, stop, preempt, crash`,
    opts,
    async () => {
      setVip(vip);
      const ka = startKeepalived('lb2', conf(`ka${version}`, 90, version, extra));
      let kv = startKeepvs('lb1', conf(`kv${version}`, 100, version, extra));
      try {
        await until('keepvs master with the VIP', () => hasVip('lb1') && !hasVip('lb2'), 15000);
        // graceful stop: a priority 0 advert, keepalived takes over after its skew time
        await stop(kv);
        const failover = await until('keepalived takes the VIP', () => hasVip('lb2') && !hasVip('lb1'), 5000);
        assert.ok(failover < 3000, `graceful failover took ${failover} ms`);
        // keepvs comes back with the higher priority and preempts
        kv = startKeepvs('lb1', conf(`kv${version}`, 100, version, extra));
        await until('keepvs preempts back', () => hasVip('lb1') && !hasVip('lb2'), 15000);
        // crash of the supervisor: the orphaned VRRP worker releases the VIP, keepalived takes over
        await stop(kv, 'SIGKILL');
        await until('keepalived takes over after a crash', () => hasVip('lb2') && !hasVip('lb1'), 6000);
        await stop(ka);
        assert.equal(hasVip('lb2'), false, 'keepalived released the VIP on stop');
      } finally {
        await stop(kv, 'SIGKILL');
        await stop(ka, 'SIGKILL');
        await new Promise((r) => setTimeout(r, 1500));
      }
    },
  );
}
