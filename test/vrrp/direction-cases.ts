/**
 * Shared by lab-unicast*.test.ts: keepalived 2.2.7 interop, the directions and variants the other
 * lab files do not cover: v2 without authentication (multicast both ways, unicast with keepalived master), v2 PASS and AH over
 * unicast both ways, v3 IPv4 and v3 IPv6 (global) unicast with keepalived master, v3 IPv6 over
 * link-local addresses with keepvs master. One lab per file, cases one after the other; after
 * each step exactly one director holds the VIP. Needs root, keepalived and ../shared/lab.
 */
import { test } from 'node:test';
import { globalDefs, holds, instance, keepalivedLab, sleep, stopProc, until } from './lab-peers.js';

export const PASS = '  authentication {\n    auth_type PASS\n    auth_pass s3cr3t\n  }\n';
export const AH = '  authentication {\n    auth_type AH\n    auth_pass s3cr3t\n  }\n';
export type Family = 'v4' | 'v6' | 'll' | 'mc';
/** label, VRRP version, family ('mc': multicast IPv4), authentication block, keepvs is the master */
export type DirectionCase = readonly [string, 2 | 3, Family, string, boolean];

export function directionCases(tag: string, cases: readonly DirectionCase[]): void {
  const { lab, opts, VIP, VIP6, one } = keepalivedLab(tag);
  /** `unicast_src_ip` and `unicast_peer` of lb1 and lb2 for a family; IPv6: keepalived's own unicast
   * adverts leave with hop limit 64 (vrrp-peers.md §4), which keepvs takes from a peer only with min_ttl */
  const peers = (family: Family) => {
    if (family === 'mc') return { lb1: () => '', lb2: () => '' };
    const [a1, a2] =
      family === 'v4'
        ? ['198.18.0.1', '198.18.0.2']
        : family === 'v6'
          ? ['2001:2::1', '2001:2::2']
          : [lab.linkLocal('lb1'), lab.linkLocal('lb2')];
    const ttl = family === 'v4' ? '' : ' min_ttl 64';
    const uc = (src: string, peer: string, kv: boolean) =>
      `  unicast_src_ip ${src}\n  unicast_peer {\n    ${peer}${kv ? ttl : ''}\n  }\n`;
    return { lb1: (kv: boolean) => uc(a1, a2, kv), lb2: (kv: boolean) => uc(a2, a1, kv) };
  };

  for (const [n, [label, version, family, auth, keepvsMaster]] of cases.entries()) {
    const who = keepvsMaster ? 'keepvs master, keepalived backup' : 'keepalived master, keepvs backup';
    test(`${label}: ${who}; the backup takes over on stop, the master preempts back`, opts, async () => {
      const vip = family === 'v4' || family === 'mc' ? VIP : VIP6;
      const p = peers(family);
      // lb1 is the master (priority 100), lb2 the backup (90)
      const masterConf = (kv: boolean) =>
        globalDefs(kv ? 'kv' : 'ka') + instance({ priority: 100, version, vips: [vip], extra: auth + p.lb1(kv) });
      const backupConf = (kv: boolean) =>
        globalDefs(kv ? 'kv' : 'ka') + instance({ priority: 90, version, vips: [vip], extra: auth + p.lb2(kv) });
      const startMaster = (tag: string) =>
        keepvsMaster ? lab.keepvs('lb1', masterConf(true), tag).proc : lab.keepalived('lb1', masterConf(false), tag);
      const backup = keepvsMaster
        ? lab.keepalived('lb2', backupConf(false), `u${n}-b`)
        : lab.keepvs('lb2', backupConf(true), `u${n}-b`).proc;
      let master = startMaster(`u${n}-m`);
      try {
        await until('the master holds the VIP', one(vip, 'lb1'), 15000);
        await holds('the master the only holder', one(vip, 'lb1'), 3000);
        await stopProc(master, 'SIGTERM', true);
        await until('the backup takes over', one(vip, 'lb2'), 4000);
        master = startMaster(`u${n}-m2`);
        // AH: a restarted keepalived starts its sequence numbers again; keepvs carries it past them
        await until('the master preempts back', one(vip, 'lb1'), 15000);
      } finally {
        await stopProc(master, 'SIGKILL', true);
        await stopProc(backup, 'SIGKILL', true);
        await sleep(200);
      }
    });
  }
}
