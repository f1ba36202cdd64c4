/**
 * Keywords every health checker shares (keepalived check_api.c install_checker_common_keywords)
 * and the timing-resolution rule: checker value, else real_server, else virtual_server, else the
 * checker type's default (check_api.c queue_checker / dequeue_new_checker).
 */
import type { CheckerTiming, CheckerType, SourceLoc } from '../../model.js';
import type { Node } from '../../tree.js';
import {
  arg,
  boolArg,
  type Ctx,
  deprecated,
  intArg,
  ipWord,
  type KeywordEntry,
  noExtra,
  parsedOnly,
  portWord,
  stringArg,
  timerArg,
  value,
} from '../engine.js';

export type TimingDraft = Partial<Record<keyof CheckerTiming, number>>;

export interface CheckerDraft {
  type: CheckerType;
  loc: SourceLoc;
  timing: TimingDraft;
  alpha?: boolean;
  logAllFailures?: boolean;
  connectIp?: string;
  connectPort?: number;
  bindTo?: string;
  bindPort?: number;
  bindIf?: string;
  fwmark?: number;
  /** checker-specific fields, typed by each checker file */
  specific: Record<string, unknown>;
}

type E = KeywordEntry<CheckerDraft>;

const timing = (key: keyof CheckerTiming, integer: boolean): E =>
  value((n, d, c) => {
    const v = integer ? intArg(n, c, 0, 1e6) : timerArg(n, c, 0, 1e6);
    if (v !== undefined) d.timing[key] = v;
  });

/** Timing keywords: valid in checkers, real_server and virtual_server blocks. */
export function timingEntries<D extends { timing: TimingDraft }>(): (readonly [string, KeywordEntry<D>])[] {
  const t = (key: keyof CheckerTiming, integer: boolean) => timing(key, integer) as unknown as KeywordEntry<D>;
  return [
    ['connect_timeout', t('connectTimeout', false)],
    ['retry', t('retry', true)],
    ['delay_before_retry', t('delayBeforeRetry', false)],
    ['warmup', t('warmup', false)],
    ['delay_loop', t('delayLoop', false)],
  ];
}

/**
 * `nb_get_retry`: keepalived 2.x keeps it only in HTTP_GET/SSL_GET (deprecated for `retry`);
 * elsewhere keepalived reports it as an unknown keyword and ignores it, and so does keepvs.
 */
export const nbGetRetryEntry = (): E => deprecated(timing('retry', true), 'retry');

export const baseEntries = (): (readonly [string, E])[] => [
  ...timingEntries<CheckerDraft>(),
  ['alpha', value((n, d, c) => (d.alpha = boolArg(n, c) ?? d.alpha))],
  ['log_all_failures', value((n, d, c) => (d.logAllFailures = boolArg(n, c) ?? d.logAllFailures))],
];

export const connectionEntries = (): (readonly [string, E])[] => [
  ...baseEntries(),
  [
    'connect_ip',
    value((n, d, c) => {
      const w = arg(n, 0, c, 'an address');
      if (w) d.connectIp = ipWord(w, c, 'connect_ip')?.address ?? d.connectIp;
      noExtra(n, 1, c);
    }),
  ],
  [
    'connect_port',
    value((n, d, c) => {
      const w = arg(n, 0, c, 'a port');
      if (w) d.connectPort = portWord(w, c, 'connect_port') ?? d.connectPort;
      noExtra(n, 1, c);
    }),
  ],
  [
    'bindto',
    value((n, d, c) => {
      const w = arg(n, 0, c, 'an address');
      if (w) d.bindTo = ipWord(w, c, 'bindto')?.address ?? d.bindTo;
      noExtra(n, 1, c);
    }),
  ],
  [
    'bind_port',
    value((n, d, c) => {
      const w = arg(n, 0, c, 'a port');
      if (w) d.bindPort = portWord(w, c, 'bind_port') ?? d.bindPort;
      noExtra(n, 1, c);
    }),
  ],
  [
    'bind_if',
    parsedOnly(
      value((n, d, c) => (d.bindIf = stringArg(n, c, 'an interface') ?? d.bindIf)),
      'checks are not bound to an interface',
    ),
  ],
  [
    'fwmark',
    parsedOnly(
      value((n, d, c) => (d.fwmark = intArg(n, c, 0, 0xffffffff) ?? d.fwmark)),
      'check connections are not marked',
    ),
  ],
];

/** Default retry / delay_before_retry per checker type (check_*.c). undefined dbr = delay_loop. */
export const CHECKER_DEFAULTS: Record<CheckerType, { retry: number; delayBeforeRetry?: number }> = {
  TCP_CHECK: { retry: 1, delayBeforeRetry: 1 },
  HTTP_GET: { retry: 1, delayBeforeRetry: 3 },
  SSL_GET: { retry: 1, delayBeforeRetry: 3 },
  SMTP_CHECK: { retry: 1, delayBeforeRetry: 1 },
  DNS_CHECK: { retry: 3 },
  UDP_CHECK: { retry: 1, delayBeforeRetry: 1 },
  PING_CHECK: { retry: 1, delayBeforeRetry: 1 },
  MISC_CHECK: { retry: 0, delayBeforeRetry: 1 },
  FILE_CHECK: { retry: 0, delayBeforeRetry: 1 },
};

export const DEFAULT_CONNECT_TIMEOUT = 5;
export const DEFAULT_DELAY_LOOP = 60;

/** keepalived precedence: checker, then real_server, then virtual_server, then the type default. */
export function resolveTiming(type: CheckerType, levels: readonly TimingDraft[]): CheckerTiming {
  const pick = (k: keyof CheckerTiming): number | undefined => {
    for (const l of levels) if (l[k] !== undefined) return l[k];
    return undefined;
  };
  const delayLoop = pick('delayLoop') ?? DEFAULT_DELAY_LOOP;
  const defaults = CHECKER_DEFAULTS[type];
  return {
    connectTimeout: pick('connectTimeout') ?? DEFAULT_CONNECT_TIMEOUT,
    retry: pick('retry') ?? defaults.retry,
    delayBeforeRetry: pick('delayBeforeRetry') ?? defaults.delayBeforeRetry ?? delayLoop,
    warmup: pick('warmup') ?? delayLoop,
    delayLoop,
  };
}

export interface CheckerSpec {
  readonly table: ReadonlyMap<string, E>;
  /** validates the specific fields; returns them (merged into the model) or undefined to drop the checker */
  finish(node: Node, d: CheckerDraft, ctx: Ctx, delayLoop: number): Record<string, unknown> | undefined;
}
