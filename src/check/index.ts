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

export const checkerRegistry: Readonly<Record<CheckerType, Entry>> = {
  TCP_CHECK: {
    create: (c, p) => createTcpCheck(c as Of<'TCP_CHECK'>, p),
    identity: (c) => tcpCheckIdentity(c as Of<'TCP_CHECK'>),
  },
  HTTP_GET: {
    create: (c, p) => createHttpCheck(c as Of<'HTTP_GET'>, p),
    identity: (c) => httpCheckIdentity(c as Of<'HTTP_GET'>),
  },
  SSL_GET: {
    create: (c, p) => createHttpCheck(c as Of<'SSL_GET'>, p),
    identity: (c) => httpCheckIdentity(c as Of<'SSL_GET'>),
  },
  MISC_CHECK: {
    create: (c, p) => createMiscCheck(c as Of<'MISC_CHECK'>, p),
    identity: (c) => miscCheckIdentity(c as Of<'MISC_CHECK'>),
  },
  SMTP_CHECK: {
    create: (c, p) => createSmtpCheck(c as Of<'SMTP_CHECK'>, p),
    identity: (c) => smtpCheckIdentity(c as Of<'SMTP_CHECK'>),
  },
  DNS_CHECK: {
    create: (c, p) => createDnsCheck(c as Of<'DNS_CHECK'>, p),
    identity: (c) => dnsCheckIdentity(c as Of<'DNS_CHECK'>),
  },
  UDP_CHECK: {
    create: (c, p) => createUdpCheck(c as Of<'UDP_CHECK'>, p),
    identity: (c) => udpCheckIdentity(c as Of<'UDP_CHECK'>),
  },
  PING_CHECK: {
    create: (c, p) => createPingCheck(c as Of<'PING_CHECK'>, p),
    identity: (c) => pingCheckIdentity(c as Of<'PING_CHECK'>),
  },
  FILE_CHECK: {
    create: (c, p, cfg) => createFileCheck(c as Of<'FILE_CHECK'>, p, cfg),
    identity: (c) => fileCheckIdentity(c as Of<'FILE_CHECK'>),
  },
};

export function createChecker(cfg: CheckerConfig, ports: CheckPorts, config: Config): Checker {
  return checkerRegistry[cfg.type].create(cfg, ports, config);
}

/** Checker identity for reload (ipwrapper.c migrate_checkers): same type and the checker's own compare. */
export function sameChecker(a: CheckerConfig, b: CheckerConfig): boolean {
  return a.type === b.type && checkerRegistry[a.type].identity(a) === checkerRegistry[b.type].identity(b);
}

export type { Checker, CheckPorts, CheckResult, CheckTarget, Dialer, FileReader, HealthView } from './types.js';
