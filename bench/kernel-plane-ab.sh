#!/usr/bin/env bash
# A/B of keepvs kernel-plane builds or rule variants against nftlb, interleaved in one run with the
# order rotated each round (FNAT and NAT only, one real server, each load balancer in its own lab):
# wrk requests/s and, as bench/kernel-plane.sh, the netfilter CPU per packet lb1 received (perf
# cpu-clock samples in wrk's and nginx's tasks) with a per-symbol table.
#   lab a:      keepvs from KDIR_A (default: this checkout)
#   lab nftlb:  nftlb dnat/snat
#   VARIANTS="n:@DIR x:FILE": lab n runs keepvs from DIR (another worktree, built); lab x runs this
#               checkout's keepvs, then `nft -f FILE` (and `bash FILE.sh` when present) in its lb1:
#               a rule experiment (e.g. a chain flushed) without a code change;
#               "e:%VAR=VAL,VAR2=VAL2": lab e runs this checkout's keepvs with that environment
# Besides req/s and netfilter ns/packet: keepvs's own CPU (utime+stime of every process in the lab's
# lb1 namespace) and the whole machine's busy CPU (/proc/stat), in us per request of the run.
# Env: ROUNDS (5) DURATION (3 s) CONNS (32) SCHED (rr) MODES ("fnat"; "fnat nat") NOCLOSE=1 (keep-alive only)
# LOGS=DIR (keepvs's logs copied there at the end)
# EXTRA_DR=1 (a DR service too: its netdev chain on eth0). Run under flock /work/notes/bench.lock.
# 2026-12-03: KDIR_A=<main worktree> VARIANTS="n:@<branch worktree>" MODES="fnat nat" ROUNDS=6
set -euo pipefail
cd "$(dirname "$0")/.."
for b in nginx wrk ip nft nftlb bc perf; do command -v "$b" >/dev/null || { echo "missing $b" >&2; exit 2; }; done
[[ $(id -u) == 0 ]] || { echo "needs root" >&2; exit 2; }
ROUNDS=${ROUNDS:-5} DURATION=${DURATION:-3} CONNS=${CONNS:-32}
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
export LAB_DR=1 LAB_RS=1
LAB=../shared/lab/lab.sh
TMP=$(mktemp -d)
PIDS=()
LABS=(kfa$$ kfb$$)
declare -A VFILE
for v in ${VARIANTS:-}; do n=${v%%:*}; VFILE[$n]=${v#*:}; LABS+=("kf$n$$"); done
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 1
  for l in "${LABS[@]}"; do LAB_PREFIX=$l bash "$LAB" down >/dev/null || true; done
  [[ -n ${LOGS:-} ]] && mkdir -p "$LOGS" && cp "$TMP"/*.log "$LOGS"/ 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
for l in "${LABS[@]}"; do LAB_PREFIX=$l bash "$LAB" up >/dev/null; done
printf '%s\n' 'worker_processes 1;' "pid PIDFILE;" "error_log /dev/null;" \
  'events { worker_connections 4096; }' \
  'http { access_log off; keepalive_requests 1000000;' \
  '  server { listen 80; listen 85; location / { return 200 "ok\n"; } } }' >"$TMP/nginx.tpl"
i=0
for l in "${LABS[@]}"; do
  y() { local h=$1; shift; ip netns exec "$l-$h" "$@"; }
  sed "s|PIDFILE|$TMP/nginx-$l.pid|" "$TMP/nginx.tpl" >"$TMP/nginx-$l.conf"
  y rs1 nginx -c "$TMP/nginx-$l.conf"
  vip=198.18.0.100; [[ $l == kfb$$ ]] && vip=198.18.0.102
  y rs1 node bin/keepvs.js realserver start --vip $vip ${TUNARGS:-} --state "$TMP/rs-$l.json" >/dev/null
  y rs1 ip rule add from 198.18.1.11 lookup 100
  y rs1 ip route add default via 198.18.1.254 dev eth0 table 100
  y lb1 ip addr add 198.18.1.254/24 dev eth1
  y lb1 ip addr add 198.18.1.250/24 dev eth1
  y client ip route add 198.18.1.11/32 via 198.18.0.1
  y lb1 ip addr add "$vip/32" dev eth0
done
vs() { printf 'virtual_server %s %s {\n  lvs_sched %s\n  lvs_method %s\n  protocol TCP\n%b  real_server %s %s { }\n}\n' "$1" "$2" "${SCHED:-rr}" "$3" "${6:-}" "$4" "$5"; }
{
  printf 'local_address_group L {\n  198.18.1.250\n}\n'
  vs 198.18.0.100 80 NAT 198.18.1.11 80
  vs 198.18.0.100 81 FNAT 198.18.1.11 80 '  laddr_group_name L\n'
  [[ -n ${EXTRA_DR:-} ]] && vs 198.18.0.100 82 DR 198.18.0.61 82
  true
} >"$TMP/kernel.conf"
for l in "${LABS[@]}"; do
  [[ $l == kfb$$ ]] && continue
  kd=${KDIR_A:-.} envs=()
  for n in "${!VFILE[@]}"; do [[ $l == kf$n$$ && ${VFILE[$n]} == @* ]] && kd=${VFILE[$n]#@}; done
  for n in "${!VFILE[@]}"; do [[ $l == kf$n$$ && ${VFILE[$n]} == %* ]] && IFS=, read -ra envs <<<"${VFILE[$n]#%}"; done
  ip netns exec "$l-lb1" env "${envs[@]}" node "$kd/bin/keepvs.js" -n -l -G -f "$TMP/kernel.conf" --socket "$TMP/$l.sock" --api "127.0.0.1:$((19400 + ${#PIDS[@]}))" \
    -p "$TMP/$l.pid" -c "$TMP/$l-c.pid" -r "$TMP/$l-v.pid" --dataplane nft >"$TMP/$l.log" 2>&1 &
  PIDS+=($!)
done
be='"backends":[{"name":"b1","ip-addr":"198.18.1.11","port":"80","state":"up"}]'
farm='"family":"ipv4","virtual-addr":"198.18.0.102","protocol":"tcp","scheduler":"rr","state":"up"'
printf '{"farms":[%s,%s]}\n' \
  "{\"name\":\"nat\",$farm,\"virtual-ports\":\"80\",\"mode\":\"dnat\",$be}" \
  "{\"name\":\"fnat\",$farm,\"virtual-ports\":\"81\",\"mode\":\"snat\",$be}" >"$TMP/nftlb.json"
ip netns exec kfb$$-lb1 nftlb -e -c "$TMP/nftlb.json" >/dev/null
for l in "${LABS[@]}"; do
  [[ $l == kfb$$ ]] && continue
  for i in $(seq 1 40); do ip netns exec "$l-client" curl -sf -m 1 http://198.18.0.100:81/ >/dev/null && break; sleep 0.5; done
done
sleep 2
for n in "${!VFILE[@]}"; do
  f=${VFILE[$n]}
  [[ $f == [@%]* ]] && continue
  [[ -s $f ]] && ip netns exec "kf$n$$-lb1" nft -f "$f"
  [[ -s $f.sh ]] && ip netns exec "kf$n$$-lb1" bash "$f.sh"
done
for l in "${LABS[@]}"; do
  ip netns exec "$l-client" curl -sf -m 2 http://198.18.0.10$([[ $l == kfb$$ ]] && echo 2 || echo 0):81/ >/dev/null || { echo "$l FNAT not answering" >&2; exit 1; }
done
[[ -n ${SHOW:-} ]] && for n in "${!VFILE[@]}"; do ip netns exec "kf$n$$-lb1" nft list table ip keepvs; done
lb1_rx() { ip netns exec "$1-lb1" cat /sys/class/net/eth0/statistics/rx_packets /sys/class/net/eth1/statistics/rx_packets | paste -sd+ | bc; }
nf_cost() {
  perf report -i "$1" --comm wrk,nginx --no-children --stdio --sort sym -g none 2>/dev/null | awk -v pk="$2" -v out="$3" '
    /Event count/ { ev = $NF }
    /^ +[0-9.]+%/ { p = $1; sub("%", "", p); s = $3
      if (s ~ /^(nft_|__nft_|nf_|__nf_|ipv4_conntrack|nf_conntrack)/ && s !~ /^(nf_hook_slow|nf_tables_|nft_set_dump|nft_counter_fetch)/) {
        t += p; printf "%s %.0f\n", s, p / 100 * ev >> out } }
    END { printf "__run__ 0 %d\n", pk >> out; printf "%.0f\n", (pk > 0 ? t / 100 * ev / pk : 0) }'
}
# CPU ticks (USER_HZ) of every process in the lab's lb1 namespace (keepvs and its workers)
lb_ticks() {
  local t=0 p
  for p in $(ip netns pids "$1-lb1"); do
    [[ -r /proc/$p/stat ]] && t=$((t + $(sed 's/^.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')))
  done
  echo "$t"
}
busy_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8}' /proc/stat; }
run() {
  local v c=0 p0 p1 k0 k1 b0 b1 out n lab=$1 sf=$2; shift 2
  p0=$(lb1_rx "$lab") k0=$(lb_ticks "$lab") b0=$(busy_ticks)
  out=$(perf record -q -a -e cpu-clock -c 100000 -o "$TMP/run.data" -- \
    ip netns exec "$lab-client" wrk -t1 -c"$CONNS" -d"${DURATION}s" "$@" 2>/dev/null)
  p1=$(lb1_rx "$lab") k1=$(lb_ticks "$lab") b1=$(busy_ticks)
  v=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  n=$(awk '/requests in/ {print $1}' <<<"$out")
  c=$(nf_cost "$TMP/run.data" $((p1 - p0)) "$sf")
  # ticks are 10 ms; us per request
  awk -v v="${v:-0}" -v c="$c" -v k=$((k1 - k0)) -v b=$((b1 - b0)) -v n="${n:-0}" \
    'BEGIN { printf "%s %s %.2f %.2f\n", v, c, (n > 0 ? k * 10000 / n : 0), (n > 0 ? b * 10000 / n : 0) }'
}
declare -A LABOF URL
paths=()
for m in ${MODES:-fnat}; do
  port=81; [[ $m == nat ]] && port=80
  paths+=("$m-a" "$m-nftlb"); LABOF[$m-a]=kfa$$; URL[$m-a]=http://198.18.0.100:$port/
  LABOF[$m-nftlb]=kfb$$; URL[$m-nftlb]=http://198.18.0.102:$port/
  for n in "${!VFILE[@]}"; do paths+=("$m-$n"); LABOF[$m-$n]=kf$n$$; URL[$m-$n]=http://198.18.0.100:$port/; done
done
declare -A R C K B
for ((r = 0; r < ROUNDS; r++)); do
  for ((k = 0; k < ${#paths[@]}; k++)); do
    p=${paths[$(((k + r) % ${#paths[@]}))]}
    read -r v c lk bz < <(run "${LABOF[$p]}" "$TMP/sym-$p-ka" "${URL[$p]}")
    R[$p-ka]+="$v " C[$p-ka]+="$c " K[$p-ka]+="$lk " B[$p-ka]+="$bz "
    if [[ -z ${NOCLOSE:-} ]]; then
      read -r v c lk bz < <(run "${LABOF[$p]}" "$TMP/sym-$p-close" "${URL[$p]}" -H 'Connection: close')
      R[$p-close]+="$v " C[$p-close]+="$c " K[$p-close]+="$lk " B[$p-close]+="$bz "
    fi
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
echo "# $(date -u +%FT%TZ) load before $LOAD0 after $(cut -d' ' -f1-3 /proc/loadavg); VARIANTS=${VARIANTS:-} ROUNDS=$ROUNDS DURATION=$DURATION"
printf '%-12s %10s %10s %8s %8s %8s %8s %8s %8s  %s\n' path 'ka req/s' 'close' 'ka ns' 'close ns' 'ka lbus' 'close lb' 'ka busy' 'cl busy' 'close req/s per round'
for p in "${paths[@]}"; do
  printf '%-12s %10.0f %10.0f %8.0f %8.0f %8.1f %8.1f %8.1f %8.1f  %s\n' "$p" "$(echo "${R[$p-ka]}" | median)" "$(echo "${R[$p-close]:-0}" | median)" \
    "$(echo "${C[$p-ka]}" | median)" "$(echo "${C[$p-close]:-0}" | median)" \
    "$(echo "${K[$p-ka]}" | median)" "$(echo "${K[$p-close]:-0}" | median)" \
    "$(echo "${B[$p-ka]}" | median)" "$(echo "${B[$p-close]:-0}" | median)" "${R[$p-close]:-}"
done
symtab() { [[ -s $1 ]] || return 0; awk '$1 == "__run__" { pk += $3; next } { ns[$1] += $2 } END { for (s in ns) printf "%s %.1f\n", s, (pk > 0 ? ns[s] / pk : 0) }' "$1" | sort; }
for m in ${MODES:-fnat}; do
  echo "# $m keep-alive ns/packet by symbol: a | nftlb | ${!VFILE[*]}"
  f=$(mktemp); symtab "$TMP/sym-$m-a-ka" >"$f"
  for q in nftlb "${!VFILE[@]}"; do g=$(mktemp); join -a1 -a2 -e 0 -o auto "$f" <(symtab "$TMP/sym-$m-$q-ka") >"$g"; mv "$g" "$f"; done
  sort -k2,2gr "$f" | awk '{ m = 0; for (i = 2; i <= NF; i++) if ($i > m) m = $i; if (m >= 4) print }' | column -t
  # the sum over every round's samples and packets: steadier than the per-round medians above
  awk '{ for (i = 2; i <= NF; i++) t[i] += $i } END { printf "all-symbols"; for (i = 2; i <= NF; i++) printf " %.0f", t[i]; print "" }' "$f"
  rm -f "$f"
done
