/**
 * The keepalived 2.2.7 interop matrix, every variant in both directions: VRRPv2 (none, PASS, AH)
 * and v3, IPv4 and IPv6, multicast and unicast peers (primary and secondary source address;
 * IPv6 over global and link-local addresses; use_vmac). Each case runs the whole sequence with lb1 the
 * master (priority 100) and lb2 the backup (90): start; the master's main process gets SIGTERM
 * (priority 0: takeover within the skew time); it starts again and preempts back; its whole process
 * group gets SIGTERM (systemd, Ctrl-C); back again; a crash (SIGKILL of the group: takeover after
 * the master-down interval); back again. Exactly one holder after each step (after the crash the
 * dead master still has the address, as keepalived leaves it: only the backup is checked then).
 * lab-directions-*.test.ts each run a few cases (the runner's time per file). Needs root,
 * keepalived and ../shared/lab.
 */
import { test } from 'node:test';
import { globalDefs, holds, instance, keepalivedLab, sleep, stopProc, until } from './lab-peers.js';

const PASS = '  authentication {\n    auth_type PASS\n    auth_pass s3cr3t\n  }\n';
const AH = '  authentication {\n    auth_type AH\n    auth_pass s3cr3t\n  }\n';
/** mc4/mc6: multicast; uc4/uc6: unicast over global addresses; ll: IPv6 unicast over link-local */
type Transport = 'mc4' | 'mc6' | 'uc4' | 'uc6' | 'll';
interface Variant {
  readonly label: string;
  readonly version: 2 | 3;
  readonly transport: Transport;
  readonly auth?: string;
  /** lb1 speaks from a secondary address, 198.18.0.11 (unicast_src_ip, or mcast_src_ip) */
  readonly secondary?: boolean;
  /** use_vmac on both: the VIP lives on the macvlan vrrp.51 */
  readonly vmac?: boolean;
}

export const VARIANTS: readonly Variant[] = [
  { label: 'v2 multicast', version: 2, transport: 'mc4' },
  { label: 'v2 PASS multicast', version: 2, transport: 'mc4', auth: PASS },
  { label: 'v2 AH multicast', version: 2, transport: 'mc4', auth: AH },
  { label: 'v3 IPv4 multicast', version: 3, transport: 'mc4' },
  { label: 'v3 IPv4 multicast from a secondary mcast_src_ip', version: 3, transport: 'mc4', secondary: true },
  { label: 'v3 IPv6 multicast', version: 3, transport: 'mc6' },
  { label: 'v2 unicast', version: 2, transport: 'uc4' },
  { label: 'v2 PASS unicast', version: 2, transport: 'uc4', auth: PASS },
  { label: 'v2 AH unicast', version: 2, transport: 'uc4', auth: AH },
  { label: 'v3 IPv4 unicast', version: 3, transport: 'uc4' },
  { label: 'v3 IPv4 unicast from a secondary unicast_src_ip', version: 3, transport: 'uc4', secondary: true },
  { label: 'v3 IPv6 unicast (global)', version: 3, transport: 'uc6' },
  { label: 'v3 IPv6 unicast (link-local)', version: 3, transport: 'll' },
  { label: 'v3 IPv4 multicast with use_vmac', version: 3, transport: 'mc4', vmac: true },
];
const VMAC_DEV = 'vrrp.51';

const SECONDARY = '198.18.0.11';

/** Runs `VARIANTS[i]` for each i, keepvs master and keepvs backup each. */
export function directionCases(tag: string, indexes: readonly number[]): void {
  const { lab, opts, VIP, VIP6 } = keepalivedLab(tag);
  const caseOpts = { ...opts, timeout: 100000 };

  /** the unicast / source lines of lb1 and lb2; IPv6: keepalived's own unicast adverts leave with
   * hop limit 64 (vrrp-peers.md §4), which keepvs takes from a peer only with min_ttl */
  const sources = (v: Variant) => {
    if (v.transport === 'mc4' || v.transport === 'mc6') {
      const src = v.secondary ? `  mcast_src_ip ${SECONDARY}\n` : '';
      return { lb1: () => src, lb2: () => '' };
    }
    const [a1, a2] =
      v.transport === 'uc4'
        ? [v.secondary ? SECONDARY : '198.18.0.1', '198.18.0.2']
        : v.transport === 'uc6'
          ? ['2001:2::1', '2001:2::2']
          : [lab.linkLocal('lb1'), lab.linkLocal('lb2')];
    const ttl = v.transport === 'uc4' ? '' : ' min_ttl 64';
    const uc = (src: string, peer: string, kv: boolean) =>
      `  unicast_src_ip ${src}\n  unicast_peer {\n    ${peer}${kv ? ttl : ''}\n  }\n`;
    return { lb1: (kv: boolean) => uc(a1, a2, kv), lb2: (kv: boolean) => uc(a2, a1, kv) };
  };

  for (const i of indexes) {
    const v = VARIANTS[i];
    for (const keepvsMaster of [true, false]) {
      const who = keepvsMaster ? 'keepvs master, keepalived backup' : 'keepalived master, keepvs backup';
      test(`${v.label}: ${who}: stop, group stop, crash, preemption back after each`, caseOpts, async () => {
        const vip = v.transport === 'mc6' || v.transport === 'uc6' || v.transport === 'll' ? VIP6 : VIP;
        const s = sources(v);
        const dev = v.vmac ? VMAC_DEV : 'eth0';
        const holdsOn = (host: string) => {
          try {
            return lab.hasVip(host, vip, dev);
          } catch {
            return false; // no VMAC interface (yet)
          }
        };
        const one = (_vip: string, host: string) => () => holdsOn(host) && !holdsOn(host === 'lb1' ? 'lb2' : 'lb1');
        const conf = (kv: boolean, priority: number, lines: string) =>
          globalDefs(kv ? 'kv' : 'ka') +
          instance({
            priority,
            version: v.version,
            vips: [vip],
            extra: (v.auth ?? '') + (v.vmac ? '  use_vmac\n' : '') + lines,
          });
        const t = `d${i}${keepvsMaster ? 'k' : 'a'}`;
        let round = 0;
        const startMaster = () => {
          const tg = `${t}-m${round++}`;
          return keepvsMaster
            ? lab.keepvs('lb1', conf(true, 100, s.lb1(true)), tg).proc
            : lab.keepalived('lb1', conf(false, 100, s.lb1(false)), tg);
        };
        if (v.secondary) lab.ip('lb1', '-4', 'addr', 'add', `${SECONDARY}/24`, 'dev', 'eth0');
        const backup = keepvsMaster
          ? lab.keepalived('lb2', conf(false, 90, s.lb2(false)), `${t}-b`)
          : lab.keepvs('lb2', conf(true, 90, s.lb2(true)), `${t}-b`).proc;
        let master = startMaster();
        const masterBack = async (after: string) => {
          master = startMaster();
          // AH: a restarted keepalived starts its sequence numbers again; keepvs carries it past them
          await until(`the master preempts back after the ${after}`, one(vip, 'lb1'), 15000);
        };
        try {
          await until('the master holds the VIP', one(vip, 'lb1'), 15000);
          await holds('the master the only holder', one(vip, 'lb1'), 2000);
          await stopProc(master, 'SIGTERM');
          await until('the backup takes over on SIGTERM to the main process', one(vip, 'lb2'), 4000);
          await masterBack('stop');
          await stopProc(master, 'SIGTERM', true);
          await until('the backup takes over on SIGTERM to the process group', one(vip, 'lb2'), 4000);
          await masterBack('group stop');
          await stopProc(master, 'SIGKILL', true);
          // 3 x advert_int + skew (3.65 s), then the backup has it; the dead master kept its copy
          await until('the backup takes over after a crash', () => holdsOn('lb2'), 8000);
          await masterBack('crash');
        } finally {
          await stopProc(master, 'SIGKILL', true);
          await stopProc(backup, 'SIGKILL', true);
          if (v.secondary) lab.ip('lb1', '-4', 'addr', 'del', `${SECONDARY}/24`, 'dev', 'eth0');
          if (v.vmac)
            for (const h of ['lb1', 'lb2'])
              try {
                lab.ip(h, 'link', 'del', VMAC_DEV); // a crashed master leaves its macvlan
              } catch {}
          await sleep(200);
        }
      });
    }
  }
}
