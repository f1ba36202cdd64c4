/**
 * FILE_CHECK (keepalived check_file.c + track_file.c applied to a real server). The file holds an
 * integer (strtol base 0: decimal, 0x hex, 0 octal; a missing or non-numeric file reads as 0; a
 * number outside int32 is ignored and the previous value kept).
 * - weight 0: non-zero means down (with `reverse`: zero means down).
 * - weight W: the real server's weight becomes configured + value*W (negated with `reverse`);
 *   only a product at INT_MIN (IPVS_WEIGHT_FAULT) means down. Negative results drain the
 *   server (weight clamps at 0).
 * keepalived watches the file with inotify; keepvs reads it every delay_loop.
 */
import type { Config, FileCheck } from '../config/model.js';
import { identityText } from './identity.js';
import type { Checker, CheckPorts, CheckResult, CheckTarget } from './types.js';

const INT_MIN = -(2 ** 31);
const INT_MAX = 2 ** 31 - 1;

/** strtol(buf, NULL, 0) on the leading number; undefined when out of the int32 range. */
export function parseTrackValue(text: string | undefined): number | undefined {
  if (text === undefined) return 0;
  const m = /^\s*([+-]?)(0x[0-9a-f]+|0[0-7]*|[1-9][0-9]*)/i.exec(text);
  if (!m) return 0;
  const digits = m[2];
  const magnitude = /^0x/i.test(digits)
    ? Number.parseInt(digits.slice(2), 16)
    : digits.length > 1 && digits.startsWith('0')
      ? Number.parseInt(digits, 8)
      : Number(digits);
  const v = m[1] === '-' ? -magnitude : magnitude;
  return v < INT_MIN || v > INT_MAX + 1 ? undefined : v;
}

export function createFileCheck(cfg: FileCheck, ports: CheckPorts, config: Config): Checker {
  const track = config.trackFiles.find((f) => f.name === cfg.trackFile);
  let last = 0;
  return {
    type: 'FILE_CHECK',
    async run(t: CheckTarget): Promise<CheckResult> {
      const path = track?.file ?? cfg.trackFile;
      const parsed = parseTrackValue(await ports.files.readText(path));
      const note = parsed === undefined ? ' (invalid number ignored)' : '';
      if (parsed !== undefined) last = parsed;
      const value = last;
      const sign = cfg.weightReverse ? -1 : 1;
      if (cfg.weight === 0) {
        const down = cfg.weightReverse ? value === 0 : value !== 0;
        return down
          ? { up: false, reason: `Tracked file ${path} = ${value}${note}: now FAULT state for ${t.address}.` }
          : { up: true, reason: `Tracked file ${path} = ${value}${note}: leaving FAULT state for ${t.address}.` };
      }
      const delta = Math.max(INT_MIN, Math.min(INT_MAX, value * cfg.weight * sign));
      if (delta <= INT_MIN)
        return { up: false, reason: `Tracked file ${path} = ${value}${note}: now FAULT state for ${t.address}.` };
      return {
        up: true,
        reason: `Tracked file ${path} = ${value}${note}: weight ${t.weight + delta} for ${t.address}.`,
        weight: t.weight + delta,
      };
    },
  };
}

/**
 * keepalived has no compare for FILE_CHECK (its state is read from the file at once); keepvs keeps
 * the state while the file and its weighting are unchanged, until the next read.
 */
export function fileCheckIdentity(cfg: FileCheck): string {
  return identityText([cfg.trackFile, cfg.dynamic, cfg.weight, cfg.weightReverse]);
}
