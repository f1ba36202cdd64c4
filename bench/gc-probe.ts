/**
 * Benchmark only (never loaded by keepvs itself): preloaded into every keepvs process by
 * bench/faults.ts's soak with NODE_OPTIONS=--import=<this file> and KEEPVS_BENCH_GC_DIR. Each
 * process listens on `<dir>/<pid>.sock`; a connection gets, after two full GCs, that process's V8
 * heap in use and RSS as one JSON line. So the soak compares heaps after a forced GC, not single
 * samples taken wherever the collector happened to be.
 */
import { mkdirSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';

const dir = process.env.KEEPVS_BENCH_GC_DIR;
if (dir) {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const server = net.createServer((s) => {
    gc();
    gc();
    const heap = v8.getHeapStatistics();
    s.end(
      `${JSON.stringify({ pid: process.pid, heapUsed: heap.used_heap_size, heapTotal: heap.total_heap_size, rss: process.memoryUsage.rss() })}\n`,
    );
  });
  server.on('error', () => {});
  server.listen(join(dir, `${process.pid}.sock`));
  // never what keeps a process alive (keepvsadm runs, a stopping worker)
  server.unref();
}
