#!/usr/bin/env bash
# The lc family live (bench/lc-live.ts): the kernel plane's control loop, the userspace scheduler
# and kernel rr on the same lab traffic. Builds, then runs as root. Env: ROUNDS DURATION WARM RATE
# SAMPLE_MS MODES PROXY_WORKERS SCHED WEIGHTS HOLD (see bench/lc-live.ts).
# Run it under `flock /work/notes/bench.lock bash bench/lc-live.sh` where benches share a machine.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $(id -u) == 0 ]] || { echo "lc-live.sh: needs root (network namespaces, nftables)" >&2; exit 2; }
command -v nft >/dev/null || { echo "missing nft" >&2; exit 2; }
npx tsc -p tsconfig.json
exec node dist/bench/lc-live.js
