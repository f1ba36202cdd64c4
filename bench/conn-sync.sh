#!/usr/bin/env bash
# What connection sync costs (docs/conn-sync.md): keepvs kernel plane NAT (rr, one nginx real
# server) on lb1, a second keepvs on lb2 as the peer, measured with and without conntrackd sync
# (keepvsadm --start-daemon master on lb1 and backup on lb2, --stop-daemon between), the two
# modes interleaved with the order alternated each round; medians of wrk requests/s for new
# connections (Connection: close) and keep-alive, and the ratio sync / no sync.
# Needs root, the lab (../shared/lab/lab.sh), nginx, wrk, conntrackd, bc.
# Env: ROUNDS (4) DURATION (4 s) CONNS (32).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-4} DURATION=${DURATION:-4} CONNS=${CONNS:-32}
for b in nginx wrk ip nft bc /usr/sbin/conntrackd; do command -v "$b" >/dev/null || { echo "missing $b" >&2; exit 2; }; done
[[ $(id -u) == 0 ]] || { echo "needs root" >&2; exit 2; }
npx tsc -p . >/dev/null
export LAB_PREFIX=kvcs$$ LAB_RS=1
LAB=../shared/lab/lab.sh
TMP=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 1
  bash "$LAB" down >/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
bash "$LAB" up >/dev/null
x() { local h=$1; shift; ip netns exec "$LAB_PREFIX-$h" "$@"; }

printf '%s\n' 'worker_processes 1;' "pid $TMP/nginx.pid;" "error_log $TMP/nginx.err;" \
  'events { worker_connections 4096; }' \
  'http { access_log off; keepalive_requests 1000000;' \
  '  server { listen 80; location / { return 200 "ok\n"; } } }' >"$TMP/nginx.conf"
x rs1 nginx -c "$TMP/nginx.conf"
# lb1 forwards (VIP and the back gateway address); lb2 runs the same table, idle, as the sync peer
x lb1 ip addr add 198.18.0.100/32 dev eth0
x lb1 ip addr add 198.18.1.254/24 dev eth1
printf 'virtual_server 198.18.0.100 80 {\n  lvs_sched rr\n  lvs_method NAT\n  protocol TCP\n  real_server 198.18.1.11 80 { }\n}\n' >"$TMP/kv.conf"
for h in lb1 lb2; do
  mkdir -m 700 "$TMP/$h"
  x "$h" node bin/keepvs.js -n -l -f "$TMP/kv.conf" --dataplane nft --socket "$TMP/$h/kv.sock" \
    --api "127.0.0.1:$((19700 + ${#PIDS[@]}))" -p "$TMP/$h/kv.pid" -c "$TMP/$h/c.pid" -r "$TMP/$h/v.pid" >"$TMP/$h.log" 2>&1 &
  PIDS+=($!)
done
adm() { local h=$1; shift; KEEPVS_SOCKET="$TMP/$h/kv.sock" node bin/keepvsadm.js "$@"; }
for i in $(seq 1 60); do
  x client curl -sf -m 1 http://198.18.0.100:80/ >/dev/null && adm lb2 -Ln >/dev/null 2>&1 && break
  sleep 0.5
done
x client curl -sf -m 2 http://198.18.0.100:80/ >/dev/null || { echo "keepvs NAT not answering" >&2; cat "$TMP/lb1.log" >&2; exit 1; }

state=off
sync_on() {
  [[ $state == on ]] && return 0
  state=on
  adm lb2 --start-daemon backup --mcast-interface eth1 --syncid 1
  adm lb1 --start-daemon master --mcast-interface eth1 --syncid 1
  adm lb1 -L --daemon | grep -q 'master sync daemon' || { echo "sync did not start" >&2; cat "$TMP/lb1.log" >&2; exit 1; }
}
sync_off() {
  [[ $state == off ]] && return 0
  state=off
  adm lb1 --stop-daemon master
  adm lb2 --stop-daemon backup
}
run() { # extra wrk args -> requests/s (0 when the path fails)
  local v
  v=$(x client wrk -t1 -c"$CONNS" -d"${DURATION}s" "$@" http://198.18.0.100:80/ 2>/dev/null | awk '/Requests\/sec/ {print $2}')
  echo "${v:-0}"
}
declare -A R
for ((r = 0; r < ROUNDS; r++)); do
  order=(off on)
  ((r % 2)) && order=(on off)
  for m in "${order[@]}"; do
    if [[ $m == on ]]; then sync_on; else sync_off; fi
    R[$m-close]+="$(run -H 'Connection: close') "
    R[$m-ka]+="$(run) "
    # with sync: the peer holds the flows (its external cache), as its -Lnc shows them
    [[ $m == on ]] && synced=$(adm lb2 -Lnc | grep -c '198.18.0.100:80' || true)
  done
done
sync_off
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
ratio() { if [[ $(echo "$2 > 0" | bc) == 1 ]]; then echo "$1 / $2" | bc -l; else echo 0; fi; }
echo "# keepvs connection sync cost, $(date -u +%FT%TZ), $(nproc) CPUs, kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $ROUNDS rounds x ${DURATION}s per mode, interleaved; wrk -t1 -c$CONNS; NAT rr, one real server; conntrackd FTFW multicast on eth1, lb1 master, lb2 backup"
printf '%-24s %12s %12s %8s\n' '' 'no sync' 'sync' ratio
for k in close ka; do
  a=$(echo "${R[off-$k]}" | median)
  b=$(echo "${R[on-$k]}" | median)
  label='new connections/s'
  [[ $k == ka ]] && label='keep-alive requests/s'
  printf '%-24s %12.0f %12.0f %8.2f\n' "$label" "$a" "$b" "$(ratio "$b" "$a")"
done
echo "# each run: no sync [${R[off-close]}] / sync [${R[on-close]}] (close); peer's -Lnc entries at the end: $synced"
x rs1 sh -c "kill \$(cat $TMP/nginx.pid)" || true
