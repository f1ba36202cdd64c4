/**
 * Active-active directors behind ECMP in the network lab (docs/scale-out.md, "Measured"), the lab of
 * test/dataplane/ecmp-lab.ts: FRR router with multipath and BFD, three keepvs DR directors announcing
 * by BGP, three real servers, long-lived flows from the router. Measured, per event: flows whose
 * director changed (the router's own `ip route get ... sport`), flows broken (error, reset or no
 * answer for 3 s), flows whose real server changed:
 *   spread       how many flows each director carries
 *   add          lb3 starts announcing
 *   kill         lb2's front link cut (a dead box): BFD withdraws it at the router
 *   rs-removed   rs3 stops on every director (health checks); when each director saw it
 *   flap         lb1's back link down 3 s / up 3 s five times, with hold_down 2 (doubling) and,
 *                interleaved as the baseline, hold_down 0: announcements the router saw
 * Usage (root, from the repository): node dist/bench/ecmp-lab.js [FLOWS=120]
 */
import { readFileSync } from 'node:fs';
import { compare, EcmpLab, type Flow } from '../test/dataplane/ecmp-lab.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** lb1's back link down 3 s / up 3 s, five times: how often the router saw lb1 announced, and when it was back. */
async function flap(lab: EcmpLab): Promise<{ announcements: number; backAfterMs: number }> {
  let announcements = 0;
  let had = lab.nexthops().includes('198.18.0.1');
  let watching = true;
  const watch = (async () => {
    while (watching) {
      const has = lab.nexthops().includes('198.18.0.1');
      if (has && !had) announcements++;
      had = has;
      await sleep(100);
    }
  })();
  for (let k = 0; k < 5; k++) {
    lab.sh('ip', '-n', `${lab.prefix}-lb1`, 'link', 'set', 'eth1', 'down');
    await sleep(3000);
    lab.sh('ip', '-n', `${lab.prefix}-lb1`, 'link', 'set', 'eth1', 'up');
    await sleep(3000);
  }
  const backAfterMs = await lab.until('lb1 announced again', () => lab.nexthops().includes('198.18.0.1'), 60000);
  await sleep(300);
  watching = false;
  await watch;
  return { announcements, backAfterMs };
}

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? 120);
  const lab = new EcmpLab(`ke${process.pid % 100000}`);
  const out: Record<string, unknown> = {
    date: new Date().toISOString(),
    flows: n,
    load: readFileSync('/proc/loadavg', 'utf8').trim(),
  };
  try {
    lab.up();
    lab.startDirector(1);
    lab.startDirector(2);
    await lab.until('two paths at the router', () => lab.nexthops().length === 2, 60000);
    lab.startFlows(n);
    await lab.until('every flow answered', async () => (await lab.flows()).every((f) => f.answers > 2), 30000);
    const dirs = async (fl: Flow[]) =>
      new Map(fl.filter((f) => f.sport).map((f) => [f.sport, lab.directorOf(f.sport)]));
    let f0 = await lab.flows();
    let d0 = await dirs(f0);
    const spread = (d: Map<number, string>) => {
      const c: Record<string, number> = {};
      for (const v of d.values()) c[v] = (c[v] ?? 0) + 1;
      return c;
    };
    out.spread2 = spread(d0);
    // a director added
    lab.startDirector(3);
    out.addMs = await lab.until('three paths', () => lab.nexthops().length === 3, 60000);
    await sleep(3000);
    let f1 = await lab.flows();
    let d1 = await dirs(f1);
    out.add = compare(f0, f1, d0, d1);
    out.spread3 = spread(d1);
    // a director killed: lb2's front link cut at the switch
    f0 = f1;
    d0 = d1;
    const cut = Date.now();
    lab.sh('ip', '-n', `${lab.prefix}-sw`, 'link', 'set', 'lb2-f', 'down');
    await lab.until('lb2 withdrawn', () => !lab.nexthops().includes('198.18.0.2'), 10000);
    out.killWithdrawnMs = Date.now() - cut;
    await sleep(4000);
    f1 = await lab.flows();
    d1 = await dirs(f1);
    out.kill = compare(f0, f1, d0, d1);
    // a real server removed on all directors
    f0 = f1;
    d0 = d1;
    const stopped = Date.now();
    lab.stopRs(3);
    const seenDown: number[] = [];
    await lab.until('rs3 down on every director', () => {
      for (const i of [1, 2, 3])
        if (seenDown[i] === undefined && lab.serverUp(i, '198.18.1.13:80') === false)
          seenDown[i] = Date.now() - stopped;
      return [1, 2, 3].every((i) => seenDown[i] !== undefined);
    });
    out.rsDownSeenMs = { lb1: seenDown[1], lb2: seenDown[2], lb3: seenDown[3] };
    await sleep(3000);
    f1 = await lab.flows();
    d1 = await dirs(f1);
    out.rsRemoved = { ...compare(f0, f1, d0, d1), onRs3Before: f0.filter((f) => !f.broken && f.rs === 'rs3').length };
    // a flapping director, with the hold-down and (baseline) without it
    out.flapHoldDown2 = await flap(lab);
    lab.reloadDirector(1, lab.directorConfig(1, 0));
    await sleep(3000);
    await lab.until('lb1 announced after the reload', () => lab.nexthops().includes('198.18.0.1'), 60000);
    out.flapHoldDown0 = await flap(lab);
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  } finally {
    lab.down();
  }
}

if (process.argv[1]?.endsWith('ecmp-lab.js')) await main();
