/** The checker contract: one small interface, many implementations, policy written once. */
import type { Checker as CheckerConfig } from '../config/model.js';
import type { ProcessRunner } from '../util/ports.js';

export interface CheckTarget {
  /** real server address and port (connect_ip/connect_port override them per checker) */
  readonly address: string;
  readonly port: number;
  /** configured weight, the base for misc_dynamic and FILE_CHECK */
  readonly weight: number;
}

export interface CheckResult {
  readonly ok: boolean;
  /** keepalived-style reason, e.g. "TCP connection to [10.0.0.1]:tcp:80 failed" */
  readonly reason: string;
  /** dynamic weight (misc_dynamic, FILE_CHECK) */
  readonly weight?: number;
  readonly durationMs?: number;
}

/** I/O the checkers are given (real implementations in src/os). */
export interface CheckIo {
  readonly runner: ProcessRunner;
  readonly readFile: (path: string) => Promise<string>;
}

export interface HealthChecker {
  readonly type: CheckerConfig['type'];
  run(target: CheckTarget, signal: AbortSignal): Promise<CheckResult>;
}

export type CheckerFactory = (config: CheckerConfig, io: CheckIo) => HealthChecker;

/** `[10.0.0.1]:tcp:80` as keepalived prints a check target. */
export function fmtTarget(address: string, port: number, proto = 'tcp'): string {
  return `[${address}]:${proto}:${port}`;
}
