/**
 * Interop with FRR 8.4 vrrpd (Debian `frr`), the second independent VRRP implementation: keepvs
 * and zebra + vrrpd in lab namespaces (vrrp-peers.md §2). vrrpd never adds addresses: it holds
 * the VIP when its macvlan (virtual MAC) is up and not in protodown. Cases run one after the other
 * in one lab; after each step exactly one of the two holds the VIP. Needs root, frr and the lab.
 */
import { after, before, test } from 'node:test';
import { globalDefs, haveFrr, holds, instance, Lab, sleep, stopProc, until } from './lab-peers.js';

const lab = new Lab(`kvf${process.pid % 10000}`);
const opts = { skip: !haveFrr && 'needs root, frr (vrrpd, zebra) and ../shared/lab', timeout: 90000 };

before(() => {
  if (haveFrr) lab.up();
});
after(async () => {
  if (haveFrr) await lab.down();
});

// every variant FRR has (vrrpd 8.4: no unicast peers, no authentication), each with its own VRID
const VARIANTS = [
  [3, '198.18.0.100'],
  [3, '2001:2::100'],
  [2, '198.18.0.100'],
] as const;
const family = (vip: string) => (vip.includes(':') ? 'IPv6' : 'IPv4');

for (const [i, [version, vip]] of VARIANTS.entries()) {
  const vrid = 51 + i;
  const fam = family(vip);
  test(
    `FRR vrrpd, v${version} ${fam}: keepvs master (100) / FRR backup (90), stop, group stop, supervisor crash, crash, preemption back`,
    opts,
    async () => {
      const frr = await lab.frr('lb2', `a${vrid}`, { vrid, version, priority: 90, vip });
      const kvConf = globalDefs('kv') + instance({ vrid, priority: 100, version, vips: [vip] });
      let kv = lab.keepvs('lb1', kvConf, `f${vrid}`);
      const kvOnly = () => lab.hasVip('lb1', vip) && !lab.frrHolds('lb2', frr.macvlan);
      const frrOnly = () => !lab.hasVip('lb1', vip) && lab.frrHolds('lb2', frr.macvlan);
      try {
        await until('keepvs master, FRR backup', kvOnly, 15000);
        await holds('keepvs the only holder', kvOnly, 3000);
        await stopProc(kv.proc, 'SIGTERM');
        await until('FRR takes over on SIGTERM to the main process', frrOnly, 3000);
        kv = lab.keepvs('lb1', kvConf, `f${vrid}a`);
        await until('keepvs preempts back after the stop', kvOnly, 15000);
        await stopProc(kv.proc, 'SIGTERM', true);
        await until('FRR takes over on the group signal stop', frrOnly, 3000);
        kv = lab.keepvs('lb1', kvConf, `f${vrid}b`);
        await until('keepvs preempts back after the group stop', kvOnly, 15000);
        await stopProc(kv.proc, 'SIGKILL');
        // the orphaned VRRP worker sends priority 0 and releases the VIP
        await until('FRR takes over after a supervisor crash', frrOnly, 6000);
        kv = lab.keepvs('lb1', kvConf, `f${vrid}c`);
        await until('keepvs preempts back after the supervisor crash', kvOnly, 15000);
        await stopProc(kv.proc, 'SIGKILL', true);
        // a crash of every process: FRR after the master-down interval; lb1 keeps its stale copy
        await until('FRR takes over after a crash', () => lab.frrHolds('lb2', frr.macvlan), 8000);
      } finally {
        await stopProc(kv.proc, 'SIGKILL', true);
        await frr.proc();
        lab.ip('lb2', 'link', 'del', frr.macvlan);
        lab.clearVips([vip]);
        await sleep(300);
      }
    },
  );
}

// the other direction
for (const [i, [version, vip]] of VARIANTS.entries()) {
  const vrid = 54 + i;
  const fam = family(vip);
  test(
    `FRR vrrpd master (100), keepvs backup (90), v${version} ${fam}: keepvs stays backup, takes over on FRR stop and crash, FRR preempts back`,
    opts,
    async () => {
      const kvConf = globalDefs('kv') + instance({ vrid, priority: 90, version, vips: [vip] });
      const kv = lab.keepvs('lb1', kvConf, `rev${vrid}`);
      let frr = await lab.frr('lb2', `rev${vrid}`, { vrid, version, priority: 100, vip });
      const frrOnly = () => !lab.hasVip('lb1', vip) && lab.frrHolds('lb2', frr.macvlan);
      const kvOnly = () => lab.hasVip('lb1', vip) && !lab.frrHolds('lb2', frr.macvlan);
      // vrrpd's macvlan can be up for a moment before vrrpd has an address to speak from (IPv6:
      // its link-local is still tentative), so wait for vrrpd to say Master
      const frrMaster = () => frrOnly() && /Status \(v[46]\)\s+Master/.test(frr.vtysh('show vrrp'));
      try {
        await until('FRR master', frrMaster, 20000, 300);
        // FRR preempting keepvs (which was alone first) settles within an advert interval
        await sleep(1000);
        await holds('FRR the only holder', frrOnly, 3000).catch((e) => {
          throw new Error(`${e.message}\n${lab.keepvsLog(`rev${vrid}`)}\n${frr.vtysh('show vrrp')}`);
        });
        await frr.proc();
        await until('keepvs takes over on FRR stop', kvOnly, 3000);
        lab.ip('lb2', 'link', 'del', frr.macvlan);
        frr = await lab.frr('lb2', `rev${vrid}b`, { vrid, version, priority: 100, vip });
        await until('FRR preempts back', frrMaster, 20000, 300);
        await holds('FRR the only holder again', frrOnly, 2000);
        await frr.crash();
        await until('keepvs takes over after FRR crashed', () => lab.hasVip('lb1', vip), 8000);
      } finally {
        await stopProc(kv.proc, 'SIGKILL', true);
        await frr.proc();
        lab.ip('lb2', 'link', 'del', frr.macvlan);
        lab.clearVips([vip]);
        await sleep(300);
      }
    },
  );
}
