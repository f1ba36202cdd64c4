#!/bin/sh
# keepvs data-plane benchmark: direct vs keepvs vs HAProxy (mode tcp) on loopback.
# Needs nginx-light, haproxy, wrk, iperf3. Env: ROUNDS DURATION WORKERS IDLE_CONNS VERBOSE.
# The open-file limit here is 20,000 and cannot be raised, so the idle-memory test uses 9,000
# connections by default (HAProxy needs two fds per connection in one process).
set -e
cd "$(dirname "$0")/.."
for b in nginx haproxy wrk iperf3; do command -v "$b" >/dev/null || { echo "missing $b" >&2; exit 2; }; done
npx tsc -p . >/dev/null
exec node dist/bench/dataplane.js
