/**
 * The editable shape of the blocks keepvs manages (API, dashboard forms): virtual servers with
 * their real servers and checkers, and VRRP instances. Scalars may be numbers or single config
 * words: values are checked by the configuration parser, not here, so a bad value comes back as
 * the parser's diagnostic at its field.
 */

/** a number, or one configuration word (no blank, brace, quote or comment character) */
export type Scalar = number | string;

export const WORD_PATTERN = '^[^\\s{}#!"\']{1,255}$';

export interface CheckerSpec {
  readonly type: 'TCP_CHECK' | 'HTTP_GET' | 'SSL_GET' | 'PING_CHECK' | 'MISC_CHECK';
  readonly connectTimeout?: Scalar;
  readonly connectPort?: Scalar;
  readonly connectIp?: Scalar;
  readonly delayLoop?: Scalar;
  readonly retry?: Scalar;
  readonly delayBeforeRetry?: Scalar;
  /** HTTP_GET / SSL_GET */
  readonly urls?: readonly { readonly path: Scalar; readonly statusCode?: Scalar; readonly digest?: Scalar }[];
  /** MISC_CHECK: a script path (one word) */
  readonly miscPath?: Scalar;
}

export interface RealServerSpec {
  readonly address: Scalar;
  readonly port: Scalar;
  readonly weight?: Scalar;
  readonly method?: 'NAT' | 'DR' | 'TUN' | 'FNAT';
  readonly uthreshold?: Scalar;
  readonly lthreshold?: Scalar;
  readonly inhibitOnFailure?: boolean;
  readonly checkers?: readonly CheckerSpec[];
}

export interface VirtualServerSpec {
  /** address services: address + port; fwmark services: fwmark (+ family) */
  readonly address?: Scalar;
  readonly port?: Scalar;
  readonly fwmark?: Scalar;
  readonly family?: 4 | 6;
  readonly protocol?: 'TCP' | 'UDP' | 'SCTP';
  readonly scheduler?: Scalar;
  readonly schedFlags?: readonly (
    | 'flag-1'
    | 'flag-2'
    | 'flag-3'
    | 'sh-port'
    | 'sh-fallback'
    | 'mh-port'
    | 'mh-fallback'
  )[];
  readonly ops?: boolean;
  readonly method?: 'NAT' | 'DR' | 'TUN' | 'FNAT';
  readonly persistenceTimeout?: Scalar;
  readonly persistenceGranularity?: Scalar;
  readonly delayLoop?: Scalar;
  readonly quorum?: Scalar;
  readonly hysteresis?: Scalar;
  readonly inhibitOnFailure?: boolean;
  readonly sorryServer?: { readonly address: Scalar; readonly port?: Scalar };
  readonly realServers?: readonly RealServerSpec[];
}

export interface VrrpInstanceSpec {
  readonly name: Scalar;
  readonly state?: 'MASTER' | 'BACKUP';
  readonly interface?: Scalar;
  readonly vrid: Scalar;
  readonly priority?: Scalar;
  readonly advertInt?: Scalar;
  readonly version?: 2 | 3;
  readonly nopreempt?: boolean;
  readonly preemptDelay?: Scalar;
  /** `ADDRESS[/PREFIX]` (dev/label are set in the operator's file) */
  readonly vips?: readonly Scalar[];
  readonly unicastPeers?: readonly Scalar[];
  readonly authPass?: Scalar;
}

/** Everything keepvs manages, in file order. */
export interface ManagedSpec {
  readonly virtualServers: readonly VirtualServerSpec[];
  readonly vrrpInstances: readonly VrrpInstanceSpec[];
}

/** The id of a virtual server spec as the table and status API spell it (lb/desired virtualServerId). */
export function virtualServerSpecId(vs: VirtualServerSpec): string {
  const proto = (vs.protocol ?? 'TCP').toLowerCase();
  if (vs.fwmark !== undefined) return `fwm:${vs.fwmark}:${vs.family ?? 4}`;
  const a = String(vs.address ?? '');
  return `${proto}:${a.includes(':') ? `[${a}]` : a}:${vs.port ?? ''}`;
}

/** `address:port` (`[v6]:port`), as the status API spells real servers. */
export function realServerSpecId(rs: RealServerSpec): string {
  const a = String(rs.address);
  return `${a.includes(':') ? `[${a}]` : a}:${rs.port}`;
}
