/**
 * What makes a checker "the same checker" across a reload, so that it keeps its state
 * (ipwrapper.c migrate_checkers calls the checker's own compare function). Each checker file
 * exports its identity built from these parts; timing (delay_loop, retry, delay_before_retry,
 * warmup), alpha and log_all_failures are never part of it, as in keepalived.
 */
import type { TcpCheck } from '../config/model.js';

/** The options a connecting checker shares (check_api.c compare_conn_opts). */
type ConnOptions = Pick<
  TcpCheck,
  'connectIp' | 'connectPort' | 'bindTo' | 'bindPort' | 'bindIf' | 'fwmark' | 'connectTimeout'
>;

/** compare_conn_opts: destination, source address and port, bind_if, connect_timeout, fwmark. */
export function connectionIdentity(c: ConnOptions): unknown[] {
  return [c.connectIp, c.connectPort, c.bindTo, c.bindPort, c.bindIf, c.connectTimeout, c.fwmark];
}

/** One comparable text for identity parts (undefined kept apart from absent: JSON turns it into null). */
export function identityText(parts: unknown): string {
  return JSON.stringify(parts, (_k, v) => (v === undefined ? null : v));
}
