#!/usr/bin/env node
// npm's `prepare` and `prepack`: builds dist/ (TypeScript, then the tc-BPF objects).
// - npm ci / npm install in a clone: builds when dist/ is missing (the dev dependencies are there);
// - npm install -g from a clone (npm links the folder and runs this in it, without installing its
//   dependencies): installs them in the clone first, dev ones included, then builds;
// - npm pack: prepack builds afresh, and the tarball carries dist/, so an install from it (or
//   npm ci --omit=dev on an unpacked one) needs no dev dependency and runs no build.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const built = existsSync(join(root, 'dist', 'src', 'cli', 'keepvs-main.js'));
const packing = process.env.npm_lifecycle_event === 'prepack';
if (built && !packing) process.exit(0);

// typescript's package.json exports no bin/ path: find the package, then its bin/tsc
function findTsc() {
  try {
    const tsc = join(
      dirname(createRequire(join(root, 'package.json')).resolve('typescript/package.json')),
      'bin',
      'tsc',
    );
    return existsSync(tsc) ? tsc : undefined;
  } catch {
    return undefined;
  }
}

function run(cmd, args, env = process.env) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env });
  if (r.error) console.error(`keepvs: ${cmd}: ${r.error.message}`);
  if (r.status !== 0) process.exit(r.status ?? 1);
}

let tsc = findTsc();
const omitDev = (process.env.npm_config_omit ?? '').split(/[\s,]+/).includes('dev');
if (!tsc && !omitDev && process.env.npm_config_global === 'true' && process.env.npm_execpath) {
  // the global install's settings must not reach this install inside the clone
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !/^npm_config_(global|prefix|location|omit|include)$/i.test(k)),
  );
  console.error('keepvs: installing the dependencies in the clone to build it');
  run(
    process.execPath,
    [process.env.npm_execpath, 'install', '--include=dev', '--no-audit', '--no-fund', '--ignore-scripts'],
    env,
  );
  tsc = findTsc();
}
if (!tsc) {
  if (built) process.exit(0);
  console.error(
    'keepvs: dist/ is not built and TypeScript is not installed: install with the dev dependencies ' +
      '(npm ci), or install the tarball that `npm pack` makes (it carries dist/)',
  );
  process.exit(1);
}
run(process.execPath, [tsc, '-p', 'tsconfig.json']);
run(process.execPath, [join(root, 'scripts', 'build-bpf.mjs')]);
