#!/usr/bin/env bash
# keepvs TUN benchmark, one lab, interleaved with the order rotated each round, medians and ratios:
#   direct  client -> the real server's front address (same bridge, no director)
#   routed  client -> the real server's back address, forwarded by lb1's IP stack (no rules)
#   tun     client -> VIP, encapsulated by the tc-BPF TUN plane on lb1 (the real server answers directly)
# Needs root, the lab (../shared/lab/lab.sh), nginx, wrk, clang-built BPF objects.
# Env: ROUNDS (3) DURATION (5 s) CONNS (32).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-5} CONNS=${CONNS:-32}
for b in nginx wrk ip; do command -v "$b" >/dev/null || { echo "missing $b" >&2; exit 2; }; done
[[ $(id -u) == 0 ]] || { echo "needs root" >&2; exit 2; }
npx tsc -p . >/dev/null
node scripts/build-bpf.mjs --strict
export LAB_PREFIX=kvb$$ LAB_DR=1 LAB_RS=1
LAB=../shared/lab/lab.sh
TMP=$(mktemp -d)
cleanup() {
  [[ -n ${DIR_PID:-} ]] && kill "$DIR_PID" 2>/dev/null || true
  bash "$LAB" down || true
  rm -rf "$TMP"
}
trap cleanup EXIT
bash "$LAB" up >/dev/null
x() { local h=$1; shift; ip netns exec "$LAB_PREFIX-$h" "$@"; }

cat >"$TMP/nginx.conf" <<EOF
worker_processes 1;
pid $TMP/nginx.pid;
error_log $TMP/nginx.err;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  server { listen 80; listen [::]:80; location / { return 200 "ok\n"; } }
}
EOF
x rs1 nginx -c "$TMP/nginx.conf"
x rs1 node bin/keepvs.js realserver start --vip 198.18.0.100 --tun --dev eth0 --mss 1440 --state "$TMP/rs.json" >/dev/null
# routed path: the client reaches the real server's back address through lb1
x client ip route add 198.18.1.0/24 via 198.18.0.1
x lb1 ip addr add 198.18.0.100/32 dev eth0
coproc DIR { x lb1 node dist/bench/tun-director.js eth0; }
DIR_PID=$DIR_PID
K='{"kind":"addr","protocol":"tcp","family":4,"address":"198.18.0.100","port":80}'
echo "{\"ops\":[{\"op\":\"add-service\",\"key\":$K,\"params\":{\"scheduler\":\"rr\",\"schedFlags\":[],\"ops\":false}},{\"op\":\"add-dest\",\"key\":$K,\"dest\":{\"address\":\"198.18.1.11\",\"port\":80},\"params\":{\"forward\":\"tunnel\",\"weight\":1,\"uThreshold\":0,\"lThreshold\":0}}]}" >&"${DIR[1]}"
read -r reply <&"${DIR[0]}"
[[ $reply == *'"ok":true'* ]] || { echo "director: $reply" >&2; exit 1; }

run() { # url extra-args... -> requests/s
  x client wrk -t1 -c"$CONNS" -d"${DURATION}s" "$@" | awk '/Requests\/sec/ {print $2}'
}
declare -A R
paths=(direct routed tun)
for ((r = 0; r < ROUNDS; r++)); do
  for ((k = 0; k < ${#paths[@]}; k++)); do
    p=${paths[$(((k + r) % ${#paths[@]}))]}
    case $p in direct) url=http://198.18.0.61/ ;; routed) url=http://198.18.1.11/ ;; tun) url=http://198.18.0.100/ ;; esac
    R[$p-ka]+="$(run "$url") "
    R[$p-close]+="$(run "$url" -H 'Connection: close') "
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
echo "# keepvs TUN benchmark, $(date -u +%FT%TZ), $(nproc) CPUs, kernel $(uname -r), $ROUNDS rounds x ${DURATION}s, wrk -t1 -c$CONNS"
printf '%-26s %10s %10s %10s %12s %12s\n' 'req/s (median)' direct routed tun tun/direct tun/routed
for m in ka close; do
  d=$(echo "${R[direct-$m]}" | median)
  o=$(echo "${R[routed-$m]}" | median)
  t=$(echo "${R[tun-$m]}" | median)
  printf '%-26s %10.0f %10.0f %10.0f %12.2f %12.2f\n' "$([[ $m == ka ]] && echo keep-alive || echo 'Connection: close')" "$d" "$o" "$t" \
    "$(echo "$t / $d" | bc -l)" "$(echo "$t / $o" | bc -l)"
done
echo '{"stop":true}' >&"${DIR[1]}"
read -r _ <&"${DIR[0]}" || true
x rs1 node bin/keepvs.js realserver stop --state "$TMP/rs.json" >/dev/null
x rs1 sh -c "kill \$(cat $TMP/nginx.pid)" || true
