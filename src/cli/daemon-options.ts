/** The command line (keepvs-args.ts) mapped onto the supervisor's options. */
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { DEFAULT_SOCKET } from '../control/protocol.js';
import { type DaemonOptions, MANAGED_FILE_NAME } from '../daemon/options.js';
import type { KeepvsOptions } from './keepvs-args.js';

export function daemonOptions(o: KeepvsOptions, configFile: string): DaemonOptions {
  return {
    configFile,
    vrrpOnly: o.vrrpOnly,
    checkOnly: o.checkOnly,
    logConsole: o.logConsole,
    logDetail: o.logDetail,
    logFacility: o.logFacility ?? 'daemon',
    ...(o.logFile ? { logFile: o.logFile } : {}),
    noSyslog: o.noSyslog,
    dontRespawn: o.dontRespawn,
    pidFile: o.pidFile,
    vrrpPidFile: o.vrrpPidFile,
    checkersPidFile: o.checkersPidFile,
    socket: o.socket ?? process.env.KEEPVS_SOCKET ?? DEFAULT_SOCKET,
    api: o.api,
    ...(o.apiToken ? { apiToken: o.apiToken } : {}),
    apiTokens: o.apiTokens,
    managedConfig: o.managedConfig ? resolve(o.managedConfig) : join(dirname(configFile), MANAGED_FILE_NAME),
    ...(o.peerApi ? { peer: { url: o.peerApi, ...(o.peerToken ? { token: o.peerToken } : {}) } } : {}),
    dataplaneWorkers: o.dataplaneWorkers ?? availableParallelism(),
    proxyOptions: {
      ...(o.proxyProtocol ? { proxyProtocol: o.proxyProtocol } : {}),
      expireNodestConn: o.expireNodestConn,
      ...(o.udpFlows ? { udpFlows: o.udpFlows } : {}),
    },
  };
}
