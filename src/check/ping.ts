/**
 * PING_CHECK: one ICMP echo (IPv4 or IPv6). It runs the system `ping` (iputils) through the
 * process runner, which holds the privilege ICMP sockets need; keepalived opens its own socket.
 */
import net from 'node:net';
import type { PingCheck } from '../config/model.js';
import { type CheckIo, type CheckResult, type CheckTarget, fmtTarget, type HealthChecker } from './types.js';

export function createPingCheck(config: PingCheck, io: CheckIo): HealthChecker {
  return {
    type: 'PING_CHECK',
    async run(target: CheckTarget, signal: AbortSignal): Promise<CheckResult> {
      const address = config.connectIp ?? target.address;
      const wait = Math.max(1, Math.ceil(config.connectTimeout));
      const argv = ['ping', net.isIPv6(address) ? '-6' : '-4', '-n', '-q', '-c', '1', '-W', String(wait), address];
      const r = await io.runner.run(argv, { timeoutMs: (wait + 1) * 1000, signal });
      const where = fmtTarget(address, 0, 'icmp');
      if (r.spawnError) return { ok: false, reason: `ICMP check of ${where} cannot run ping (${r.spawnError})` };
      return r.exitCode === 0
        ? { ok: true, reason: `ICMP check of ${where} succeeded` }
        : { ok: false, reason: `ICMP check of ${where} failed` };
    },
  };
}
