#!/bin/sh
# keepvs data-plane benchmark: the keepvs daemon (keepvs -f keepalived.conf --dataplane=proxy, health
# checks on) beside HAProxy (mode tcp), nginx stream and nginx direct over three nginx real servers on
# loopback, with the bare proxy cluster (bench/keepvs-proxy.ts) as a second keepvs row.
# Needs nginx-light, libnginx-mod-stream (else the nginx stream column is left out), haproxy, wrk, iperf3.
# Env: ROUNDS DURATION WORKERS IDLE_CONNS CHECKS DELAY_LOOP PATHS VERBOSE (see bench/dataplane.ts).
# The open-file limit here is 20,000 and cannot be raised, so the idle-memory test uses 9,000
# connections by default (HAProxy needs two fds per connection in one process).
set -e
cd "$(dirname "$0")/.."
for b in nginx haproxy wrk iperf3; do command -v "$b" >/dev/null || { echo "missing $b" >&2; exit 2; }; done
npx tsc -p . >/dev/null
exec node dist/bench/dataplane.js
