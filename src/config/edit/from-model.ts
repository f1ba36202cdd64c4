/**
 * Reads managed blocks back from the parsed configuration (the file stays the one source of
 * truth): the blocks whose `loc.file` is the managed file become specs again. A value equal to
 * what the resolver gives when it is absent (keepalived's defaults, the virtual server's
 * delay_loop and method) is left out, so a change's diff shows only that change.
 */
import { CHECKER_DEFAULTS, DEFAULT_CONNECT_TIMEOUT } from '../grammar/checkers/common.js';
import type { Checker, Config, RealServer, VirtualServer, VrrpInstance } from '../model.js';
import type { CheckerSpec, ManagedSpec, RealServerSpec, VirtualServerSpec, VrrpInstanceSpec } from './spec.js';

const EDITABLE_CHECKERS = new Set(['TCP_CHECK', 'HTTP_GET', 'SSL_GET', 'PING_CHECK', 'MISC_CHECK']);

/** keepvs renders no real_server-level timing, so an omitted value falls back to these */
function checkerSpec(c: Checker, vsDelayLoop: number): CheckerSpec | undefined {
  if (!EDITABLE_CHECKERS.has(c.type)) return undefined;
  const d = CHECKER_DEFAULTS[c.type];
  const timing = {
    ...(c.connectTimeout !== DEFAULT_CONNECT_TIMEOUT ? { connectTimeout: c.connectTimeout } : {}),
    ...(c.delayLoop !== vsDelayLoop ? { delayLoop: c.delayLoop } : {}),
    ...(c.retry !== d.retry ? { retry: c.retry } : {}),
    ...(c.delayBeforeRetry !== (d.delayBeforeRetry ?? c.delayLoop) ? { delayBeforeRetry: c.delayBeforeRetry } : {}),
  };
  switch (c.type) {
    case 'MISC_CHECK':
      return { type: c.type, ...timing, miscPath: c.miscPath.command };
    case 'HTTP_GET':
    case 'SSL_GET':
      return {
        type: c.type,
        ...timing,
        ...(c.connectIp ? { connectIp: c.connectIp } : {}),
        ...(c.connectPort !== undefined ? { connectPort: c.connectPort } : {}),
        urls: c.urls.map((u) => ({
          path: u.path,
          ...(u.digest ? { digest: u.digest } : {}),
          ...(u.statusCodes.length
            ? { statusCode: u.statusCodes.map(([lo, hi]) => (lo === hi ? `${lo}` : `${lo}-${hi}`)).join(' ') }
            : {}),
        })),
      };
    case 'TCP_CHECK':
    case 'PING_CHECK':
      return {
        type: c.type,
        ...timing,
        ...(c.connectIp ? { connectIp: c.connectIp } : {}),
        ...(c.connectPort !== undefined ? { connectPort: c.connectPort } : {}),
      };
    default:
      return undefined;
  }
}

export function realServerSpec(rs: RealServer, vs: Pick<VirtualServer, 'method' | 'delayLoop'>): RealServerSpec {
  return {
    address: rs.address,
    port: rs.port,
    weight: rs.weight,
    ...(rs.method !== vs.method ? { method: rs.method } : {}),
    ...(rs.uthreshold ? { uthreshold: rs.uthreshold } : {}),
    ...(rs.lthreshold ? { lthreshold: rs.lthreshold } : {}),
    ...(rs.inhibitOnFailure ? { inhibitOnFailure: true } : {}),
    checkers: rs.checkers.map((c) => checkerSpec(c, vs.delayLoop)).filter((c): c is CheckerSpec => c !== undefined),
  };
}

export function virtualServerSpec(vs: VirtualServer): VirtualServerSpec | undefined {
  const key =
    vs.key.kind === 'address'
      ? { address: vs.key.address, port: vs.key.port }
      : vs.key.kind === 'fwmark'
        ? { fwmark: vs.key.fwmark, family: vs.key.family }
        : undefined;
  if (!key) return undefined;
  return {
    ...key,
    protocol: vs.protocol,
    scheduler: vs.scheduler,
    ...(vs.schedFlags.length ? { schedFlags: vs.schedFlags as VirtualServerSpec['schedFlags'] } : {}),
    ...(vs.ops ? { ops: true } : {}),
    method: vs.method,
    ...(vs.persistenceTimeout !== undefined ? { persistenceTimeout: vs.persistenceTimeout } : {}),
    ...(vs.persistenceGranularity !== undefined ? { persistenceGranularity: vs.persistenceGranularity } : {}),
    delayLoop: vs.delayLoop,
    ...(vs.quorum !== 1 ? { quorum: vs.quorum } : {}),
    ...(vs.hysteresis !== 0 ? { hysteresis: vs.hysteresis } : {}),
    ...(vs.inhibitOnFailure ? { inhibitOnFailure: true } : {}),
    ...(vs.sorryServer ? { sorryServer: { address: vs.sorryServer.address, port: vs.sorryServer.port } } : {}),
    realServers: vs.realServers.map((rs) => realServerSpec(rs, vs)),
  };
}

export function vrrpInstanceSpec(v: VrrpInstance): VrrpInstanceSpec {
  return {
    name: v.name,
    state: v.initialState,
    ...(v.interface ? { interface: v.interface } : {}),
    vrid: v.vrid,
    priority: v.priority,
    advertInt: v.advertInt,
    version: v.version,
    ...(v.nopreempt ? { nopreempt: true } : {}),
    ...(v.preemptDelay ? { preemptDelay: v.preemptDelay } : {}),
    vips: v.virtualIpaddresses.map((a) => `${a.address}/${a.prefixLen}`),
    ...(v.unicastPeers.length ? { unicastPeers: v.unicastPeers.map((p) => p.address) } : {}),
    ...(v.authentication?.type === 'PASS' ? { authPass: v.authentication.pass } : {}),
  };
}

/** The blocks defined in `file`, as specs (virtual_server_group services are not editable here). */
export function managedSpecOf(config: Config, file: string): ManagedSpec {
  return {
    virtualServers: config.virtualServers
      .filter((vs) => vs.loc.file === file)
      .map(virtualServerSpec)
      .filter((s): s is VirtualServerSpec => s !== undefined),
    vrrpInstances: config.vrrpInstances.filter((v) => v.loc.file === file).map(vrrpInstanceSpec),
  };
}
