/**
 * FILE_CHECK (keepalived track_file semantics applied to a real server): the file holds an
 * integer. With weight 0, non-zero means down. Otherwise value*weight (negated with `reverse`)
 * is added to the configured weight; a result <= -254 means down. An unreadable or
 * non-numeric file reads as 0, as keepalived's track_file does.
 */
import type { Config, FileCheck } from '../config/model.js';
import type { Checker, CheckPorts, CheckResult, CheckTarget } from './types.js';

const WEIGHT_FAULT = -254;

export function createFileCheck(cfg: FileCheck, ports: CheckPorts, config: Config): Checker {
  const track = config.trackFiles.find((f) => f.name === cfg.trackFile);
  return {
    type: 'FILE_CHECK',
    async run(t: CheckTarget): Promise<CheckResult> {
      const path = track?.file ?? cfg.trackFile;
      const text = await ports.files.readText(path);
      const m = text === undefined ? null : /^\s*(-?\d+)/.exec(text);
      const value = m ? Number(m[1]) : 0;
      if (cfg.weight === 0) {
        return value === 0
          ? { up: true, reason: `File check ${path} = 0, success.` }
          : { up: false, reason: `File check ${path} = ${value}, failed.` };
      }
      const delta = value * cfg.weight * (cfg.weightReverse ? -1 : 1);
      if (delta <= WEIGHT_FAULT) return { up: false, reason: `File check ${path} = ${value}, weight fault.` };
      return {
        up: true,
        reason: `File check ${path} = ${value}, weight ${t.weight + delta}.`,
        weight: t.weight + delta,
      };
    },
  };
}
