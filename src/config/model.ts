/**
 * The resolved keepalived configuration: one typed, frozen object that the rest of keepvs consumes.
 *
 * Conventions (every module relies on them):
 * - Durations are in SECONDS (number, fractional allowed), as keepalived.conf writes them.
 * - Lists keep declaration order. Named objects carry `name`.
 * - Defaults are already filled in as keepalived fills them; checker timing fields are resolved
 *   with keepalived's precedence (checker value, else real_server value, else virtual_server
 *   value, else the checker's default), so consumers never re-derive them.
 * - `loc` points at the block's (or entry's) keyword in the source, for diagnostics and logs.
 * - Addresses are canonical text (ipaddr.js `toString()`), without prefix length.
 */

export interface SourceLoc {
  readonly file: string;
  readonly line: number;
  readonly col: number;
}

export type Family = 4 | 6;

/** A command line to run (notify scripts, vrrp_script, MISC_CHECK). Never run through a shell. */
export interface ScriptSpec {
  /** The command as written (after quote processing), for logs. */
  readonly command: string;
  /** argv split as keepalived splits it (unquoted spaces separate, quotes group). */
  readonly argv: readonly string[];
  /** Optional `user [group]` suffix, else global `script_user`, else unset (root). */
  readonly user?: string;
  readonly group?: string;
  readonly loc: SourceLoc;
}

export interface GlobalDefs {
  readonly routerId?: string;
  readonly notificationEmail: readonly string[];
  readonly notificationEmailFrom?: string;
  readonly smtpServer?: { readonly host: string; readonly port: number };
  readonly smtpHeloName?: string;
  /** seconds, default 30 */
  readonly smtpConnectTimeout: number;
  readonly smtpAlert: boolean;
  readonly smtpAlertVrrp?: boolean;
  readonly smtpAlertChecker?: boolean;
  readonly scriptUser?: { readonly user: string; readonly group?: string };
  readonly enableScriptSecurity: boolean;
  /** default 224.0.0.18 */
  readonly vrrpMcastGroup4: string;
  /** default ff02::12 */
  readonly vrrpMcastGroup6: string;
  /** default 2 (IPv6 instances always use 3) */
  readonly vrrpVersion: 2 | 3;
  readonly vrrpGarpMasterDelay: number;
  readonly vrrpGarpMasterRepeat: number;
  readonly vrrpGarpMasterRefresh: number;
  readonly vrrpGarpMasterRefreshRepeat: number;
  readonly vrrpGarpLowerPrioDelay?: number;
  readonly vrrpGarpLowerPrioRepeat?: number;
  readonly vrrpGarpInterval: number;
  readonly vrrpGnaInterval: number;
  readonly vrrpMinGarp: boolean;
  readonly vrrpLowerPrioNoAdvert: boolean;
  readonly vrrpHigherPrioSendAdvert: boolean;
  readonly vrrpStrict: boolean;
  readonly vrrpSkipCheckAdvAddr: boolean;
  readonly vrrpCheckUnicastSrc: boolean;
  readonly vrrpStartupDelay: number;
  readonly v3ChecksumAsV2: boolean;
  readonly notifyFifo?: { readonly path: string; readonly script?: ScriptSpec };
  readonly vrrpNotifyFifo?: { readonly path: string; readonly script?: ScriptSpec };
  readonly lvsNotifyFifo?: { readonly path: string; readonly script?: ScriptSpec };
  /** `lvs_timeouts` (seconds); unset fields keep the data plane's defaults (900/120/300). */
  readonly lvsTimeouts?: { readonly tcp?: number; readonly tcpfin?: number; readonly udp?: number };
  readonly lvsSyncDaemon?: {
    readonly interface: string;
    readonly instance?: string;
    readonly syncId?: number;
    readonly maxlen?: number;
    readonly port?: number;
    readonly ttl?: number;
    readonly group?: string;
    readonly loc?: SourceLoc;
  };
  readonly lvsFlush: boolean;
  readonly lvsFlushOnStop: boolean;
  /** keepvs keyword `expire_nodest_conn` (IPVS sysctl expire_nodest_conn): read at start */
  readonly expireNodestConn: boolean;
  readonly dynamicInterfaces: boolean;
  /** default eth0 */
  readonly defaultInterface: string;
  readonly startupScript?: ScriptSpec;
  readonly shutdownScript?: ScriptSpec;
  readonly maxAutoPriority?: number;
  /** `startup_script_timeout` / `shutdown_script_timeout` seconds (keepalived default 10) */
  readonly startupScriptTimeout?: number;
  readonly shutdownScriptTimeout?: number;
  readonly noEmailFaults?: boolean;
  readonly checkerLogAllFailures?: boolean;
}

/** `virtual_ipaddress`, `virtual_ipaddress_excluded` and `static_ipaddress` entries. */
export interface IpAddressEntry {
  readonly address: string;
  readonly family: Family;
  /** /32 or /128 when not written */
  readonly prefixLen: number;
  /** for virtual_ipaddress(_excluded): the instance's interface when not written (as keepalived) */
  readonly dev?: string;
  /** broadcast: an address, or '+' / '-' as `ip addr` takes them */
  readonly brd?: string;
  readonly scope?: 'global' | 'site' | 'link' | 'host' | 'nowhere';
  readonly label?: string;
  readonly peer?: string;
  readonly noTrack: boolean;
  /** words after the address that `ip addr add` also takes (home, -nodad, noprefixroute, ...) */
  readonly flags: readonly string[];
  readonly loc: SourceLoc;
}

/** `virtual_routes` / `static_routes` entries: kept as `ip route` arguments plus the parsed basics. */
export interface RouteEntry {
  readonly args: readonly string[];
  readonly family: Family;
  readonly destination?: string;
  readonly via?: string;
  readonly dev?: string;
  readonly table?: string;
  readonly loc: SourceLoc;
}

/** `virtual_rules` / `static_rules` entries: `ip rule` arguments. */
export interface RuleEntry {
  readonly args: readonly string[];
  readonly family: Family;
  readonly loc: SourceLoc;
}

export interface WeightedTrack {
  readonly name: string;
  /** undefined = take the tracked object's own weight */
  readonly weight?: number;
  readonly reverse: boolean;
  readonly loc: SourceLoc;
}

export interface VrrpScript {
  readonly name: string;
  readonly script: ScriptSpec;
  /** seconds, default 1 */
  readonly interval: number;
  /** seconds, default = interval */
  readonly timeout: number;
  /** -253..253, default 0 (0 = FAULT on failure) */
  readonly weight: number;
  readonly weightReverse: boolean;
  readonly rise: number;
  readonly fall: number;
  readonly initFail: boolean;
  readonly loc: SourceLoc;
}

export interface TrackFile {
  readonly name: string;
  readonly file: string;
  /** default 1 */
  readonly weight: number;
  readonly weightReverse: boolean;
  readonly initFile?: { readonly value: number; readonly overwrite: boolean };
  readonly loc: SourceLoc;
}

export interface TrackProcess {
  readonly name: string;
  readonly process: string;
  readonly params?: string;
  readonly paramMatch?: 'initial' | 'partial';
  readonly weight: number;
  readonly weightReverse: boolean;
  readonly quorum: number;
  readonly quorumMax?: number;
  readonly forkDelay: number;
  readonly terminateDelay: number;
  readonly fullCommand: boolean;
  readonly loc: SourceLoc;
}

export interface NotifyScripts {
  readonly master?: ScriptSpec;
  readonly backup?: ScriptSpec;
  readonly fault?: ScriptSpec;
  readonly stop?: ScriptSpec;
  readonly deleted?: ScriptSpec;
  /** generic `notify`: gets TYPE NAME STATE PRIORITY appended */
  readonly notify?: ScriptSpec;
  readonly masterRxLowerPri?: ScriptSpec;
}

export interface SyncGroup {
  readonly name: string;
  readonly group: readonly string[];
  readonly trackInterfaces: readonly WeightedTrack[];
  readonly trackScripts: readonly WeightedTrack[];
  readonly trackFiles: readonly WeightedTrack[];
  readonly trackProcesses: readonly WeightedTrack[];
  readonly notify: NotifyScripts;
  readonly smtpAlert?: boolean;
  readonly syncGroupTrackingWeight: boolean;
  readonly loc: SourceLoc;
}

export interface UnicastPeer {
  readonly address: string;
  readonly family: Family;
  readonly minTtl?: number;
  readonly maxTtl?: number;
}

export interface VrrpInstance {
  readonly name: string;
  /** `state`: the initial wish; the election decides */
  readonly initialState: 'MASTER' | 'BACKUP';
  /** may be absent with unicast; else `default_interface` is NOT assumed: diagnostics report it */
  readonly interface?: string;
  /** where `interface` is written (diagnostics) */
  readonly interfaceLoc?: SourceLoc;
  readonly vrid: number;
  /** 1..255, default 100; 255 = address owner */
  readonly priority: number;
  /** seconds, default 1; v3 allows centisecond resolution */
  readonly advertInt: number;
  readonly version: 2 | 3;
  /** derived from the first VIP (or unicast peers); IPv6 forces version 3 */
  readonly family: Family;
  readonly nopreempt: boolean;
  /** seconds, 0..1000 */
  readonly preemptDelay: number;
  /** default 3 */
  readonly downTimerAdverts: number;
  readonly virtualIpaddresses: readonly IpAddressEntry[];
  readonly virtualIpaddressesExcluded: readonly IpAddressEntry[];
  readonly virtualRoutes: readonly RouteEntry[];
  readonly virtualRules: readonly RuleEntry[];
  /** `mcast_src_ip` / `unicast_src_ip` */
  readonly srcIp?: string;
  readonly mcastDstIp?: string;
  readonly unicastPeers: readonly UnicastPeer[];
  readonly unicastTtl?: number;
  readonly unicastFaultNoPeer: boolean;
  readonly authentication?: { readonly type: 'PASS' | 'AH'; readonly pass: string };
  readonly dontTrackPrimary: boolean;
  readonly trackInterfaces: readonly WeightedTrack[];
  readonly trackScripts: readonly WeightedTrack[];
  readonly trackFiles: readonly WeightedTrack[];
  readonly trackProcesses: readonly WeightedTrack[];
  readonly notify: NotifyScripts;
  readonly smtpAlert?: boolean;
  readonly garpMasterDelay: number;
  readonly garpMasterRepeat: number;
  readonly garpMasterRefresh: number;
  readonly garpMasterRefreshRepeat: number;
  readonly garpLowerPrioDelay?: number;
  readonly garpLowerPrioRepeat?: number;
  readonly accept: boolean;
  readonly strictMode: boolean;
  readonly skipCheckAdvAddr: boolean;
  readonly lowerPrioNoAdvert: boolean;
  readonly higherPrioSendAdvert: boolean;
  readonly ownerIgnoreAdverts: boolean;
  readonly checkUnicastSrc: boolean;
  readonly v3ChecksumAsV2: boolean;
  readonly promoteSecondaries: boolean;
  readonly lvsSyncDaemonInterface?: string;
  /** use_vmac: VIPs on a macvlan `name` with the virtual MAC; xmitBase: adverts leave from the parent */
  readonly vmac?: { readonly name: string; readonly xmitBase: boolean };
  readonly loc: SourceLoc;
}

export type VsgEntry =
  | {
      readonly kind: 'address';
      /** first address of a range `a.b.c.d-e` / CIDR, or the single address */
      readonly address: string;
      /** last address of a range, inclusive (same as address for one address) */
      readonly lastAddress: string;
      readonly family: Family;
      readonly port: number;
      readonly loc: SourceLoc;
    }
  | { readonly kind: 'fwmark'; readonly fwmark: number; readonly family: Family; readonly loc: SourceLoc };

export interface VirtualServerGroup {
  readonly name: string;
  readonly entries: readonly VsgEntry[];
  readonly loc: SourceLoc;
}

/** FNAT: full-NAT as the Alibaba LVS and DPVS keepalived forks write it (DNAT + SNAT to a local_address_group). */
export type LvsMethod = 'NAT' | 'DR' | 'TUN' | 'FNAT';

/** `local_address_group NAME { ADDR[-LAST] [IFNAME] ... }` (Alibaba LVS / DPVS keepalived): full-NAT source addresses. */
export interface LocalAddressGroup {
  readonly name: string;
  /** canonical addresses, ranges expanded */
  readonly addresses: readonly { readonly address: string; readonly family: Family; readonly ifname?: string }[];
  readonly loc: SourceLoc;
}
export type LvsProtocol = 'TCP' | 'UDP' | 'SCTP';

export type VirtualServerKey =
  | { readonly kind: 'address'; readonly address: string; readonly family: Family; readonly port: number }
  | { readonly kind: 'fwmark'; readonly fwmark: number; readonly family: Family }
  | { readonly kind: 'group'; readonly group: string };

export interface TunnelSpec {
  readonly type: 'ipip' | 'gue' | 'gre';
  readonly port?: number;
  readonly csum?: 'nocsum' | 'csum' | 'remcsum';
}

/** Timing fields shared by checkers, resolved (seconds). */
export interface CheckerTiming {
  readonly connectTimeout: number;
  readonly retry: number;
  readonly delayBeforeRetry: number;
  /** maximum random initial delay */
  readonly warmup: number;
  readonly delayLoop: number;
}

interface CheckerBase extends CheckerTiming {
  readonly loc: SourceLoc;
  /** start this checker's real server down until it passes */
  readonly alpha: boolean;
  readonly logAllFailures: boolean;
}

interface ConnectingChecker extends CheckerBase {
  readonly connectIp?: string;
  readonly connectPort?: number;
  readonly bindTo?: string;
  readonly bindPort?: number;
  readonly bindIf?: string;
  readonly fwmark?: number;
}

export interface TcpCheck extends ConnectingChecker {
  readonly type: 'TCP_CHECK';
}

export interface HttpUrl {
  readonly path: string;
  /** lowercase hex MD5 of the body */
  readonly digest?: string;
  /** inclusive ranges; default [[200, 299]] */
  readonly statusCodes: readonly (readonly [number, number])[];
  readonly virtualhost?: string;
  readonly regex?: string;
  readonly regexNoMatch: boolean;
  readonly loc: SourceLoc;
}

export interface HttpCheck extends ConnectingChecker {
  readonly type: 'HTTP_GET' | 'SSL_GET';
  readonly urls: readonly HttpUrl[];
  readonly httpProtocol: '1.0' | '1.0C' | '1.1';
  readonly virtualhost?: string;
  readonly enableSni: boolean;
  readonly fastRecovery: boolean;
}

export interface MiscCheck extends CheckerBase {
  readonly type: 'MISC_CHECK';
  readonly miscPath: ScriptSpec;
  /** seconds; default = delay_loop */
  readonly miscTimeout: number;
  readonly miscDynamic: boolean;
}

export interface SmtpCheck extends ConnectingChecker {
  readonly type: 'SMTP_CHECK';
  readonly heloName: string;
}

export interface DnsCheck extends ConnectingChecker {
  readonly type: 'DNS_CHECK';
  readonly queryType: 'A' | 'NS' | 'CNAME' | 'SOA' | 'MX' | 'TXT' | 'AAAA';
  readonly name: string;
}

export interface UdpCheck extends ConnectingChecker {
  readonly type: 'UDP_CHECK';
  /** hex */
  readonly payload?: string;
  /** hex with X nibbles as wildcards; undefined = no reply required */
  readonly requireReply?: string;
  readonly minReplyLength: number;
  readonly maxReplyLength: number;
}

export interface PingCheck extends ConnectingChecker {
  readonly type: 'PING_CHECK';
}

export interface FileCheck extends CheckerBase {
  readonly type: 'FILE_CHECK';
  readonly trackFile: string;
  readonly dynamic: boolean;
  readonly weight: number;
  readonly weightReverse: boolean;
}

export type Checker = TcpCheck | HttpCheck | MiscCheck | SmtpCheck | DnsCheck | UdpCheck | PingCheck | FileCheck;
export type CheckerType = Checker['type'];

export interface RealServer {
  readonly address: string;
  readonly family: Family;
  /** 0 = the virtual server's port (fwmark services) */
  readonly port: number;
  /** default: the virtual server's `weight` (1) */
  readonly weight: number;
  readonly method: LvsMethod;
  readonly tunnel?: TunnelSpec;
  readonly uthreshold: number;
  readonly lthreshold: number;
  readonly inhibitOnFailure: boolean;
  readonly alpha: boolean;
  readonly notifyUp?: ScriptSpec;
  readonly notifyDown?: ScriptSpec;
  readonly smtpAlert?: boolean;
  readonly virtualhost?: string;
  readonly checkers: readonly Checker[];
  readonly loc: SourceLoc;
}

export interface VirtualServer {
  readonly key: VirtualServerKey;
  /**
   * keepalived sets UDP when an address service has no `protocol` (validate_check_config, with a
   * KV211 warning); fwmark services ignore the protocol (TCP here, meaningless).
   */
  readonly protocol: LvsProtocol;
  /** default wlc */
  readonly scheduler: string;
  /** sh-port, sh-fallback, mh-port, mh-fallback, flag-1..3 */
  readonly schedFlags: readonly string[];
  readonly ops: boolean;
  /** default NAT (keepalived's default lvs_method) */
  readonly method: LvsMethod;
  readonly tunnel?: TunnelSpec;
  /** `laddr_group_name`: the local_address_group a FNAT service SNATs to */
  readonly laddrGroup?: string;
  /** seconds; undefined = not persistent; `persistence_timeout` without value = 360 */
  readonly persistenceTimeout?: number;
  /** netmask (IPv4 dotted) or prefix length (IPv6) as written; default 255.255.255.255 / 128 */
  readonly persistenceGranularity?: string;
  readonly persistenceEngine?: string;
  /** seconds, default 60 */
  readonly delayLoop: number;
  readonly haSuspend: boolean;
  readonly alpha: boolean;
  readonly omega: boolean;
  /** default 1 */
  readonly quorum: number;
  /** default 0 */
  readonly hysteresis: number;
  readonly quorumUp?: ScriptSpec;
  readonly quorumDown?: ScriptSpec;
  readonly inhibitOnFailure: boolean;
  readonly sorryServer?: {
    readonly address: string;
    readonly family: Family;
    readonly port: number;
    readonly method?: LvsMethod;
  };
  readonly sorryServerInhibit: boolean;
  readonly virtualhost?: string;
  readonly smtpAlert?: boolean;
  /**
   * keepvs keyword `proxy_protocol v1|v2|off`: the proxy data plane sends a PROXY header to the real
   * servers (off: none, whatever `keepvs --proxy-protocol` says); unset: the command line's default
   */
  readonly proxyProtocol?: 'v1' | 'v2' | 'off';
  /**
   * keepvs keyword `bgp_announce [min_healthy N]`: this service's address is announced to the
   * routers of the `bgp_announce` block while this director is healthy for it (docs/scale-out.md)
   */
  readonly bgpAnnounce?: { readonly minHealthy: number; readonly loc: SourceLoc };
  /**
   * keepvs keyword `flow_pinning [SECONDS]`: kernel DR keeps a flow table (4-tuple -> real server,
   * idle timeout SECONDS, default 900) so this director's established flows keep their real server
   * through weight changes (docs/kernel-plane.md, "Flow pinning")
   */
  readonly flowPinning?: { readonly timeoutS: number; readonly loc: SourceLoc };
  readonly realServers: readonly RealServer[];
  readonly loc: SourceLoc;
}

export interface BgpNeighbor {
  readonly address: string;
  readonly family: Family;
  readonly remoteAs: number;
  /** BFD for this session (FRR bfdd) */
  readonly bfd: boolean;
  readonly loc: SourceLoc;
}

/**
 * keepvs block `bgp_announce { ... }`: the BGP speaker (FRR bgpd, driven by keepvs) that announces
 * the VIPs of the virtual servers marked `bgp_announce` (docs/scale-out.md).
 */
export interface BgpAnnounce {
  readonly localAs: number;
  readonly routerId?: string;
  readonly neighbors: readonly BgpNeighbor[];
  /** BGP keepalive and hold time, seconds (FRR `timers bgp`); default 3 and 9 */
  readonly keepaliveS: number;
  readonly holdTimeS: number;
  /** BFD transmit/receive interval in ms and detect multiplier (FRR bfdd); default 300 x 3 */
  readonly bfdIntervalMs: number;
  readonly bfdMultiplier: number;
  /** healthy this long before a withdrawn VIP is announced again; doubles on flapping up to the max */
  readonly holdDownS: number;
  readonly holdDownMaxS: number;
  /** where the private FRR instance runs (its config, sockets, pid files, logs); default /run/keepvs/frr */
  readonly frrDir?: string;
  readonly loc: SourceLoc;
}

/**
 * What the data plane keepvs will run can forward, for the KV315 check: DR, TUN and fwmark services
 * need the kernel plane; TUN also needs its tc-BPF program. Absent from a load: nothing is checked.
 */
export interface DataplaneCapabilities {
  /** 'nft' or 'proxy', as --dataplane resolved; named in the diagnostic */
  readonly name: string;
  readonly kernel: boolean;
  readonly tun: boolean;
  /** why the TUN plane is not available (named in KV315) */
  readonly tunUnavailable?: string;
}

export interface Config {
  /** every file read, in include order */
  readonly files: readonly string[];
  readonly globalDefs: GlobalDefs;
  readonly staticIpaddresses: readonly IpAddressEntry[];
  readonly staticRoutes: readonly RouteEntry[];
  readonly staticRules: readonly RuleEntry[];
  readonly vrrpScripts: readonly VrrpScript[];
  readonly trackFiles: readonly TrackFile[];
  readonly trackProcesses: readonly TrackProcess[];
  readonly syncGroups: readonly SyncGroup[];
  readonly vrrpInstances: readonly VrrpInstance[];
  readonly virtualServerGroups: readonly VirtualServerGroup[];
  /** absent in hand-built configs: none */
  readonly localAddressGroups?: readonly LocalAddressGroup[];
  readonly virtualServers: readonly VirtualServer[];
  /** keepvs block `bgp_announce`; absent: no BGP */
  readonly bgpAnnounce?: BgpAnnounce;
}

/**
 * error: cannot run as written (or keepvs cannot repair it); warning: reported, as keepalived
 * reports it, and the repaired configuration runs; note: a keepvs remark on something keepalived
 * accepts silently (an old spelling): never changes `keepvs -t`'s exit status.
 */
export type Severity = 'error' | 'warning' | 'note';

export interface Diagnostic {
  /** stable code, documented in docs/errors.md, e.g. KV101 */
  readonly code: string;
  readonly severity: Severity;
  readonly file: string;
  readonly line: number;
  readonly col: number;
  readonly message: string;
}

export interface LoadResult {
  /** undefined only when the input could not be read or parsed at all */
  readonly config?: Config;
  readonly diagnostics: readonly Diagnostic[];
  /** true when no diagnostic has severity error */
  readonly usable: boolean;
  /** top-level `word { ... }` blocks with an unknown keyword (a typo'd block name), for the reload guard */
  readonly unknownTopLevelBlocks?: readonly { readonly keyword: string; readonly loc: SourceLoc }[];
}
