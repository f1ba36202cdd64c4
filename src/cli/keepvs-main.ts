// Entry point of the `keepvs` binary: parses argv and hands over to the matching command.
import { hostname } from 'node:os';
import { dumpConfig, reportConfigTest } from '../config/config-test.js';
import { loadConfig } from '../config/index.js';
import { nodeConfigFs } from '../os/config-fs.js';
import { VERSION } from '../version.js';
import { parseKeepvsArgs, USAGE } from './keepvs-args.js';

const io = { out: (t: string) => process.stdout.write(`${t}\n`), err: (t: string) => process.stderr.write(`${t}\n`) };

async function main(): Promise<number> {
  const parsed = parseKeepvsArgs(process.argv.slice(2));
  if (!parsed.ok) {
    io.err(`keepvs: ${parsed.error}\nTry 'keepvs --help' for more information.`);
    return 2;
  }
  const o = parsed.options;
  const configId = o.configId ?? hostname().split('.')[0];
  const load = () =>
    loadConfig(o.configFile, { fs: nodeConfigFs, configId, env: process.env as Record<string, string> });
  switch (o.command) {
    case 'help':
      io.out(USAGE);
      return 0;
    case 'version':
      io.out(`keepvs ${VERSION}`);
      return 0;
    case 'config-test':
      return reportConfigTest(load(), io);
    case 'dump-conf':
      return dumpConfig(load(), io);
    case 'demo': {
      const { runDemo } = await import('../daemon/demo.js');
      return runDemo(o);
    }
    case 'run': {
      const { runDaemon } = await import('../daemon/main.js');
      return runDaemon(o, load, configId);
    }
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    io.err(`keepvs: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    process.exitCode = 70;
  },
);
