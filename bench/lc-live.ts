/**
 * The lc family's kernel control loop against the userspace scheduler on live traffic (issue #15:
 * "the loop's balance is measured against the userspace scheduler on the same traffic"), the live
 * counterpart of the simulation bench/lc-balance.ts. In the network lab (test/dataplane/nft/
 * lc-live-lab.ts): a client opens connections at RATE/s (Poisson), each real server holds each one
 * an exponential time of its own mean, and three modes carry the same traffic, one at a time, in an
 * order rotated each round:
 *   nft-lc    keepvs --dataplane nft, SCHED: the control loop rewriting the slot map each conntrack poll
 *   proxy-lc  keepvs --dataplane proxy, same config: the userspace scheduler, per connection, live counts
 *   nft-rr    keepvs --dataplane nft, rr (wrr when the weights differ): no feedback, the reference
 * Each real server's open connections are sampled every SAMPLE_MS after WARM s, for DURATION s.
 * Imbalance (the simulation's): the mean over samples of max_i |A_i / s_i - T| / T, A_i server i's
 * open connections, T their sum, s_i = w_i / sum(w) (0 = active counts exactly in proportion to
 * weight). Printed per mode: connections per server, mean active per server, the imbalance per round
 * and its mean, and the ratios nft-lc / proxy-lc and nft-rr / proxy-lc.
 * Env: ROUNDS (3) DURATION (20 s) WARM (5 s) RATE (300 new conn/s) SAMPLE_MS (100)
 *   MODES ("nft-lc proxy-lc nft-rr") PROXY_WORKERS (1: the scheduler alone, no peer-load lag)
 *   one case instead of the simulation's three: SCHED (lc|wlc|...) WEIGHTS ("1,2,3") HOLD ("0.5" or
 *   "0.1,0.5,2.0", mean seconds per real server)
 * Needs root, nftables and the lab: bench/lc-live.sh (or node dist/bench/lc-live.js from the checkout).
 */
import {
  CASES,
  canRunLcLive,
  type LcCase,
  LcLiveLab,
  MODES,
  type Mode,
  type RunResult,
} from '../test/dataplane/nft/lc-live-lab.js';

const num = (k: string, d: number) => Number(process.env[k] ?? d);
const list = (v: string) =>
  v
    .split(/[ ,:/]+/)
    .filter(Boolean)
    .map(Number);
const ROUNDS = num('ROUNDS', 3);
const DURATION = num('DURATION', 20);
const WARM = num('WARM', 5);
const RATE = num('RATE', 300);
const SAMPLE_MS = num('SAMPLE_MS', 100);
const PROXY_WORKERS = num('PROXY_WORKERS', 1);

function cases(): LcCase[] {
  const { SCHED, WEIGHTS, HOLD } = process.env;
  if (!SCHED && !WEIGHTS && !HOLD) return [...CASES];
  const weights = WEIGHTS ? list(WEIGHTS) : [1, 1, 1];
  let hold = HOLD ? list(HOLD) : [0.5];
  if (hold.length === 1) hold = weights.map(() => hold[0]);
  if (hold.length !== weights.length) throw new Error('HOLD: one value, or one per weight');
  const scheduler = SCHED ?? 'wlc';
  return [{ name: `${scheduler} ${weights.join(':')}, hold ${hold.join('/')} s`, scheduler, weights, hold }];
}

function modes(): Mode[] {
  const m = (process.env.MODES ?? MODES.join(' ')).split(/[ ,]+/).filter(Boolean);
  for (const x of m) if (!MODES.includes(x as Mode)) throw new Error(`MODES: ${x} is not one of ${MODES.join(' ')}`);
  return m as Mode[];
}

const mean = (a: readonly number[]) => a.reduce((x, y) => x + y, 0) / a.length;

async function main(): Promise<void> {
  if (!canRunLcLive) {
    console.error('lc-live: needs root, nftables and ../shared/lab/lab.sh');
    process.exit(2);
  }
  const ms = modes();
  const lab = new LcLiveLab(`kc${process.pid % 100000}`, 3, PROXY_WORKERS);
  const load0 = LcLiveLab.load();
  const t0 = new Date().toISOString();
  const out: string[] = [];
  const say = (s: string) => {
    out.push(s);
    console.error(s);
  };
  try {
    lab.up();
    for (const c of cases()) {
      if (c.weights.length !== 3) throw new Error('the lab has three real servers: three weights');
      await lab.start(c);
      const by = new Map<Mode, RunResult[]>(ms.map((m) => [m, []]));
      for (let r = 0; r < ROUNDS; r++)
        for (let k = 0; k < ms.length; k++) {
          const m = ms[(k + r) % ms.length];
          const res = await lab.run(c, m, { rate: RATE, warmS: WARM, durationS: DURATION, sampleMs: SAMPLE_MS });
          by.get(m)?.push(res);
          console.error(
            `#   ${c.scheduler} round ${r + 1} ${m}: imbalance ${res.imbalance.toFixed(3)}, conns ${res.conns.join('/')}, client errors ${res.client.errors}`,
          );
        }
      await lab.stop();
      say(`\n${c.name}, weights ${c.weights.join(':')}`);
      say(
        `${'mode'.padEnd(10)} ${'sched'.padEnd(5)} ${'connections'.padEnd(18)} ${'mean active'.padEnd(18)} ${'imbalance'.padEnd(9)} ${'ratio'.padEnd(5)} per round; client errors`,
      );
      const base = by.get('proxy-lc');
      const baseImb = base?.length ? mean(base.map((x) => x.imbalance)) : Number.NaN;
      for (const m of ms) {
        const rs = by.get(m) ?? [];
        if (!rs.length) continue;
        const conns = rs[0].conns.map((_, i) => rs.reduce((a, x) => a + x.conns[i], 0));
        const act = rs[0].meanActive.map((_, i) => mean(rs.map((x) => x.meanActive[i])));
        const imb = mean(rs.map((x) => x.imbalance));
        say(
          `${m.padEnd(10)} ${rs[0].scheduler.padEnd(5)} ${conns.join('/').padEnd(18)} ${act
            .map((a) => a.toFixed(1))
            .join('/')
            .padEnd(18)} ${imb.toFixed(3).padEnd(9)} ${(imb / baseImb).toFixed(2).padEnd(5)} ${rs
            .map((x) => x.imbalance.toFixed(3))
            .join(' ')}; ${rs.reduce((a, x) => a + x.client.errors, 0)}`,
        );
      }
      const ratio = (m: Mode) => {
        const rs = by.get(m);
        return rs?.length && base?.length ? (mean(rs.map((x) => x.imbalance)) / baseImb).toFixed(2) : 'n/a';
      };
      say(`ratios: nft-lc/proxy-lc ${ratio('nft-lc')}, nft-rr/proxy-lc ${ratio('nft-rr')}`);
    }
  } finally {
    await lab.stop();
    lab.down();
  }
  console.log(
    `# ${t0} lc-family balance live: the kernel plane's control loop (nft-lc) vs the userspace scheduler (proxy-lc, ${PROXY_WORKERS} worker) vs kernel rr/wrr`,
  );
  console.log(
    `# ${ROUNDS} rounds x (${WARM} s warm-up + ${DURATION} s sampled every ${SAMPLE_MS} ms) per mode, ${RATE} new conn/s (Poisson), exponential holding per server; load before ${load0}, after ${LcLiveLab.load()}`,
  );
  console.log(out.join('\n'));
}

if (process.argv[1]?.endsWith('lc-live.js')) await main();
