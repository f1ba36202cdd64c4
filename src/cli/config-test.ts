/**
 * `keepvs -t [-f FILE]` / `--config-test[=FILE]` and `--dump-conf`: load the whole configuration,
 * print every diagnostic as FILE:LINE:COL: severity: message [CODE], and return the exit status.
 * Exit status (keepalived's -t convention): 0 usable (warnings allowed), 3 errors: cannot run.
 */

import { formatDiagnostic } from '../config/format.js';
import type { ConfigFs } from '../config/fs-port.js';
import { loadConfig } from '../config/index.js';
import type { DataplaneCapabilities, LoadResult } from '../config/model.js';

export const CONFIG_TEST_OK = 0;
export const CONFIG_TEST_ERRORS = 3;

export interface ConfigTestIo {
  readonly fs: ConfigFs;
  readonly stdout: (line: string) => void;
  readonly stderr: (line: string) => void;
  readonly env?: Record<string, string>;
  /** default config id: first label of this host name */
  readonly hostname?: string;
  /** checks against the system after loading (script security, KV320/KV321) */
  readonly afterLoad?: (r: LoadResult) => LoadResult;
}

export interface ConfigTestOptions {
  /** absolute path */
  readonly useFile: string;
  readonly configId?: string;
  readonly dump?: boolean;
  /** the data plane keepvs would run: services it cannot forward are KV315 errors */
  readonly dataplane?: DataplaneCapabilities;
}

export function runConfigTest(opts: ConfigTestOptions, io: ConfigTestIo): number {
  const configId = opts.configId ?? io.hostname?.split('.')[0];
  const loaded = loadConfig(opts.useFile, {
    fs: io.fs,
    ...(configId !== undefined ? { configId } : {}),
    ...(io.env ? { env: io.env } : {}),
    ...(opts.dataplane ? { dataplane: opts.dataplane } : {}),
  });
  const result = io.afterLoad ? io.afterLoad(loaded) : loaded;
  for (const d of result.diagnostics) io.stderr(formatDiagnostic(d));
  const errors = result.diagnostics.filter((d) => d.severity === 'error').length;
  const warnings = result.diagnostics.length - errors;
  if (opts.dump && result.config) io.stdout(JSON.stringify(result.config, null, 2));
  io.stderr(
    `keepvs: ${opts.useFile}: ${errors} error${errors === 1 ? '' : 's'}, ${warnings} warning${warnings === 1 ? '' : 's'}; ` +
      (result.usable ? 'configuration is usable' : 'configuration cannot run'),
  );
  return result.usable ? CONFIG_TEST_OK : CONFIG_TEST_ERRORS;
}
