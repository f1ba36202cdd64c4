/**
 * Time as the pure core sees it. The core never calls Date.now or setTimeout:
 * it is given a Clock. `now()` is monotonic milliseconds (may be fractional);
 * `wallNow()` is epoch milliseconds for display only.
 */
export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  now(): number;
  wallNow(): number;
  setTimer(delayMs: number, fn: () => void): TimerHandle;
}

/** Real clock for the edges (daemon composition root). */
export class SystemClock implements Clock {
  now(): number {
    return performance.now();
  }
  wallNow(): number {
    return Date.now();
  }
  setTimer(delayMs: number, fn: () => void): TimerHandle {
    const t = setTimeout(fn, Math.max(0, delayMs));
    return { cancel: () => clearTimeout(t) };
  }
}

interface FakeTimer {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/** Deterministic clock for tests: time moves only when `advance` is called. */
export class FakeClock implements Clock {
  private t: number;
  private readonly wallBase: number;
  private seq = 0;
  private timers: FakeTimer[] = [];

  constructor(startMs = 0, wallBaseMs = 1_700_000_000_000) {
    this.t = startMs;
    this.wallBase = wallBaseMs;
  }

  now(): number {
    return this.t;
  }
  wallNow(): number {
    return this.wallBase + this.t;
  }
  setTimer(delayMs: number, fn: () => void): TimerHandle {
    const timer: FakeTimer = { at: this.t + Math.max(0, delayMs), seq: this.seq++, fn, cancelled: false };
    this.timers.push(timer);
    return {
      cancel: () => {
        timer.cancelled = true;
      },
    };
  }
  /** Number of timers still pending. */
  pending(): number {
    return this.timers.filter((x) => !x.cancelled).length;
  }
  /** Moves time forward, firing due timers in order (timers set while firing also fire if due). */
  advance(ms: number): void {
    const target = this.t + ms;
    for (;;) {
      this.timers = this.timers.filter((x) => !x.cancelled);
      let next: FakeTimer | undefined;
      for (const x of this.timers) {
        if (x.at <= target && (!next || x.at < next.at || (x.at === next.at && x.seq < next.seq))) next = x;
      }
      if (!next) break;
      this.t = Math.max(this.t, next.at);
      next.cancelled = true;
      next.fn();
    }
    this.t = target;
  }
}
