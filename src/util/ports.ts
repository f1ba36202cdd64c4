/** Ports the pure core is given; implementations live in src/os/ (and fakes in tests). */

export interface RunOptions {
  /** run as this user / group (names or numeric ids); unset = current user */
  readonly user?: string;
  readonly group?: string;
  /** kill the child (SIGTERM, then SIGKILL after a grace period) after this many ms */
  readonly timeoutMs?: number;
  readonly env?: Readonly<Record<string, string>>;
  /** capture at most this many bytes of stdout (default 0: discard) */
  readonly captureBytes?: number;
  readonly signal?: AbortSignal;
}

export interface RunResult {
  /** null when killed by a signal */
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly timedOut: boolean;
  readonly stdout: string;
  /** set when the program could not be started at all (ENOENT, EACCES...) */
  readonly spawnError?: string;
}

/** Runs a program by argv, never through a shell. */
export interface ProcessRunner {
  run(argv: readonly string[], options?: RunOptions): Promise<RunResult>;
}
