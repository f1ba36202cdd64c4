#!/usr/bin/env bash
# The director-pair chaos suite (bench/chaos.ts) from a checkout, as root: builds, then runs every
# fault against every service with keepvs and with keepalived doing lb2's VRRP, and prints the table.
# Arguments pass through: bench/chaos.sh [FAULT,...|all] [SERVICE,...|all] [keepvs|keepalived|both]
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $(id -u) == 0 ]] || { echo "chaos.sh: needs root (network namespaces)" >&2; exit 1; }
npx tsc -p tsconfig.json
exec node dist/bench/chaos.js "$@"
