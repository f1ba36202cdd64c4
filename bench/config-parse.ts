// Config parser benchmark: generates keepalived.conf files with N virtual servers (2 real servers
// with a checker each) and reports parse time and heap growth, side by side for N = 1,000 and
// 10,000 so the ratio shows whether cost is proportional to input.
// Baseline: when the keepalived binary is installed, `keepalived -t` parses the same 10,000-server
// file side by side (whole process: start-up, parse and its own checks), and the ratio is printed.
// Run: npx tsc -p . && node --expose-gc dist/bench/config-parse.js [N]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfigText } from '../src/config/index.js';

function generate(n: number): string {
  const parts: string[] = ['global_defs {\n  router_id bench\n}\n'];
  parts.push(
    'vrrp_instance VI_1 {\n  state MASTER\n  interface eth0\n  virtual_router_id 51\n  priority 150\n  virtual_ipaddress {\n    10.255.0.1/24\n  }\n}\n',
  );
  for (let i = 0; i < n; i++) {
    const a = `10.${(i >> 8) & 255}.${i & 255}`;
    parts.push(`virtual_server ${a}.1 80 {
  delay_loop 6
  lvs_sched wlc
  lvs_method NAT
  persistence_timeout 50
  protocol TCP
  real_server ${a}.10 8080 {
    weight 3
    TCP_CHECK {
      connect_timeout 3
      retry 2
      delay_before_retry 2
    }
  }
  real_server ${a}.11 8080 {
    weight 3
    HTTP_GET {
      url {
        path /health
        status_code 200
      }
      connect_timeout 3
    }
  }
}
`);
  }
  return parts.join('');
}

const gc = (globalThis as { gc?: () => void }).gc;

function measure(n: number, rounds: number): { n: number; bytes: number; ms: number; heapMb: number } {
  const text = generate(n);
  let best = Number.POSITIVE_INFINITY;
  let heap = 0;
  for (let r = 0; r < rounds; r++) {
    gc?.();
    const before = process.memoryUsage().heapUsed;
    const t0 = process.hrtime.bigint();
    const result = parseConfigText(text, '/bench/keepalived.conf');
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (!result.usable || result.config?.virtualServers.length !== n) throw new Error('bench config did not load');
    gc?.();
    // heap still held by the result (the frozen model with its source locations)
    const after = process.memoryUsage().heapUsed;
    best = Math.min(best, ms);
    heap = Math.max(heap, (after - before) / 2 ** 20);
    if (result.diagnostics.length > 0) throw new Error('unexpected diagnostics');
  }
  return { n, bytes: text.length, ms: best, heapMb: heap };
}

const big = Number(process.argv[2] ?? 10_000);
const small = Math.max(1, Math.round(big / 10));
if (!gc) console.log('(run with --expose-gc for steadier heap figures)');
const s = measure(small, 3);
const b = measure(big, 3);
for (const m of [s, b])
  console.log(
    `${m.n.toString().padStart(6)} virtual servers  ${(m.bytes / 2 ** 20).toFixed(2)} MiB text  ` +
      `parse ${m.ms.toFixed(0)} ms (best of 3)  retained heap ${m.heapMb.toFixed(1)} MiB`,
  );
console.log(
  `ratio ${b.n / s.n}x input -> ${(b.ms / s.ms).toFixed(1)}x time, ${(b.heapMb / Math.max(s.heapMb, 0.01)).toFixed(1)}x heap; ` +
    `target < 1000 ms for 10,000: ${b.n >= 10_000 ? (b.ms < 1000 ? 'met' : 'NOT met') : 'n/a'}`,
);

function keepalivedBaseline(n: number): number | undefined {
  const probe = spawnSync('keepalived', ['--version'], { encoding: 'utf8' });
  if (probe.error) return undefined;
  const dir = mkdtempSync(join(tmpdir(), 'keepvs-bench-'));
  try {
    const file = join(dir, 'keepalived.conf');
    writeFileSync(file, generate(n));
    let best = Number.POSITIVE_INFINITY;
    for (let r = 0; r < 3; r++) {
      const t0 = process.hrtime.bigint();
      spawnSync('keepalived', ['-t', '-n', '-l', '-f', file], { encoding: 'utf8', timeout: 120_000 });
      best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e6);
    }
    return best;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const baseline = keepalivedBaseline(big);
if (baseline === undefined) console.log('baseline: keepalived not installed; skipped');
else
  console.log(
    `baseline: keepalived -t on the same ${big} servers ${baseline.toFixed(0)} ms (whole process, best of 3); ` +
      `keepvs parse / keepalived -t = ${(b.ms / baseline).toFixed(2)}`,
  );
