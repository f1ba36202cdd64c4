/**
 * The director-pair figures (test/dataplane/pair-lab.ts `figures`, used by bench/chaos.ts): time
 * without service counts the attempts a takeover leaves unanswered at their first try, not the
 * client's TCP retransmission timer; the earlier suite's figure is kept next to it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Attempt, type ClientResult, cappedAttempts, FIRST_TRY_MS, figures } from './pair-lab.js';

/**
 * A client starting an attempt every 20 ms from 0 to 3 s, marked at 1 s. The attempts started in
 * [lostFrom, lostTo) lose their first SYN: TCP resends it 1 s later and they connect then.
 */
function run(lostFrom: number, lostTo: number, failed: readonly number[] = []): ClientResult {
  const attempts: Attempt[] = [];
  for (let t = 0; t < 3000; t += 20) {
    const lost = t >= lostFrom && t < lostTo;
    const end = lost ? t + 1000 + 2 : t + 2;
    attempts.push({ start: t, connected: end - 1, end, ok: !failed.includes(t), err: '' });
  }
  return { long: [{ name: 'rs1', ok: true, dead: '', maxWait: 100 }], attempts, marks: [1000], everyMs: 20 };
}

test('time without service: the span of attempts not answered at the first try', () => {
  // a takeover leaving the attempts started between 1060 and 1380 ms without their first SYN answered
  const f = figures(run(1060, 1380));
  assert.equal(f.outageMs, 1380 - 1060);
  assert.equal(f.firstTryGapMs, 1380 - 1040);
  assert.equal(f.notFirstTry, 16);
  // answered at the second SYN: not failed, but not served at once either
  assert.equal(f.newFailed, 0);
  assert.equal(f.newTotal, 100);
  assert.ok(1002 >= FIRST_TRY_MS);
});

test('the gap between first-try answers counts from the last one before the mark', () => {
  // the fault right at the mark: the first attempts after it are already unanswered
  const f = figures(run(1000, 1320));
  assert.equal(f.outageMs, 320);
  assert.equal(f.firstTryGapMs, 1320 - 980);
});

test('the earlier figure: a client capped at 16 in flight waits for the retransmitted SYNs', () => {
  const r = run(1060, 1380);
  // the capped client starts the 16 lost attempts, then nothing until the first is answered at 2062
  const old = cappedAttempts(r.attempts).filter((a) => a.start >= 1000);
  assert.equal(old.filter((a) => a.start >= 1060 && a.start < 2062).length, 16);
  const f = figures(r);
  assert.equal(f.oldOutageMs, 2080 - 1060);
  assert.ok(f.oldOutageMs > 2 * f.outageMs);
});

test('failed attempts are counted and extend the span; nothing before the mark counts', () => {
  const f = figures(run(1060, 1200, [1200, 1220, 500]));
  assert.equal(f.newFailed, 2);
  assert.equal(f.outageMs, 1240 - 1060);
  assert.equal(f.notFirstTry, 7 + 2);
  // no fault at all: nothing without service
  const calm = figures(run(5000, 5000));
  assert.equal(calm.outageMs, 0);
  assert.equal(calm.oldOutageMs, 0);
  assert.equal(calm.firstTryGapMs, 20);
});
