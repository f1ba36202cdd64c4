// Entry point of the `keepvs` binary: parse argv, then dispatch. Running the daemon is added by
// the daemon engineer (see the 'run' / 'demo' cases).
import { closeSync, constants, openSync, readFileSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { OverlayConfigFs } from '../config/fs-port.js';
import { loadConfig } from '../config/index.js';
import type { LoadResult } from '../config/model.js';
import { secureScripts } from '../config/script-security.js';
import { MANAGED_FILE_NAME } from '../daemon/options.js';
import { chooseDataplane } from '../dataplane/select.js';
import { tunPlaneUnavailable } from '../dataplane/tun/kernel.js';
import { NodeConfigFs } from '../os/config-fs.js';
import { FrrBgp } from '../os/frr-bgp.js';
import { hostInterfaceExists } from '../os/interfaces.js';
import { probeKernelPlane } from '../os/kernel-probe.js';
import { systemScriptSecurityPort } from '../os/script-security-fs.js';
import { runConfigTest } from './config-test.js';
import { daemonOptions } from './daemon-options.js';
import { KEEPVS_HELP, parseKeepvsArgs } from './keepvs-args.js';

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    return pkg.version;
  } catch {
    return 'unknown';
  }
}

function main(argv: readonly string[]): number | Promise<number> {
  if (argv[0] === 'realserver') return import('./realserver-main.js').then((m) => m.realserverMain(argv.slice(1)));
  const parsed = parseKeepvsArgs(argv);
  if (!parsed.ok) {
    process.stderr.write(`${parsed.error.message}\n`);
    return parsed.error.exitCode;
  }
  const opts = parsed.value;
  const io = {
    fs: new NodeConfigFs(),
    stdout: (l: string) => process.stdout.write(`${l}\n`),
    stderr: (l: string) => process.stderr.write(`${l}\n`),
    env: process.env as Record<string, string>,
    hostname: hostname(),
    afterLoad: (r: LoadResult) => secureScripts(r, systemScriptSecurityPort(process.env)),
  };
  // DR, TUN and fwmark services need the kernel plane: -t checks them against the plane keepvs would run
  const choice = () =>
    chooseDataplane(opts.dataplane, () => {
      const p = probeKernelPlane();
      const tunUnavailable = p.usable ? tunPlaneUnavailable() : p.reason;
      return { ...p, tun: tunUnavailable === null, ...(tunUnavailable ? { tunReason: tunUnavailable } : {}) };
    });
  const configTest = (dump: boolean) => {
    let stderr: (l: string) => void = io.stderr;
    let logFd: number | undefined;
    if (opts.configTestLog) {
      // keepalived -t=LOG_FILE: O_WRONLY|O_APPEND|O_CREAT|O_NOFOLLOW, 0644, replaces stderr (core/main.c)
      try {
        logFd = openSync(
          opts.configTestLog,
          constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW,
          0o644,
        );
      } catch (e) {
        process.stderr.write(
          `Unable to open config-test log file ${opts.configTestLog} - ${(e as NodeJS.ErrnoException).code}\n`,
        );
        return 1;
      }
      const fd = logFd;
      stderr = (l: string) => void writeSync(fd, `${l}\n`);
    }
    try {
      const code = runConfigTest(
        {
          useFile: resolve(opts.useFile),
          dump,
          // --dump-conf prints the model: its status says only whether it can run
          lenient: opts.lenient || dump,
          noInterfaceCheck: opts.noInterfaceCheck || dump,
          dataplane: choice().capabilities,
          ...(opts.configId !== undefined ? { configId: opts.configId } : {}),
        },
        { ...io, stderr, interfaceExists: hostInterfaceExists, bgpSpeakerUnavailable: () => FrrBgp.unavailable() },
      );
      // the daemon options the dashboard depends on, so -t shows what the web UI will use
      const managed = opts.managedConfig
        ? resolve(opts.managedConfig)
        : join(dirname(resolve(opts.useFile)), MANAGED_FILE_NAME);
      stderr(`keepvs: config API writes ${managed}`);
      if (opts.peerApi)
        stderr(
          `keepvs: peer director API ${opts.peerApi} (${opts.peerToken ? 'with' : 'without'} a token for actions)`,
        );
      return code;
    } finally {
      if (logFd !== undefined) closeSync(logFd);
    }
  };
  switch (opts.command) {
    case 'help':
      process.stdout.write(KEEPVS_HELP);
      return 0;
    case 'version':
      process.stdout.write(`keepvs v${version()} (keepalived 2.2 configuration language)\n`);
      return 0;
    case 'config-test':
      return configTest(false);
    case 'dump-conf':
      return configTest(true);
    case 'demo':
      return import('./demo.js').then((m) => m.runDemo(opts));
    case 'force-reload':
      return import('./force-reload.js').then((m) => m.forceReload(opts));
    case 'run': {
      const plane = choice();
      if (plane.error) {
        process.stderr.write(`keepvs: ${plane.error}\n`);
        return 2;
      }
      const configFile = resolve(opts.useFile);
      const configId = opts.configId ?? hostname().split('.')[0];
      // script security is applied to what the supervisor validates and sends the workers; the
      // config API loads candidate texts of its managed file through the same loader
      const load = (overlay?: ReadonlyMap<string, string>) =>
        io.afterLoad(
          loadConfig(configFile, {
            fs: overlay ? new OverlayConfigFs(io.fs, overlay) : io.fs,
            configId,
            env: io.env,
            dataplane: plane.capabilities,
          }),
        );
      return import('../daemon/main.js').then((m) =>
        m.runDaemon(
          { ...daemonOptions(opts, configFile), dataplane: plane.plane, dataplaneReason: plane.reason },
          load,
        ),
      );
    }
  }
}

Promise.resolve(main(process.argv.slice(2))).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`keepvs: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exitCode = 70;
  },
);
