/** SMTP_CHECK: connect, read 220, HELO, expect 250, QUIT (check_smtp.c). */
import { stringArg, table, unsupported, value } from '../engine.js';
import { type CheckerSpec, connectionEntries } from './common.js';

/** keepalived's default HELO name for the SMTP checker. */
export const DEFAULT_SMTP_HELO = 'smtpchecker.keepalived.org';

export const SMTP_CHECK: CheckerSpec = {
  table: table(connectionEntries(), [
    ['helo_name', value((n, d, c) => (d.specific.heloName = stringArg(n, c, 'a host name') ?? d.specific.heloName))],
    ['host', unsupported('the deprecated host { } sub-block is not supported; use one SMTP_CHECK per host', 'block')],
  ]),
  finish: (_n, d) => ({ heloName: (d.specific.heloName as string | undefined) ?? DEFAULT_SMTP_HELO }),
};
