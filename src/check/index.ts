/** Registry: checker type -> factory. Adding a checker = one file + one line here. */
import type { Checker as CheckerConfig, CheckerType, Config } from '../config/model.js';
import { createDnsCheck } from './dns.js';
import { createFileCheck } from './file.js';
import { createHttpCheck } from './http.js';
import { createMiscCheck } from './misc.js';
import { createPingCheck } from './ping.js';
import { createSmtpCheck } from './smtp.js';
import { createTcpCheck } from './tcp.js';
import type { Checker, CheckPorts } from './types.js';
import { createUdpCheck } from './udp.js';

type Factory = (cfg: CheckerConfig, ports: CheckPorts, config: Config) => Checker;

export const checkerRegistry: Readonly<Record<CheckerType, Factory>> = {
  TCP_CHECK: (c, p) => createTcpCheck(c as Extract<CheckerConfig, { type: 'TCP_CHECK' }>, p),
  HTTP_GET: (c, p) => createHttpCheck(c as Extract<CheckerConfig, { type: 'HTTP_GET' }>, p),
  SSL_GET: (c, p) => createHttpCheck(c as Extract<CheckerConfig, { type: 'SSL_GET' }>, p),
  MISC_CHECK: (c, p) => createMiscCheck(c as Extract<CheckerConfig, { type: 'MISC_CHECK' }>, p),
  SMTP_CHECK: (c, p) => createSmtpCheck(c as Extract<CheckerConfig, { type: 'SMTP_CHECK' }>, p),
  DNS_CHECK: (c, p) => createDnsCheck(c as Extract<CheckerConfig, { type: 'DNS_CHECK' }>, p),
  UDP_CHECK: (c, p) => createUdpCheck(c as Extract<CheckerConfig, { type: 'UDP_CHECK' }>, p),
  PING_CHECK: (c, p) => createPingCheck(c as Extract<CheckerConfig, { type: 'PING_CHECK' }>, p),
  FILE_CHECK: (c, p, cfg) => createFileCheck(c as Extract<CheckerConfig, { type: 'FILE_CHECK' }>, p, cfg),
};

export function createChecker(cfg: CheckerConfig, ports: CheckPorts, config: Config): Checker {
  return checkerRegistry[cfg.type](cfg, ports, config);
}

export type { Checker, CheckPorts, CheckResult, CheckTarget, Dialer, FileReader, HealthView } from './types.js';
