/**
 * Validation of table ops with IPVS's errors (ip_vs_ctl.c: do_ip_vs_set_ctl and the checks in
 * ip_vs_add_service / ip_vs_add_dest), before the table changes anything.
 */
import type { Family } from '../config/model.js';
import { canonicalAddress } from '../util/address.js';
import { err, ok, type Result } from '../util/result.js';
import { DEFAULT_SCHEDULER, SCHED_FLAGS } from './sched/index.js';
import type {
  DestParams,
  Endpoint,
  ForwardMethod,
  Protocol,
  ServiceKey,
  ServiceParams,
  TableOpError,
  TableOpErrorCode,
} from './types.js';

export const PROTOCOLS: readonly Protocol[] = ['tcp', 'udp', 'sctp'];
const FORWARD_METHODS: readonly ForwardMethod[] = ['masq', 'route', 'tunnel', 'local', 'fullnat'];
const PERSISTENCE_ENGINES: readonly string[] = ['sip'];

export const opError = (code: TableOpErrorCode, message: string): Result<never, TableOpError> => err({ code, message });

export function validateKey(key: ServiceKey): Result<ServiceKey, TableOpError> {
  if (key.family !== 4 && key.family !== 6) return opError('invalid', 'address family must be 4 or 6');
  if (key.kind === 'fwmark') {
    if (!Number.isInteger(key.fwmark) || key.fwmark < 1 || key.fwmark > 0xffffffff)
      return opError('invalid', `invalid fwmark ${key.fwmark}`);
    return ok(key);
  }
  if (!PROTOCOLS.includes(key.protocol)) return opError('invalid', `invalid protocol ${key.protocol}`);
  if (!Number.isInteger(key.port) || key.port < 0 || key.port > 65535)
    return opError('invalid', `invalid port ${key.port}`);
  const address = canonicalAddress(key.address, key.family);
  if (address === null) return opError('invalid', `invalid IPv${key.family} address ${key.address}`);
  return ok({ ...key, address });
}

/** ip_vs_ctl.c's checks of a service's parameters; `schedulers` is the table's registry. */
export function validateServiceParams(
  key: ServiceKey,
  p: ServiceParams,
  schedulers: Readonly<Record<string, unknown>>,
): Result<ServiceParams, TableOpError> {
  const scheduler = p.scheduler || DEFAULT_SCHEDULER;
  if (!Object.hasOwn(schedulers, scheduler))
    return opError('no-scheduler', `Scheduler or persistence engine not found: ${scheduler}`);
  for (const f of p.schedFlags) if (!SCHED_FLAGS.includes(f)) return opError('invalid', `invalid scheduler flag ${f}`);
  if (p.pe !== undefined && !PERSISTENCE_ENGINES.includes(p.pe))
    return opError('no-scheduler', `Scheduler or persistence engine not found: ${p.pe}`);
  if (p.persistentTimeout !== undefined && (!Number.isInteger(p.persistentTimeout) || p.persistentTimeout < 1))
    return opError('invalid', `invalid persistence timeout ${p.persistentTimeout}`);
  const maxPrefix = key.family === 4 ? 32 : 128;
  const minPrefix = key.family === 4 ? 0 : 1;
  if (
    p.persistentPrefixLen !== undefined &&
    (!Number.isInteger(p.persistentPrefixLen) || p.persistentPrefixLen < minPrefix || p.persistentPrefixLen > maxPrefix)
  )
    return opError('invalid', `invalid persistence netmask/prefix ${p.persistentPrefixLen}`);
  if (key.kind === 'addr' && key.port === 0 && p.persistentTimeout === undefined)
    return opError('invalid', 'Zero port specified for non-persistent service');
  if (p.ops && key.kind === 'addr' && key.protocol !== 'udp')
    return opError('invalid', 'one-packet scheduling is only for UDP services');
  return ok({ ...p, scheduler, schedFlags: [...p.schedFlags] });
}

export function validateDest(family: Family, dest: Endpoint, p: DestParams): Result<Endpoint, TableOpError> {
  if (!FORWARD_METHODS.includes(p.forward)) return opError('invalid', `invalid forwarding method ${p.forward}`);
  for (const [name, v] of [
    ['weight', p.weight],
    ['upper threshold', p.uThreshold],
    ['lower threshold', p.lThreshold],
  ] as const) {
    if (!Number.isInteger(v) || v < 0 || v > 65535) return opError('invalid', `invalid ${name} ${v} (0..65535)`);
  }
  if (p.lThreshold > p.uThreshold) return opError('invalid', 'lower threshold is above the upper threshold');
  if (!Number.isInteger(dest.port) || dest.port < 0 || dest.port > 65535)
    return opError('invalid', `invalid port ${dest.port}`);
  const address = canonicalAddress(dest.address, family);
  if (address === null) return opError('invalid', `invalid IPv${family} destination ${dest.address}`);
  return ok({ address, port: dest.port });
}
