/**
 * Probe scheduler: one loop per checker, driven by the injected Clock. Pure (no timers of its
 * own): staggered first runs, a hard deadline per probe (the probe's AbortSignal fires and the
 * result counts as a failure even if the checker never settles), and the next delay chosen by
 * the policy. A slow real server only delays its own loop.
 */
import type { Clock, TimerHandle } from '../util/clock.js';
import type { CheckResult } from './types.js';

export interface ProbeLoop {
  readonly key: string;
  /** ms before the first probe */
  readonly firstDelayMs: number;
  /** hard deadline of one probe */
  readonly timeoutMs: number;
  /** message for a probe that hit the deadline */
  readonly timeoutReason: string;
  probe(signal: AbortSignal): Promise<CheckResult>;
  /** gets the result, answers the delay (s) before the next probe; Infinity stops the loop */
  onResult(result: CheckResult): number;
}

interface LoopState {
  readonly loop: ProbeLoop;
  timer?: TimerHandle;
  abort?: AbortController;
  deadline?: TimerHandle;
  stopped: boolean;
  inFlight: boolean;
  probes: number;
}

export interface SchedulerStats {
  readonly loops: number;
  readonly inFlight: number;
  readonly probesDone: number;
  readonly timeouts: number;
}

export class CheckScheduler {
  private readonly loops = new Map<string, LoopState>();
  private probesDone = 0;
  private timeouts = 0;

  constructor(private readonly clock: Clock) {}

  add(loop: ProbeLoop): void {
    this.remove(loop.key);
    const st: LoopState = { loop, stopped: false, inFlight: false, probes: 0 };
    this.loops.set(loop.key, st);
    st.timer = this.clock.setTimer(loop.firstDelayMs, () => this.fire(st));
  }

  remove(key: string): void {
    const st = this.loops.get(key);
    if (!st) return;
    st.stopped = true;
    st.timer?.cancel();
    st.deadline?.cancel();
    st.abort?.abort();
    this.loops.delete(key);
  }

  stop(): void {
    for (const key of [...this.loops.keys()]) this.remove(key);
  }

  stats(): SchedulerStats {
    let inFlight = 0;
    for (const st of this.loops.values()) if (st.inFlight) inFlight++;
    return { loops: this.loops.size, inFlight, probesDone: this.probesDone, timeouts: this.timeouts };
  }

  private fire(st: LoopState): void {
    if (st.stopped) return;
    const abort = new AbortController();
    st.abort = abort;
    st.inFlight = true;
    let settled = false;
    const finish = (result: CheckResult, timedOut: boolean) => {
      if (settled || st.stopped) return;
      settled = true;
      st.inFlight = false;
      st.deadline?.cancel();
      if (timedOut) this.timeouts++;
      this.probesDone++;
      abort.abort(); // releases sockets/children of a checker that is still busy
      const next = st.loop.onResult(result);
      if (!Number.isFinite(next) || st.stopped) return;
      st.timer = this.clock.setTimer(Math.max(0, next * 1000), () => this.fire(st));
    };
    st.deadline = this.clock.setTimer(st.loop.timeoutMs, () =>
      finish({ up: false, reason: st.loop.timeoutReason }, true),
    );
    let p: Promise<CheckResult>;
    try {
      p = st.loop.probe(abort.signal);
    } catch (e) {
      p = Promise.resolve({ up: false, reason: `checker error: ${(e as Error).message}` });
    }
    p.then(
      (r) => finish(abort.signal.aborted && !settled ? { up: false, reason: st.loop.timeoutReason } : r, false),
      (e: unknown) => finish({ up: false, reason: `checker error: ${(e as Error)?.message ?? String(e)}` }, false),
    );
  }
}
