import { newGlobalDraft } from '../../src/config/grammar/global-defs.js';
import type { Config, GlobalDefs, ScriptSpec, SourceLoc, VrrpInstance } from '../../src/config/model.js';
import type { ProcessRunner, RunOptions, RunResult } from '../../src/util/ports.js';

export const loc: SourceLoc = { file: 'test.conf', line: 1, col: 1 };

export const script = (command: string, user?: string): ScriptSpec => ({
  command,
  argv: command.split(' '),
  user,
  loc,
});

/** keepalived's global defaults, from the config grammar itself (not a second copy). */
export function globalDefs(over: Partial<GlobalDefs> = {}): GlobalDefs {
  const { smtpAlertSet: _explicit, ...defaults } = newGlobalDraft();
  return { ...defaults, ...over };
}

export function instance(name: string, over: Partial<VrrpInstance> = {}): VrrpInstance {
  return {
    name,
    initialState: 'BACKUP',
    vrid: 51,
    priority: 100,
    advertInt: 1,
    version: 2,
    family: 4,
    nopreempt: false,
    preemptDelay: 0,
    downTimerAdverts: 3,
    virtualIpaddresses: [],
    virtualIpaddressesExcluded: [],
    virtualRoutes: [],
    virtualRules: [],
    unicastPeers: [],
    unicastFaultNoPeer: false,
    dontTrackPrimary: true,
    trackInterfaces: [],
    trackScripts: [],
    trackFiles: [],
    trackProcesses: [],
    notify: {},
    garpMasterDelay: 5,
    garpMasterRepeat: 5,
    garpMasterRefresh: 0,
    garpMasterRefreshRepeat: 1,
    accept: false,
    strictMode: false,
    skipCheckAdvAddr: false,
    lowerPrioNoAdvert: false,
    higherPrioSendAdvert: false,
    ownerIgnoreAdverts: false,
    checkUnicastSrc: false,
    v3ChecksumAsV2: false,
    promoteSecondaries: false,
    loc,
    ...over,
  };
}

export function config(over: Partial<Config> = {}): Config {
  return {
    files: ['test.conf'],
    globalDefs: globalDefs(),
    staticIpaddresses: [],
    staticRoutes: [],
    staticRules: [],
    vrrpScripts: [],
    trackFiles: [],
    trackProcesses: [],
    syncGroups: [],
    vrrpInstances: [],
    virtualServerGroups: [],
    virtualServers: [],
    ...over,
  };
}

/** Records calls; each call's result comes from `respond` (may stay pending until resolved by the test). */
export class FakeRunner implements ProcessRunner {
  readonly calls: { argv: readonly string[]; options: RunOptions }[] = [];
  constructor(private readonly respond: (argv: readonly string[]) => Promise<RunResult> | RunResult = () => exit(0)) {}
  run(argv: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    this.calls.push({ argv, options });
    return Promise.resolve(this.respond(argv));
  }
}

export const exit = (code: number): RunResult => ({ exitCode: code, signal: null, timedOut: false, stdout: '' });

/** lets pending promise callbacks run */
export const flush = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
};
