/** Checker registry: adding one is one file plus one line here. */
import type { Checker as CheckerConfig, Config } from '../config/model.js';
import { createDnsCheck } from './dns.js';
import { createFileCheck } from './file.js';
import { createHttpCheck } from './http.js';
import { createMiscCheck } from './misc.js';
import { createPingCheck } from './ping.js';
import { createSmtpCheck } from './smtp.js';
import { createTcpCheck } from './tcp.js';
import type { CheckIo, HealthChecker } from './types.js';
import { createUdpCheck } from './udp.js';

export function createChecker(config: CheckerConfig, io: CheckIo, model?: Config): HealthChecker {
  switch (config.type) {
    case 'TCP_CHECK':
      return createTcpCheck(config);
    case 'HTTP_GET':
    case 'SSL_GET':
      return createHttpCheck(config);
    case 'MISC_CHECK':
      return createMiscCheck(config, io);
    case 'SMTP_CHECK':
      return createSmtpCheck(config);
    case 'DNS_CHECK':
      return createDnsCheck(config);
    case 'UDP_CHECK':
      return createUdpCheck(config);
    case 'PING_CHECK':
      return createPingCheck(config, io);
    case 'FILE_CHECK':
      return createFileCheck(config, io, model);
  }
}
