/**
 * How well the kernel plane's control loop balances the connection-count schedulers (lc, wlc...),
 * against the userspace scheduler on the same traffic. The kernel cannot pick per connection by
 * counts: each poll (1 s) the plane rewrites a slot table in proportion to w / (overhead + 1) from
 * conntrack counts (dataplane/nft/slots.ts), and new connections walk it (`numgen inc`) until the
 * next poll. Here both consume one synthetic trace (seeded Poisson arrivals, exponential holding
 * times that differ per real server): the userspace scheduler objects pick per arrival with live
 * counts (lb/sched), the kernel loop uses the same slotTable() code with counts sampled each poll.
 * Printed per case: connections per server, time-averaged active connections per server, and the
 * imbalance against the scheduler's ideal (active in proportion to weight): mean over time of
 * max_i |active_i / share_i - total| / total, and its ratio to the userspace scheduler's; rr (wrr)
 * beside them as the no-feedback baseline, and the plane's earlier law (w / (active + 1)) alone.
 *   npx tsc -p . && node dist/bench/lc-balance.js
 * Pure simulation: no network, no root. InActConn is left at 0 on both sides (same for both).
 */
import { slotTable } from '../src/dataplane/nft/slots.js';
import { SCHEDULERS } from '../src/lb/sched/index.js';
import type { SchedDest, SchedService } from '../src/lb/sched/types.js';
import { addressFold } from '../src/util/address.js';
import { seededRandom as rng } from '../src/util/seeded-random.js';

const SECONDS = Number(process.env.SECONDS ?? 60);
const RATE = Number(process.env.RATE ?? 1000);

interface Case {
  readonly name: string;
  readonly scheduler: string;
  readonly weights: readonly number[];
  /** mean holding time per server, s */
  readonly hold: readonly number[];
}

const CASES: Case[] = [
  { name: 'lc, one slow server (hold 0.2/0.2/1.0 s)', scheduler: 'lc', weights: [1, 1, 1], hold: [0.2, 0.2, 1.0] },
  { name: 'wlc 1:2:3, equal hold 0.5 s', scheduler: 'wlc', weights: [1, 2, 3], hold: [0.5, 0.5, 0.5] },
  { name: 'wlc 1:1:1, hold 0.1/0.5/2.0 s', scheduler: 'wlc', weights: [1, 1, 1], hold: [0.1, 0.5, 2.0] },
];

type Picker = {
  pick(now: number): number;
  opened(i: number): void;
  closed(i: number): void;
  tick?(now: number): void;
};

function dests(c: Case): (SchedDest & { activeConns: number })[] {
  return c.weights.map((w, i) => ({
    id: String(i),
    address: `198.18.1.${11 + i}`,
    port: 80,
    family: 4 as const,
    addrFold: addressFold(`198.18.1.${11 + i}`),
    seq: c.weights.length - i,
    weight: w,
    lastWeight: w,
    activeConns: 0,
    inactConns: 0,
    overloaded: false,
    heapPos: new Int32Array(4).fill(-1),
  }));
}

function userspace(c: Case, name = c.scheduler): Picker {
  const ds = dests(c);
  const svc: SchedService = { dests: ds, flags: new Set(), family: 4 };
  const s = SCHEDULERS[name]({ random: Math.random, now: () => 0 });
  for (const d of ds) s.destsChanged(svc, { kind: 'add', dest: d });
  const client = { addrFold: 0, port: 0, dstFold: 0 };
  return {
    pick: () => Number(s.pick(svc, client)?.id ?? -1),
    opened(i) {
      ds[i].activeConns++;
      s.loadChanged(svc, ds[i]);
    },
    closed(i) {
      ds[i].activeConns--;
      s.loadChanged(svc, ds[i]);
    },
  };
}

/**
 * The plane's loop: counts sampled every `pollS`, a slot table from them (slotTable, the plane's
 * code), walked by a counter. `hold`: with each server's holding time estimated as the plane does
 * (active + 0.5 over the last interval's new connections per second, averaged with the previous
 * estimate); without: the w / (active + 1) law alone (the plane before 2026-12-02, and what it
 * still runs for a server without a rate).
 */
function kernelLoop(c: Case, pollS: number, hold: boolean): Picker {
  const n = c.weights.length;
  const active = new Array<number>(n).fill(0);
  const got = new Array<number>(n).fill(0);
  const holdS = new Array<number>(n).fill(0);
  let slots: readonly number[] = [-1];
  let next = 0;
  let lastPoll = Number.NEGATIVE_INFINITY;
  const rebuild = (dt: number) => {
    for (let i = 0; i < n; i++) {
      const rate = got[i] / dt;
      got[i] = 0;
      if (!hold || rate <= 0) continue;
      const h = (active[i] + 0.5) / rate;
      holdS[i] = holdS[i] > 0 ? (holdS[i] + h) / 2 : h;
    }
    const t = slotTable(
      c.scheduler,
      new Set(),
      c.weights.map((w, i) => ({
        address: `198.18.1.${11 + i}`,
        port: 80,
        weight: w,
        lastWeight: w,
        overloaded: false,
        activeConns: active[i],
        inactConns: 0,
        ...(holdS[i] > 0 ? { holdS: holdS[i] } : {}),
      })),
      false,
    );
    // a new slot count replaces the rule (its numgen restarts); same count: the counter goes on
    if (t.slots.length !== slots.length) next = 0;
    slots = t.slots;
  };
  return {
    tick(now) {
      if (now - lastPoll >= pollS) {
        rebuild(lastPoll === Number.NEGATIVE_INFINITY ? pollS : now - lastPoll);
        lastPoll = now;
      }
    },
    pick() {
      const d = slots[next % slots.length];
      next = (next + 1) % slots.length;
      return d;
    },
    opened(i) {
      active[i]++;
      got[i]++;
    },
    closed: (i) => void active[i]--,
  };
}

/** Runs the trace through one picker: per-server connections, mean active, mean imbalance. */
function simulate(c: Case, p: Picker) {
  const r = rng(0x4b5653);
  const n = c.weights.length;
  const share = c.weights.map((w) => w / c.weights.reduce((a, b) => a + b, 0));
  const conns = new Array<number>(n).fill(0);
  const active = new Array<number>(n).fill(0);
  const activeSum = new Array<number>(n).fill(0);
  // departures: a binary min-heap of [time, server]
  const heap: [number, number][] = [];
  const push = (e: [number, number]) => {
    heap.push(e);
    for (let i = heap.length - 1; i > 0; ) {
      const j = (i - 1) >> 1;
      if (heap[j][0] <= heap[i][0]) break;
      [heap[i], heap[j]] = [heap[j], heap[i]];
      i = j;
    }
  };
  const pop = (): [number, number] => {
    const top = heap[0];
    const last = heap.pop() as [number, number];
    if (heap.length) {
      heap[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const rr = l + 1;
        let m = i;
        if (l < heap.length && heap[l][0] < heap[m][0]) m = l;
        if (rr < heap.length && heap[rr][0] < heap[m][0]) m = rr;
        if (m === i) break;
        [heap[i], heap[m]] = [heap[m], heap[i]];
        i = m;
      }
    }
    return top;
  };
  let t = 0;
  let nextSample = 0;
  let samples = 0;
  let imbalance = 0;
  const sample = (now: number) => {
    while (nextSample <= now && nextSample < SECONDS) {
      const total = active.reduce((a, b) => a + b, 0);
      if (nextSample >= 5 && total > 0) {
        // after a 5 s warm-up
        imbalance += Math.max(...active.map((a, i) => Math.abs(a / share[i] - total))) / total;
        for (let i = 0; i < n; i++) activeSum[i] += active[i];
        samples++;
      }
      nextSample += 0.01;
    }
  };
  while (t < SECONDS) {
    t += -Math.log(1 - r()) / RATE;
    while (heap.length && heap[0][0] <= t) {
      const [when, i] = pop();
      sample(when);
      active[i]--;
      p.closed(i);
    }
    sample(t);
    p.tick?.(t);
    const i = p.pick(t);
    if (i < 0) continue;
    conns[i]++;
    active[i]++;
    p.opened(i);
    push([t - Math.log(1 - r()) * c.hold[i], i]);
  }
  return { conns, meanActive: activeSum.map((a) => a / samples), imbalance: imbalance / samples };
}

console.log(
  `# ${new Date().toISOString()} lc-family balance: userspace scheduler vs the kernel plane's control loop, ${SECONDS} s at ${RATE} new conn/s (simulated, seeded)`,
);
for (const c of CASES) {
  console.log(`\n${c.name}`);
  console.log(`${'picker'.padEnd(28)} ${'connections'.padEnd(24)} ${'mean active'.padEnd(24)} imbalance  ratio`);
  const base = simulate(c, userspace(c));
  const rows: [string, ReturnType<typeof simulate>][] = [
    [`userspace ${c.scheduler}`, base],
    ['kernel loop, poll 1 s', simulate(c, kernelLoop(c, 1, true))],
    ['kernel loop, poll 0.25 s', simulate(c, kernelLoop(c, 0.25, true))],
    ['w/(active+1) law, poll 1 s', simulate(c, kernelLoop(c, 1, false))],
    ['rr (no feedback)', simulate(c, userspace(c, c.weights.every((w) => w === 1) ? 'rr' : 'wrr'))],
  ];
  for (const [name, r] of rows)
    console.log(
      `${name.padEnd(28)} ${r.conns.join('/').padEnd(24)} ${r.meanActive
        .map((a) => a.toFixed(1))
        .join('/')
        .padEnd(24)} ${r.imbalance.toFixed(3).padEnd(10)} ${(r.imbalance / base.imbalance).toFixed(2)}`,
    );
}
