import type { TrackProcess } from '../config/model.js';

/** One running process as /proc shows it. */
export interface ProcessInfo {
  readonly pid: number;
  /** /proc/PID/comm (the kernel truncates it to 15 characters) */
  readonly comm: string;
  /** /proc/PID/cmdline split at NULs */
  readonly cmdline: readonly string[];
}

/** Linux TASK_COMM_LEN - 1 */
const COMM_MAX = 15;

/**
 * Whether a process matches a vrrp_track_process (track_process.c): the name is compared with
 * comm (or, with full_command, with argv[0] as run); `params` must equal the arguments, or with
 * param_match initial be their start, or with partial appear anywhere in them.
 */
export function processMatches(spec: TrackProcess, p: ProcessInfo): boolean {
  if (spec.fullCommand) {
    if (p.cmdline[0] !== spec.process) return false;
  } else if (p.comm !== spec.process.slice(0, COMM_MAX)) {
    return false;
  }
  if (spec.params === undefined) return true;
  const args = p.cmdline.slice(1).join(' ');
  switch (spec.paramMatch) {
    case 'initial':
      return args.startsWith(spec.params);
    case 'partial':
      return args.includes(spec.params);
    default:
      return args === spec.params;
  }
}

/** The quorum rule: OK while quorum <= count <= quorum_max. */
export function processQuorumUp(spec: TrackProcess, count: number): boolean {
  return count >= spec.quorum && (spec.quorumMax === undefined || count <= spec.quorumMax);
}
