/**
 * Health convergence across active-active directors (docs/scale-out.md, "Health convergence"): the
 * ECMP lab of test/dataplane/ecmp-lab.ts (three keepvs DR directors, each checking the same three
 * real servers with TCP_CHECK, delay_loop 1 or DELAY_LOOP, connect_timeout 1). Each round stops rs3 (SIGKILL: its
 * port refuses at once), then starts it again, and reads from every director's status API the
 * moment it marked rs3 down (and up): the `since` of its health record, on the same clock as the stop.
 * The window is the spread between the first and the last director; while it lasts, the directors
 * that have not noticed yet still send rs3's share of new flows (1/M with M real servers) to it.
 * Usage (root, from the repository): node dist/bench/health-convergence.js [ROUNDS=5] [DELAY_LOOP=1]
 */
import { readFileSync } from 'node:fs';
import { EcmpLab } from '../test/dataplane/ecmp-lab.js';

const DEST = '198.18.1.13:80';
const DIRECTORS = [1, 2, 3];

/** When director `i` last changed its verdict on DEST, and what the verdict is. */
function verdict(lab: EcmpLab, i: number): { up: boolean; since: number } | undefined {
  return lab.checkVerdicts(i).find((r) => r.dest === DEST);
}

/** Each director's delay (ms from `t0`) to reach verdict `up` on DEST. */
async function seen(lab: EcmpLab, up: boolean, t0: number): Promise<number[]> {
  const at: (number | undefined)[] = [];
  await lab.until(
    `rs3 ${up ? 'up' : 'down'} on every director`,
    () => {
      for (const i of DIRECTORS) {
        if (at[i] !== undefined) continue;
        const v = verdict(lab, i);
        if (v && v.up === up && v.since >= t0) at[i] = v.since - t0;
      }
      return DIRECTORS.every((i) => at[i] !== undefined);
    },
    30000,
  );
  return DIRECTORS.map((i) => at[i] as number);
}

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return { min: s[0], median: s[Math.floor(s.length / 2)], max: s[s.length - 1] };
};

async function main(): Promise<void> {
  const rounds = Number(process.argv[2] ?? 5);
  const delayLoop = Number(process.argv[3] ?? 1);
  const lab = new EcmpLab(`kh${process.pid % 100000}`);
  const out: Record<string, unknown> = {
    date: new Date().toISOString(),
    loadBefore: readFileSync('/proc/loadavg', 'utf8').trim(),
    checks: `TCP_CHECK, delay_loop ${delayLoop}, connect_timeout 1, default retries`,
  };
  const down: number[][] = [];
  const up: number[][] = [];
  try {
    lab.up();
    for (const i of DIRECTORS)
      lab.startDirector(i, lab.directorConfig(i).replace('delay_loop 1', `delay_loop ${delayLoop}`));
    await lab.until('three paths at the router', () => lab.nexthops().length === 3, 90000);
    await lab.until('rs3 up everywhere', () => DIRECTORS.every((i) => verdict(lab, i)?.up === true), 30000);
    for (let r = 0; r < rounds; r++) {
      let t0 = Date.now();
      lab.stopRs(3);
      down.push(await seen(lab, false, t0));
      t0 = Date.now();
      lab.startRs(3);
      up.push(await seen(lab, true, t0));
      // a random phase against the directors' check timers for the next round
      await new Promise((res) => setTimeout(res, 700 + Math.random() * 1000));
    }
    const spread = (rows: number[][]) => rows.map((r) => Math.max(...r) - Math.min(...r));
    out.downMs = down;
    out.upMs = up;
    out.downDetect = stats(down.flat());
    out.downWindow = stats(spread(down));
    out.upDetect = stats(up.flat());
    out.upWindow = stats(spread(up));
    out.loadAfter = readFileSync('/proc/loadavg', 'utf8').trim();
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  } finally {
    lab.down();
  }
}

if (process.argv[1]?.endsWith('health-convergence.js')) await main();
