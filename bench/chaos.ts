/**
 * The chaos suite of a director pair (issue #16), in the lab (../shared/lab/lab.sh, root only):
 * keepvs on lb1 (priority 150) and lb2 (100), VRRPv3 advert_int 0.1 (or ADVERT), three real servers
 * echoing, a client holding 20 long-lived connections (a byte echoed every 100 ms) while it starts a
 * new connection attempt every 20 ms whatever the earlier ones became. Each fault runs against each
 * service (NAT, DR and full-NAT by Maglev, NAT and full-NAT by rr) with keepvs's VRRP on both
 * directors and with keepalived 2.2.7 doing lb2's VRRP (keepvs -C there).
 * Per run: long-lived connections kept out of 20, new attempts failed and not answered at the first
 * try, the time without service (the span of attempts not answered at the first try), the longest
 * gap between first-try answers, the earlier suite's figure (pair-lab.ts `figures`), lb2's takeover
 * steps from its log, the VIP holders after settling, and what keepalived + LVS do in the same case
 * (their documented behaviour; this kernel has no IPVS).
 * Run: npx tsc -p . && node dist/bench/chaos.js [FAULT,...|all] [SERVICE,...|all] [keepvs|keepalived|both]
 * (ADVERT=1 for keepalived's default advert_int). bench/chaos.sh wraps it.
 */
import { execFileSync } from 'node:child_process';
import { loadavg } from 'node:os';
import {
  canRunPair,
  type Director,
  type DirectorOptions,
  type FaultFigures,
  figures,
  PairLab,
  PORTS,
  sleep,
  until,
} from '../test/dataplane/pair-lab.js';

const ADVERT = Number(process.env.ADVERT ?? 0.1);
const SERVICES = {
  'NAT mh': PORTS.natMh,
  'DR mh': PORTS.drMh,
  'FNAT mh': PORTS.fnatMh,
  'NAT rr': PORTS.natRr,
  'FNAT rr': PORTS.fnatRr,
} as const;
/** rr needs connection sync: with keepvs's VRRP the pair runs conntrackd (lvs_sync_daemon eth1 VI_1) */
const SYNC = process.env.SYNC !== '0';
type Service = keyof typeof SERVICES;
type Peer = 'keepvs' | 'keepalived';

interface Fault {
  /** what is done to the pair while the client runs */
  run(lab: PairLab): Promise<void>;
  /** undo what run left (cables, rules, servers); the directors are restarted by settle() */
  undo?(lab: PairLab): Promise<void> | void;
  /** whether lb2 must take the VIP (failover faults) */
  failover: boolean;
  /** keepalived + LVS in the same case (documented behaviour) */
  lvs: (svc: Service) => string;
}

const LVS_NO_SYNC =
  'established: without lvs_sync_daemon the new IPVS master has no entry; with sloppy_tcp 0 (default) a mid-stream segment is not scheduled and gets a RST, so all are lost (mh + sloppy_tcp 1 keeps them)';
const lvsTakeover = (how: string) => (svc: Service) =>
  `${how}; ${svc.endsWith(' rr') ? 'rr: kept only with lvs_sync_daemon (IPVS sync), else reset' : LVS_NO_SYNC}`;

const FAULTS: Record<string, Fault> = {
  'master SIGKILL': {
    failover: true,
    run: (lab) => lab.stop('lb1', 'SIGKILL'),
    lvs: lvsTakeover(
      'backup master after 3 x advert_int + skew; the dead node keeps its VIPs and IPVS table (two holders until it restarts)',
    ),
  },
  'master crash (kill + cables cut)': {
    failover: true,
    async run(lab) {
      await lab.stop('lb1', 'SIGKILL');
      lab.link('lb1', 'front', false);
      lab.link('lb1', 'back', false);
    },
    undo(lab) {
      lab.link('lb1', 'front', true);
      lab.link('lb1', 'back', true);
    },
    lvs: lvsTakeover('backup master after 3 x advert_int + skew'),
  },
  'master graceful stop': {
    failover: true,
    run: (lab) => lab.stop('lb1', 'SIGTERM'),
    lvs: lvsTakeover('priority-0 advert: backup master after skew time; keepalived removes VIPs and IPVS services'),
  },
  'front link down': {
    failover: true,
    run: async (lab) => lab.link('lb1', 'front', false),
    undo: (lab) => lab.link('lb1', 'front', true),
    lvs: lvsTakeover('adverts stop reaching the backup: master after 3 x advert_int + skew'),
  },
  'back link down': {
    failover: true,
    run: async (lab) => lab.link('lb1', 'back', false),
    undo: (lab) => lab.link('lb1', 'back', true),
    lvs: lvsTakeover('track_interface eth1: FAULT, priority-0 advert, backup master after skew'),
  },
  'partition + heal': {
    failover: false,
    async run(lab) {
      lab.partition(true);
      await until('both directors hold the VIP', () => lab.holders().length === 2, 10000).catch(() => {});
      await sleep(1500);
      lab.partition(false);
    },
    undo: (lab) => {
      try {
        lab.partition(false);
      } catch {}
    },
    lvs: () =>
      'both masters until healed, then the lower priority goes BACKUP on the first advert it hears; flows crossing directors: NAT replies un-NATed by the other, DR fine with mh + sloppy_tcp',
  },
  'real server flapping': {
    failover: false,
    async run(lab) {
      // rs2 refuses new connections for 2.5 s, three times: its checks fail on both directors (at
      // their own times), it leaves and rejoins the pool; its established connections are untouched
      for (let i = 0; i < 3; i++) {
        rsSyn(lab, true);
        await sleep(2500);
        rsSyn(lab, false);
        await sleep(2500);
      }
    },
    undo: (lab) => rsSyn(lab, false),
    lvs: () =>
      'the checker removes rs2 (or weight 0 with inhibit_on_failure); IPVS keeps its connections (conn table, also in DR) unless expire_nodest_conn; mh remaps only rs2 slots',
  },
  'reload under load (both)': {
    failover: false,
    async run(lab) {
      for (let i = 0; i < 5; i++) {
        lab.reload('lb1');
        lab.reload('lb2');
        await sleep(600);
      }
    },
    lvs: () => 'SIGHUP keeps unchanged virtual and real servers in IPVS: no connection lost, VRRP state kept',
  },
};

function rsSyn(lab: PairLab, drop: boolean): void {
  const rules = drop
    ? 'add table inet chaos\nadd chain inet chaos in { type filter hook input priority 0; policy accept; }\nadd rule inet chaos in tcp flags syn / syn,ack reject with tcp reset\n'
    : 'delete table inet chaos\n';
  try {
    execFileSync('ip', ['netns', 'exec', lab.ns('rs2'), 'nft', '-f', '-'], {
      input: rules,
      stdio: ['pipe', 'ignore', 'ignore'],
    });
  } catch {}
}

interface Row extends FaultFigures {
  fault: string;
  service: Service;
  peer: string;
  takeoverMs: number | null;
  /** lb2's own account of the takeover (its "took over:" log line: each step's time from the transition) */
  takeoverSteps: string;
  holders: string;
  lvs: string;
}

const options = (peer: Peer, host: Director): DirectorOptions => ({
  priority: host === 'lb1' ? 150 : 100,
  advertInt: ADVERT,
  // conntrackd follows keepvs's VRRP instance; with keepalived's VRRP on lb2 there is no sync
  ...(peer === 'keepalived' ? (host === 'lb2' ? { vrrpBy: 'keepalived' as const } : {}) : { sync: SYNC }),
});

async function settle(lab: PairLab, peer: Peer, port: number): Promise<void> {
  for (const h of ['lb1', 'lb2'] as const)
    if (!lab.running(h) || JSON.stringify(lab.options(h)) !== JSON.stringify(options(peer, h))) {
      await lab.stop(h, 'SIGTERM');
      lab.clearVips(h);
      lab.start(h, options(peer, h));
    }
  await until('lb1 alone holds the VIP', () => lab.holders().join() === 'lb1', 40000);
  await until('both tables complete', () => lab.serving('lb1') && lab.serving('lb2'), 40000);
  lab.forgetNeighbours();
  await until('the service answers', () => lab.probe(port).startsWith('rs'), 40000);
  await sleep(500);
}

async function one(lab: PairLab, fault: string, service: Service, peer: Peer): Promise<Row> {
  const f = FAULTS[fault];
  const port = SERVICES[service];
  await settle(lab, peer, port);
  const c = lab.client(port);
  await sleep(1500);
  c.mark();
  const t0 = Date.now();
  const running = f.run(lab);
  let takeoverMs: number | null = null;
  if (f.failover)
    takeoverMs = await until('lb2 takes the VIP', () => lab.hasVip('lb2'), 15000, 10)
      .then(() => Date.now() - t0)
      .catch(() => null);
  await running;
  await sleep(3000);
  // VIP holders once settled: the failover faults leave lb2 alone, the others lb1 alone
  const want = f.failover ? 'lb2' : 'lb1';
  await until(
    'one VIP holder',
    () =>
      lab
        .holders()
        .filter((h) => lab.running(h))
        .join() === want,
    10 * ADVERT * 1000 + 3000,
  ).catch(() => {});
  // a killed director keeps its VIPs (as keepalived does): named apart, it serves nothing
  const live = lab.holders().filter((h) => lab.running(h));
  const stale = lab.holders().filter((h) => !lab.running(h));
  const holders = `${live.join('+') || 'none'}${stale.length ? ` (dead ${stale.join('+')} keeps it)` : ''}`;
  const r = figures(await c.stop());
  const steps = f.failover ? ([...lab.log('lb2').matchAll(/took over: (.*)$/gm)].at(-1)?.[1] ?? '') : '';
  await f.undo?.(lab);
  if (f.failover) {
    // the failed master is restarted by the next settle (after its leftover VIPs are removed)
    await lab.stop('lb1', 'SIGKILL');
  }
  const label = peer === 'keepvs' && SYNC ? 'keepvs + sync' : peer;
  return { fault, service, peer: label, takeoverMs, takeoverSteps: steps, holders, lvs: f.lvs(service), ...r };
}

async function main(): Promise<void> {
  if (!canRunPair) {
    console.log('chaos: needs root, nftables and ../shared/lab/lab.sh');
    return;
  }
  const pick = <T extends string>(arg: string | undefined, all: readonly T[]): T[] =>
    !arg || arg === 'all' ? [...all] : (arg.split(',').filter((a) => all.includes(a as T)) as T[]);
  const faults = pick(process.argv[2], Object.keys(FAULTS));
  const services = pick(process.argv[3], Object.keys(SERVICES) as Service[]);
  const peerArg = process.argv[4] ?? 'both';
  const peers: Peer[] = peerArg === 'both' ? ['keepvs', 'keepalived'] : [peerArg as Peer];
  const lab = new PairLab(`chaos${process.pid % 10000}`);
  const rows: Row[] = [];
  const load0 = loadavg()[0];
  const started = new Date().toISOString();
  try {
    lab.up();
    for (const peer of peers)
      for (const fault of faults)
        for (const service of services) {
          // the VRRP-only comparison needs a failover or the election; server and reload faults once
          if (peer === 'keepalived' && !FAULTS[fault].failover && fault !== 'partition + heal') continue;
          try {
            const row = await one(lab, fault, service, peer);
            rows.push(row);
            console.error(JSON.stringify(row));
          } catch (e) {
            console.error(`${fault} / ${service} / ${peer}: ${(e as Error).message}`);
          }
        }
  } finally {
    await lab.down();
  }
  const load1 = loadavg()[0];
  console.log(
    `\nchaos suite, ${started}, advert_int ${ADVERT}, load average ${load0.toFixed(1)} -> ${load1.toFixed(1)}`,
  );
  console.log(
    '| fault | service | pair (lb2 VRRP) | kept /20 | new failed / not at first try / opened | without service (ms) | longest gap between first-try answers (ms) | earlier figure (ms) | lb2 master after (ms) | VIP holder after |',
  );
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const r of rows)
    console.log(
      `| ${r.fault} | ${r.service} | ${r.peer} | ${r.kept} | ${r.newFailed} / ${r.notFirstTry} / ${r.newTotal}${r.newSkipped ? ` (${r.newSkipped} skipped)` : ''} | ${r.outageMs} | ${r.firstTryGapMs} | ${r.oldOutageMs} | ${r.takeoverMs ?? '-'} | ${r.holders} |`,
    );
  console.log("\nlb2's takeover steps (its log), and keepalived + LVS in the same case:");
  for (const r of rows)
    console.log(`- ${r.fault} / ${r.service} / ${r.peer}: ${r.takeoverSteps || '-'}; LVS: ${r.lvs}`);
}

await main();
