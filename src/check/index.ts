/**
 * Registry: checker type -> factory and identity. Adding a checker = one file (its factory and
 * its identity for reload) + one line here.
 */
import type { Checker as CheckerConfig, CheckerType, Config } from '../config/model.js';
import { createDnsCheck, dnsCheckIdentity } from './dns.js';
import { createFileCheck, fileCheckIdentity } from './file.js';
import { createHttpCheck, httpCheckIdentity } from './http.js';
import { createMiscCheck, miscCheckIdentity } from './misc.js';
import { createPingCheck, pingCheckIdentity } from './ping.js';
import { createSmtpCheck, smtpCheckIdentity } from './smtp.js';
import { createTcpCheck, tcpCheckIdentity } from './tcp.js';
import type { Checker, CheckPorts } from './types.js';
import { createUdpCheck, udpCheckIdentity } from './udp.js';

type Of<T extends CheckerType> = Extract<CheckerConfig, { type: T }>;

interface Entry {
  create(cfg: CheckerConfig, ports: CheckPorts, config: Config): Checker;
  /** equal texts = the same checker on reload (keeps its state) */
  identity(cfg: CheckerConfig): string;
}

/** One checker file's factory and identity, typed by its checker type. */
const entry = <T extends CheckerType>(
  create: (cfg: Of<T>, ports: CheckPorts, config: Config) => Checker,
  identity: (cfg: Of<T>) => string,
): Entry => ({ create: (c, p, cfg) => create(c as Of<T>, p, cfg), identity: (c) => identity(c as Of<T>) });

export const checkerRegistry: Readonly<Record<CheckerType, Entry>> = {
  TCP_CHECK: entry<'TCP_CHECK'>(createTcpCheck, tcpCheckIdentity),
  HTTP_GET: entry<'HTTP_GET'>(createHttpCheck, httpCheckIdentity),
  SSL_GET: entry<'SSL_GET'>(createHttpCheck, httpCheckIdentity),
  MISC_CHECK: entry<'MISC_CHECK'>(createMiscCheck, miscCheckIdentity),
  SMTP_CHECK: entry<'SMTP_CHECK'>(createSmtpCheck, smtpCheckIdentity),
  DNS_CHECK: entry<'DNS_CHECK'>(createDnsCheck, dnsCheckIdentity),
  UDP_CHECK: entry<'UDP_CHECK'>(createUdpCheck, udpCheckIdentity),
  PING_CHECK: entry<'PING_CHECK'>(createPingCheck, pingCheckIdentity),
  FILE_CHECK: entry<'FILE_CHECK'>(createFileCheck, fileCheckIdentity),
};

export function createChecker(cfg: CheckerConfig, ports: CheckPorts, config: Config): Checker {
  return checkerRegistry[cfg.type].create(cfg, ports, config);
}

/** Checker identity for reload (ipwrapper.c migrate_checkers): same type and the checker's own compare. */
export function sameChecker(a: CheckerConfig, b: CheckerConfig): boolean {
  return a.type === b.type && checkerRegistry[a.type].identity(a) === checkerRegistry[b.type].identity(b);
}

export type { Checker, CheckPorts, CheckResult, CheckTarget, Dialer, FileReader, HealthView } from './types.js';
