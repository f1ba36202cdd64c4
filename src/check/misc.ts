/**
 * MISC_CHECK (keepalived check_misc.c): run misc_path (argv, no shell) with misc_timeout; exit 0
 * is up, anything else down. With misc_dynamic: 0 up, 1 down, 2..255 up with weight code-2.
 */
import type { MiscCheck } from '../config/model.js';
import type { CheckIo, CheckResult, CheckTarget, HealthChecker } from './types.js';

export function createMiscCheck(config: MiscCheck, io: CheckIo): HealthChecker {
  return {
    type: 'MISC_CHECK',
    async run(_target: CheckTarget, signal: AbortSignal): Promise<CheckResult> {
      const spec = config.miscPath;
      const r = await io.runner.run(spec.argv, {
        timeoutMs: config.miscTimeout * 1000,
        signal,
        ...(spec.user ? { user: spec.user } : {}),
        ...(spec.group ? { group: spec.group } : {}),
      });
      if (r.spawnError) return { ok: false, reason: `Misc check ${spec.command} could not run (${r.spawnError})` };
      if (r.timedOut) return { ok: false, reason: `Misc check ${spec.command} timed out` };
      const code = r.exitCode ?? 255;
      if (config.miscDynamic && code >= 2)
        return { ok: true, weight: code - 2, reason: `Misc check ${spec.command} set weight ${code - 2}` };
      return code === 0
        ? { ok: true, reason: `Misc check ${spec.command} succeeded` }
        : { ok: false, reason: `Misc check ${spec.command} failed (exit ${r.exitCode ?? r.signal})` };
    },
  };
}
