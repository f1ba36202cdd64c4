/** The supervisor's options, mapped from the command line (cli/keepvs-args.ts parses it). */
import { availableParallelism } from 'node:os';
import type { KeepvsOptions } from '../cli/keepvs-args.js';
import { DEFAULT_SOCKET } from '../control/protocol.js';

export { DEFAULT_SOCKET };

/** What the supervisor needs from the command line (keepvs-args.ts parses it). */
export interface DaemonOptions {
  readonly configFile: string;
  readonly vrrpOnly: boolean;
  readonly checkOnly: boolean;
  readonly logConsole: boolean;
  readonly logDetail: boolean;
  readonly logFacility: string;
  readonly logFile?: string;
  readonly noSyslog: boolean;
  readonly dontRespawn: boolean;
  readonly pidFile: string;
  readonly vrrpPidFile: string;
  readonly checkersPidFile: string;
  readonly socket: string;
  readonly api: { readonly host: string; readonly port: number } | null;
  readonly apiToken?: string;
  /** proxy worker processes (1: in the LVS worker itself) */
  readonly dataplaneWorkers: number;
}

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
    dataplaneWorkers: o.dataplaneWorkers ?? availableParallelism(),
  };
}
