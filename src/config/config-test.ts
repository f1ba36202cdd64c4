/** `keepvs -t` and `keepvs --dump-conf`. */
import { formatDiagnostic } from './diagnostics.js';
import type { LoadResult } from './model.js';

/** keepalived's -t exit code for a configuration that cannot run (keepalived(8)). */
export const EXIT_CONFIG_UNUSABLE = 3;

export interface Output {
  out(text: string): void;
  err(text: string): void;
}

export function reportConfigTest(result: LoadResult, io: Output): number {
  for (const d of result.diagnostics) io.err(formatDiagnostic(d));
  const errors = result.diagnostics.filter((d) => d.severity === 'error').length;
  const warnings = result.diagnostics.length - errors;
  if (!result.usable || !result.config) {
    io.err(`configuration is not usable: ${errors} error(s), ${warnings} warning(s)`);
    return EXIT_CONFIG_UNUSABLE;
  }
  const c = result.config;
  io.err(
    `configuration OK: ${c.vrrpInstances.length} vrrp_instance(s), ${c.virtualServers.length} virtual_server(s), ${warnings} warning(s)`,
  );
  return 0;
}

export function dumpConfig(result: LoadResult, io: Output): number {
  for (const d of result.diagnostics) io.err(formatDiagnostic(d));
  if (!result.config) return EXIT_CONFIG_UNUSABLE;
  io.out(JSON.stringify(result.config, null, 2));
  return result.usable ? 0 : EXIT_CONFIG_UNUSABLE;
}
