/**
 * How one tracked object changes an instance's priority (keepalived.conf(5), the weight/reverse
 * table in the BFD section; vrrp_track.c process_script_update_priority; track_file.c).
 */
export interface Contribution {
  /** added to the base priority */
  readonly delta: number;
  /** the instance must be in FAULT */
  readonly fault: boolean;
}

/** Lowest contribution that still is not FAULT: keepalived treats a total below -253 as FAULT. */
export const MIN_TRACK_DELTA = -253;
export const MAX_TRACK_DELTA = 253;

/**
 * Up/down trackers (script, interface, process):
 * weight 0: FAULT while down (with reverse: while up);
 * weight > 0: added while up; weight < 0: added (it is negative) while down;
 * reverse multiplies the weight by -1.
 */
export function binaryContribution(up: boolean, weight: number, reverse: boolean): Contribution {
  if (weight === 0) return { delta: 0, fault: reverse ? up : !up };
  const multiplier = reverse ? -1 : 1;
  if (up && weight > 0) return { delta: weight * multiplier, fault: false };
  if (!up && weight < 0) return { delta: weight * multiplier, fault: false };
  return { delta: 0, fault: false };
}

/**
 * track_file: weight 0 => a non-zero value is a failure (reverse: a zero value is);
 * otherwise value x weight (x -1 with reverse), and a result below -253 is FAULT.
 */
export function fileContribution(value: number, weight: number, reverse: boolean): Contribution {
  if (weight === 0) {
    const failed = reverse ? value === 0 : value !== 0;
    return { delta: 0, fault: failed };
  }
  const product = value * weight * (reverse ? -1 : 1);
  if (product < MIN_TRACK_DELTA) return { delta: 0, fault: true };
  return { delta: Math.min(product, MAX_TRACK_DELTA), fault: false };
}

/**
 * Parses a track file's content as keepalived does (strtol with base 0: decimal, 0x hex, 0 octal;
 * leading blanks and sign allowed, trailing text ignored; no number at all = 0).
 * Returns undefined for a value outside the 32-bit range (keepalived ignores the update).
 */
export function parseTrackFileValue(text: string): number | undefined {
  const m = /^[ \t\n\v\f\r]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)/.exec(text);
  if (!m) return 0;
  const sign = m[1] === '-' ? -1 : 1;
  const digits = m[2];
  let magnitude: number;
  if (/^0[xX]/.test(digits)) magnitude = Number.parseInt(digits.slice(2), 16);
  else if (digits.length > 1 && digits.startsWith('0')) magnitude = Number.parseInt(digits.slice(1), 8);
  else magnitude = Number.parseInt(digits, 10);
  const value = sign * magnitude;
  if (value < -2147483648 || value > 2147483648) return undefined;
  return value;
}
