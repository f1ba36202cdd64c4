// `keepvs realserver ...`: argument parsing, then runRealserver on the Linux system.
import { attachDecap, decapProgId, detachDecap } from '../dataplane/tun/decap.js';
import { LinuxRealserverSystem } from '../os/realserver-system.js';
import { parseRealserverArgs, REALSERVER_HELP, runRealserver } from './realserver.js';

export async function realserverMain(argv: readonly string[]): Promise<number> {
  if (argv.length === 0 || argv.includes('-h') || argv.includes('--help')) {
    process.stdout.write(REALSERVER_HELP);
    return argv.length === 0 ? 2 : 0;
  }
  const args = parseRealserverArgs(argv);
  if (typeof args === 'string') {
    process.stderr.write(`keepvs realserver: ${args}\n${REALSERVER_HELP}`);
    return 2;
  }
  if (process.getuid?.() !== 0) {
    process.stderr.write('keepvs realserver: needs root (it changes addresses, sysctls and tc filters)\n');
    return 2;
  }
  const sys = new LinuxRealserverSystem(args.statePath, { attachDecap, decapProgId, detachDecap });
  try {
    return await runRealserver(args, sys, (l) => process.stdout.write(`${l}\n`));
  } catch (e) {
    process.stderr.write(`keepvs realserver ${args.action}: ${(e as Error).message}\n`);
    return 1;
  }
}
