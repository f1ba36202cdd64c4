import type {
  Checker,
  Config,
  GlobalDefs,
  HttpCheck,
  RealServer,
  SourceLoc,
  TcpCheck,
  VirtualServer,
} from '../../src/config/model.js';

export const loc: SourceLoc = { file: 'test.conf', line: 1, col: 1 };

export const timing = { connectTimeout: 1, retry: 0, delayBeforeRetry: 1, warmup: 0, delayLoop: 1 };

export function tcpCheck(over: Partial<TcpCheck> = {}): TcpCheck {
  return { type: 'TCP_CHECK', loc, alpha: false, logAllFailures: false, ...timing, ...over };
}

export function httpCheck(over: Partial<HttpCheck> = {}): HttpCheck {
  return {
    type: 'HTTP_GET',
    loc,
    alpha: false,
    logAllFailures: false,
    ...timing,
    urls: [{ path: '/', statusCodes: [[200, 299]], regexNoMatch: false, loc }],
    httpProtocol: '1.0',
    enableSni: true,
    fastRecovery: false,
    ...over,
  };
}

export function realServer(port: number, checkers: Checker[], over: Partial<RealServer> = {}): RealServer {
  return {
    address: '127.0.0.1',
    family: 4,
    port,
    weight: 1,
    method: 'NAT',
    uthreshold: 0,
    lthreshold: 0,
    inhibitOnFailure: false,
    alpha: false,
    checkers,
    loc,
    ...over,
  };
}

export function virtualServer(realServers: RealServer[], over: Partial<VirtualServer> = {}): VirtualServer {
  return {
    key: { kind: 'address', address: '198.18.0.100', family: 4, port: 80 },
    protocol: 'TCP',
    scheduler: 'wlc',
    schedFlags: [],
    ops: false,
    method: 'NAT',
    delayLoop: 1,
    haSuspend: false,
    alpha: false,
    omega: false,
    quorum: 1,
    hysteresis: 0,
    inhibitOnFailure: false,
    sorryServerInhibit: false,
    realServers,
    loc,
    ...over,
  };
}

export function config(virtualServers: VirtualServer[], over: Partial<Config> = {}): Config {
  return {
    files: ['test.conf'],
    globalDefs: {} as GlobalDefs,
    staticIpaddresses: [],
    staticRoutes: [],
    staticRules: [],
    vrrpScripts: [],
    trackFiles: [],
    trackProcesses: [],
    syncGroups: [],
    vrrpInstances: [],
    virtualServerGroups: [],
    virtualServers,
    ...over,
  };
}
