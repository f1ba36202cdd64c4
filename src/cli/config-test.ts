/**
 * `keepvs -t [-f FILE]` / `--config-test[=LOG_FILE]` and `--dump-conf`: load the whole configuration,
 * print every diagnostic as FILE:LINE:COL: severity: message [CODE], and return the exit status.
 *
 * Exit status as keepalived 2.2.7's -t (core/main.c config_test_exit, lib/parser.c keeps the
 * highest config_err_t): 0 nothing reported, 4 only problems that stop it from running (unreadable
 * file, missing interface, errors keepvs cannot repair), 5 any other reported problem (it runs the
 * repaired configuration). Notes (keepvs-only remarks keepalived makes silently, such as
 * `lb_algo`) never change it. `--lenient` gives keepvs's older convention: 0 usable, 3 cannot run.
 */

import { formatDiagnostic } from '../config/format.js';
import type { ConfigFs } from '../config/fs-port.js';
import { bgpSpeakerDiagnostics, interfaceDiagnostics } from '../config/host-checks.js';
import { loadConfig } from '../config/index.js';
import type { DataplaneCapabilities, Diagnostic, LoadResult } from '../config/model.js';

export const CONFIG_TEST_OK = 0;
/** keepalived's KEEPALIVED_CHK_EXIT_CONFIG */
export const CONFIG_TEST_CANNOT_RUN = 4;
/** keepalived's KEEPALIVED_CHK_EXIT_CONFIG_TEST */
export const CONFIG_TEST_PROBLEMS = 5;
/** keepalived's KEEPALIVED_CHK_EXIT_CONFIG_TEST_SECURITY (CONFIG_SECURITY_ERROR, the highest) */
export const CONFIG_TEST_SECURITY = 6;
/** --lenient: the configuration cannot run */
export const CONFIG_TEST_LENIENT_ERRORS = 3;

export interface ConfigTestIo {
  readonly fs: ConfigFs;
  readonly stdout: (line: string) => void;
  readonly stderr: (line: string) => void;
  readonly env?: Record<string, string>;
  /** default config id: first label of this host name */
  readonly hostname?: string;
  /** checks against the system after loading (script security, KV320/KV321) */
  readonly afterLoad?: (r: LoadResult) => LoadResult;
  /** the host's interfaces; absent: not checked */
  readonly interfaceExists?: (name: string) => boolean;
  /** why the BGP speaker (FRR bgpd) cannot run here, or undefined; absent: not checked */
  readonly bgpSpeakerUnavailable?: () => string | undefined;
}

export interface ConfigTestOptions {
  /** absolute path */
  readonly useFile: string;
  readonly configId?: string;
  readonly dump?: boolean;
  /** exit 0 whenever the configuration can run (keepvs before keepalived's convention) */
  readonly lenient?: boolean;
  /** do not check that the interfaces named exist here: a configuration for another machine */
  readonly noInterfaceCheck?: boolean;
  /** the data plane keepvs would run: services it cannot forward are KV315 errors */
  readonly dataplane?: DataplaneCapabilities;
}

/**
 * keepalived -t counts only what it reports as a configuration error: of its script checks, a
 * track script disabled ("Disabling track script ...", vrrp.c) and the SECURITY VIOLATION; a
 * notify, MISC_CHECK or quorum script it cannot access is only logged (notify.c log_message).
 * keepvs prints those (KV320) but, like keepalived, does not let them change the status.
 */
const logOnlyInKeepalived = (d: Diagnostic): boolean => d.code === 'KV320' && !d.message.includes('(vrrp script ');

/** The exit status for a set of diagnostics (see the module comment). */
export function configTestStatus(diagnostics: readonly Diagnostic[], lenient = false): number {
  const errors = diagnostics.filter((d) => d.severity === 'error').length;
  if (lenient) return errors ? CONFIG_TEST_LENIENT_ERRORS : CONFIG_TEST_OK;
  const reported = diagnostics.filter((d) => d.severity !== 'note' && !logOnlyInKeepalived(d)).length;
  if (reported === 0) return CONFIG_TEST_OK;
  if (diagnostics.some((d) => d.code === 'KV321')) return CONFIG_TEST_SECURITY;
  return errors === reported ? CONFIG_TEST_CANNOT_RUN : CONFIG_TEST_PROBLEMS;
}

const plural = (n: number, w: string) => `${n} ${w}${n === 1 ? '' : 's'}`;

export function runConfigTest(opts: ConfigTestOptions, io: ConfigTestIo): number {
  const configId = opts.configId ?? io.hostname?.split('.')[0];
  const loaded = loadConfig(opts.useFile, {
    fs: io.fs,
    ...(configId !== undefined ? { configId } : {}),
    ...(io.env ? { env: io.env } : {}),
    ...(opts.dataplane ? { dataplane: opts.dataplane } : {}),
  });
  const result = io.afterLoad ? io.afterLoad(loaded) : loaded;
  const diagnostics = [...result.diagnostics];
  const ifs =
    result.config && io.interfaceExists && !opts.noInterfaceCheck
      ? interfaceDiagnostics(result.config, io.interfaceExists)
      : [];
  diagnostics.push(...ifs);
  if (result.config && io.bgpSpeakerUnavailable && !opts.noInterfaceCheck)
    diagnostics.push(...bgpSpeakerDiagnostics(result.config, io.bgpSpeakerUnavailable));
  for (const d of diagnostics) io.stderr(formatDiagnostic(d));
  const count = (s: Diagnostic['severity']) => diagnostics.filter((d) => d.severity === s).length;
  const errors = count('error');
  const notes = count('note');
  if (opts.dump && result.config) io.stdout(JSON.stringify(result.config, null, 2));
  const status = configTestStatus(diagnostics, opts.lenient);
  const verdict = errors
    ? 'configuration cannot run'
    : status === CONFIG_TEST_OK
      ? 'configuration is usable'
      : 'configuration runs as repaired (see above)';
  io.stderr(
    `keepvs: ${opts.useFile}: ${plural(errors, 'error')}, ${plural(count('warning'), 'warning')}` +
      `${notes ? `, ${plural(notes, 'note')}` : ''}; ${verdict}`,
  );
  return status;
}
