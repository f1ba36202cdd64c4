/** The supervisor's options (cli/daemon-options.ts maps the command line onto them). */
import { DEFAULT_SOCKET } from '../control/protocol.js';

export { DEFAULT_SOCKET };

/** the include file the config API writes, beside the main file unless --managed-config */
export const MANAGED_FILE_NAME = 'keepvs-managed.conf';

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
  /** named tokens (`--api-token NAME:TOKEN`) for the audit trail */
  readonly apiTokens: readonly { readonly name: string; readonly token: string }[];
  /** the include file the config API writes */
  readonly managedConfig: string;
  /** the other director's API for the dashboard */
  readonly peer?: { readonly url: string; readonly token?: string };
  /** proxy worker processes, forked by the supervisor (at least 1) */
  readonly dataplaneWorkers: number;
  /** the data plane --dataplane resolved to (default proxy) */
  readonly dataplane?: 'nft' | 'proxy';
  /** why, for the start-up log */
  readonly dataplaneReason?: string;
  /** data-plane options from the command line (the configuration may add its own) */
  readonly proxyOptions?: DataplaneCliOptions;
}

export interface DataplaneCliOptions {
  readonly proxyProtocol?: 'v1' | 'v2';
  readonly expireNodestConn: boolean;
  readonly udpFlows?: number;
}
