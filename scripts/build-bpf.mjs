#!/usr/bin/env node
// Builds the tc-BPF objects (src/dataplane/bpf/*.bpf.c -> dist/bpf/*.bpf.o) with clang -target bpf
// and libbpf's headers (Debian: clang llvm libbpf-dev). Skips objects newer than their sources.
// Without clang it says so and exits 0 (the kernel TUN path then reports the missing object), unless
// --strict. Reproducible: no timestamps, source paths mapped to the project root.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, statSync } from 'node:fs';
import { arch } from 'node:os';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname.replace(/\/$/, '');
const srcDir = join(root, 'src', 'dataplane', 'bpf');
const outDir = join(root, 'dist', 'bpf');
const strict = process.argv.includes('--strict');
const force = process.argv.includes('--force');
const clang = process.env.CLANG ?? 'clang';

const multiarch = { x64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu' }[arch()];
const sources = readdirSync(srcDir).filter((f) => f.endsWith('.bpf.c'));
const headers = readdirSync(srcDir).filter((f) => f.endsWith('.h'));
const newestInput = Math.max(...[...sources, ...headers].map((f) => statSync(join(srcDir, f)).mtimeMs));

const probe = spawnSync(clang, ['--version'], { encoding: 'utf8' });
if (probe.error || probe.status !== 0) {
  const msg = `build-bpf: ${clang} not found: the TUN data plane objects are not built (Debian: apt-get install clang llvm libbpf-dev)`;
  console.error(msg);
  process.exit(strict ? 1 : 0);
}
mkdirSync(outDir, { recursive: true });
let built = 0;
for (const src of sources) {
  const out = join(outDir, src.replace(/\.c$/, '.o'));
  if (!force && existsSync(out) && statSync(out).mtimeMs >= newestInput) continue;
  const tmp = `${out}.tmp`;
  const args = [
    '-O2',
    '-g', // BTF: libbpf needs it for the map definitions
    '-target',
    'bpf',
    '-Wall',
    '-Werror',
    `-fdebug-prefix-map=${root}=.`,
    '-fno-ident',
    ...(multiarch && existsSync(`/usr/include/${multiarch}`) ? ['-I', `/usr/include/${multiarch}`] : []),
    '-c',
    join(srcDir, src),
    '-o',
    tmp,
  ];
  const r = spawnSync(clang, args, { encoding: 'utf8', cwd: root });
  if (r.status !== 0) {
    console.error(`build-bpf: ${src} failed:\n${r.stderr}`);
    process.exit(1);
  }
  renameSync(tmp, out);
  built++;
}
if (built) console.log(`build-bpf: built ${built} object(s) in dist/bpf`);
