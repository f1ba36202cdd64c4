/** Checker registry: checker keyword -> grammar. Adding a checker = one file + one line here. */
import type { CheckerType } from '../../model.js';
import type { CheckerSpec } from './common.js';
import { DNS_CHECK } from './dns.js';
import { FILE_CHECK } from './file.js';
import { HTTP_GET, SSL_GET } from './http.js';
import { MISC_CHECK } from './misc.js';
import { PING_CHECK } from './ping.js';
import { SMTP_CHECK } from './smtp.js';
import { TCP_CHECK } from './tcp.js';
import { UDP_CHECK } from './udp.js';

export const CHECKERS: ReadonlyMap<CheckerType, CheckerSpec> = new Map<CheckerType, CheckerSpec>([
  ['TCP_CHECK', TCP_CHECK],
  ['HTTP_GET', HTTP_GET],
  ['SSL_GET', SSL_GET],
  ['MISC_CHECK', MISC_CHECK],
  ['SMTP_CHECK', SMTP_CHECK],
  ['DNS_CHECK', DNS_CHECK],
  ['UDP_CHECK', UDP_CHECK],
  ['PING_CHECK', PING_CHECK],
  ['FILE_CHECK', FILE_CHECK],
]);
