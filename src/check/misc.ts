/**
 * MISC_CHECK (keepalived check_misc.c): runs `misc_path` by argv (never a shell) as `user`,
 * killed with its process group after `misc_timeout`. Exit 0 = up, else down; with
 * `misc_dynamic`: 0 = up (weight unchanged, as keepalived's legacy case), 1 = down, 2..255 = up with weight (code - 2).
 */
import type { MiscCheck } from '../config/model.js';
import { formatTrio } from '../lb/ids.js';
import { identityText } from './identity.js';
import type { Checker, CheckPorts, CheckResult, CheckTarget } from './types.js';

export function createMiscCheck(cfg: MiscCheck, ports: CheckPorts): Checker {
  return {
    type: 'MISC_CHECK',
    async run(t: CheckTarget, signal: AbortSignal): Promise<CheckResult> {
      const where = formatTrio(t.address, t.vs.protocol.toLowerCase(), t.port);
      const cmd = cfg.miscPath.command;
      const r = await ports.runner.run(cfg.miscPath.argv, {
        user: cfg.miscPath.user,
        group: cfg.miscPath.group,
        timeoutMs: Math.max(1, cfg.miscTimeout * 1000),
        signal,
      });
      if (r.spawnError !== undefined)
        return { up: false, reason: `Misc check for [${cmd}] could not start: ${r.spawnError}` };
      if (r.timedOut) return { up: false, reason: `Misc check to ${where} for [${cmd}] timed out` };
      if (r.exitCode === null)
        return { up: false, reason: `Misc check to ${where} for [${cmd}] killed by signal ${r.signal}` };
      const code = r.exitCode;
      if (cfg.miscDynamic) {
        if (code === 0) return { up: true, reason: `Misc check to ${where} for [${cmd}] succeeded.` };
        if (code === 1) return { up: false, reason: `Misc check to ${where} for [${cmd}] failed.` };
        return {
          up: true,
          reason: `Misc check to ${where} for [${cmd}] success, weight ${code - 2}.`,
          weight: code - 2,
        };
      }
      return code === 0
        ? { up: true, reason: `Misc check to ${where} for [${cmd}] success.` }
        : { up: false, reason: `Misc check to ${where} for [${cmd}] failed with exit status ${code}.` };
    },
  };
}

/** check_misc.c compare_misc_check: misc_dynamic and the script (its argv and user); not misc_timeout. */
export function miscCheckIdentity(cfg: MiscCheck): string {
  return identityText([cfg.miscDynamic, cfg.miscPath.argv, cfg.miscPath.user, cfg.miscPath.group]);
}
