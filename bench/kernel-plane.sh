#!/usr/bin/env bash
# keepvs kernel data plane against direct, the userspace proxy and zevenet's nftlb, paths interleaved
# with the order rotated each round; medians of wrk requests/s and ratios to direct. Each load
# balancer alone: keepvs (and the baselines) in one lab, nftlb in a second identical lab (its own
# LAB_PREFIX), so neither pays for the other's rules (no shared netns, no shared ingress hook or
# conntrack table).
#   direct      client -> the real server's front address (same bridge, no director)
#   routed      client -> lb1 -> the real server's back address, plain IP forwarding, no keepvs rule
#               (port 85): the baseline the kernel-plane targets were set against (kernel-plane-facts §7,
#               "direct via lb1, no rules"); ratios are printed to both baselines
#   nat fnat dr keepvs --dataplane nft on lb1, VIP 198.18.0.100 ports 80 / 81 / 82
#   dr-pin      the same DR service with flow_pinning (port 86): the cost of the flow map
#   tun         keepvs TUN (tc-BPF) on lb1, VIP port 84 (when the BPF objects build)
#   proxy       keepvs --dataplane proxy on lb1 (second instance, 2 workers), VIP 198.18.0.101 port 80
#   nftlb-nat nftlb-fnat nftlb-dr   nftlb on the second lab's lb1, VIP 198.18.0.102 (dnat / snat / dsr)
# One real server per lab (rs1, nginx), LAB_DR=1: it answers DR/TUN clients on its front leg and routes
# replies from its back address through lb1 (source rule, NAT). Then the weight-change benchmark
# (dist/bench/kernel-weight.js) in a scratch namespace.
#   tun         keepvs TUN (tc-BPF) in a third lab of its own (VIP 198.18.0.100 port 84, a keepvs with
#               only that service): its tc-BPF program runs on every packet of its lb1's eth0, so in
#               lab A it would tax the NAT/FNAT/DR paths, which nftlb's lab never pays
# Needs root, the lab (../shared/lab/lab.sh), nginx, wrk, nftlb, bc. Env: ROUNDS (3) DURATION (4 s) CONNS (32) TUN (1; 0: no TUN lab).
# PERF=1 (the default when `perf` can sample cpu-clock): each wrk run is also sampled system-wide
# (perf record -a -e cpu-clock, one sample per 100 us of CPU) and the CPU time in netfilter's data path
# (self time of nft_*, nf_*, nf_conntrack*, nf_nat*, ipv4_conntrack* symbols; the nf_tables netlink API,
# counter dumps and nf_hook_slow itself left out) is divided by the packets lb1 received (eth0 + eth1):
# the director's own per-packet cost, which wrk's and nginx's share of the 2 CPUs does not hide. Only
# samples taken in wrk's and nginx's tasks count: veth hands a packet to the next namespace's stack in
# the sender's softirq, so lb1's forwarding runs there, while other work on the machine (other labs'
# netfilter) runs in other tasks; what ksoftirqd takes over is missed on both sides alike.
# keepvs's own reads of /proc/net/nf_conntrack (its ActiveConn/InActConn poll) run in keepvs's node
# task, so --comm leaves them out, and their symbols (ct_seq_*, seq_*) are not data-path ones anyway;
# the packets lb1 received are counted in the lab of the path measured.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-4} CONNS=${CONNS:-32}
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
for b in nginx wrk ip nft nftlb bc; do command -v "$b" >/dev/null || { echo "missing $b" >&2; exit 2; }; done
[[ $(id -u) == 0 ]] || { echo "needs root" >&2; exit 2; }
npx tsc -p . >/dev/null
# TUN=0: no TUN service, so keepvs's lab carries no tc-BPF program on eth0 (nftlb's lab never does)
TUN=${TUN:-1}
[[ $TUN == 1 ]] && { node scripts/build-bpf.mjs --strict >/dev/null 2>&1 || TUN=0; }
export LAB_DR=1 LAB_RS=1
# two identical labs: A for keepvs and the baselines, B for nftlb
LAB_A=kvk$$ LAB_B=kvn$$ LAB_C=kvt$$
export LAB_PREFIX=$LAB_A
LAB=../shared/lab/lab.sh
TMP=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 1
  LAB_PREFIX=$LAB_A bash "$LAB" down >/dev/null || true
  LAB_PREFIX=$LAB_B bash "$LAB" down >/dev/null || true
  [[ $TUN == 1 ]] && { LAB_PREFIX=$LAB_C bash "$LAB" down >/dev/null || true; }
  ip netns del "kvw$$" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
LAB_PREFIX=$LAB_A bash "$LAB" up >/dev/null
LAB_PREFIX=$LAB_B bash "$LAB" up >/dev/null
[[ $TUN == 1 ]] && LAB_PREFIX=$LAB_C bash "$LAB" up >/dev/null
x() { local h=$1; shift; ip netns exec "$LAB_A-$h" "$@"; }  # lab A (keepvs)
xb() { local h=$1; shift; ip netns exec "$LAB_B-$h" "$@"; } # lab B (nftlb)
xc() { local h=$1; shift; ip netns exec "$LAB_C-$h" "$@"; } # lab C (keepvs TUN)

printf '%s\n' 'worker_processes 1;' "pid $TMP/nginx.pid;" "error_log $TMP/nginx.err;" \
  'events { worker_connections 4096; }' \
  'http { access_log off; keepalive_requests 1000000;' \
  '  server { listen 80; listen 82; listen 84; listen 85; listen 86; location / { return 200 "ok\n"; } } }' >"$TMP/nginx.conf"
sed "s|$TMP/nginx\.|$TMP/nginx-b.|g" "$TMP/nginx.conf" >"$TMP/nginx-b.conf"
sed "s|$TMP/nginx\.|$TMP/nginx-c.|g" "$TMP/nginx.conf" >"$TMP/nginx-c.conf"
x rs1 nginx -c "$TMP/nginx.conf"
xb rs1 nginx -c "$TMP/nginx-b.conf"
# the same real-server setup in labs A and B; the TUN decapsulation (and its MSS clamp) only in C
x rs1 node bin/keepvs.js realserver start --vip 198.18.0.100 --state "$TMP/rs.json" >/dev/null
xb rs1 node bin/keepvs.js realserver start --vip 198.18.0.102 --state "$TMP/rs-b.json" >/dev/null
labs=("$LAB_A" "$LAB_B")
if [[ $TUN == 1 ]]; then
  xc rs1 nginx -c "$TMP/nginx-c.conf"
  xc rs1 node bin/keepvs.js realserver start --vip 198.18.0.100 --tun --dev eth0 --mss 1440 --state "$TMP/rs-c.json" >/dev/null
  labs+=("$LAB_C")
fi
for lab in "${labs[@]}"; do
  y() { local h=$1; shift; ip netns exec "$lab-$h" "$@"; }
  # NAT replies (from the back address) go back through lb1, which holds the back gateway address
  y rs1 ip rule add from 198.18.1.11 lookup 100
  y rs1 ip route add default via 198.18.1.254 dev eth0 table 100
  y lb1 ip addr add 198.18.1.254/24 dev eth1
  y lb1 ip addr add 198.18.1.250/24 dev eth1
  # the routed baseline: the client reaches rs1's back address through lb1 (no rule on port 85)
  y client ip route add 198.18.1.11/32 via 198.18.0.1
done
for a in 198.18.0.100 198.18.0.101; do x lb1 ip addr add "$a/32" dev eth0; done
xb lb1 ip addr add 198.18.0.102/32 dev eth0
[[ $TUN == 1 ]] && xc lb1 ip addr add 198.18.0.100/32 dev eth0

vs() { # vip port method rs-address rs-port [extra]
  printf 'virtual_server %s %s {\n  lvs_sched rr\n  lvs_method %s\n  protocol TCP\n%b  real_server %s %s { }\n}\n' \
    "$1" "$2" "$3" "${6:-}" "$4" "$5"
}
{
  printf 'local_address_group L {\n  198.18.1.250\n}\n'
  vs 198.18.0.100 80 NAT 198.18.1.11 80
  vs 198.18.0.100 81 FNAT 198.18.1.11 80 '  laddr_group_name L\n'
  vs 198.18.0.100 82 DR 198.18.0.61 82
  vs 198.18.0.100 86 DR 198.18.0.61 86 '  flow_pinning\n'
} >"$TMP/kernel.conf"
vs 198.18.0.100 84 TUN 198.18.1.11 84 >"$TMP/tun.conf"
vs 198.18.0.101 80 NAT 198.18.1.11 80 >"$TMP/proxy.conf"
start_keepvs() { # name conf args... (LAB_OF: the lab, A by default)
  local n=$1 c=$2
  shift 2
  ip netns exec "${LAB_OF:-$LAB_A}-lb1" node bin/keepvs.js -n -l -G -f "$c" --socket "$TMP/$n.sock" --api "127.0.0.1:$((19300 + ${#PIDS[@]}))" \
    -p "$TMP/$n.pid" -c "$TMP/$n-c.pid" -r "$TMP/$n-v.pid" "$@" >"$TMP/$n.log" 2>&1 &
  PIDS+=($!)
}
start_keepvs kernel "$TMP/kernel.conf" --dataplane nft
start_keepvs proxy "$TMP/proxy.conf" --dataplane proxy --dataplane-workers 2
[[ $TUN == 1 ]] && LAB_OF=$LAB_C start_keepvs tun "$TMP/tun.conf" --dataplane nft
MAC_LB1=$(xb lb1 cat /sys/class/net/eth0/address)
MAC_RS=$(xb rs1 cat /sys/class/net/eth1/address)
be='"backends":[{"name":"b1","ip-addr":"198.18.1.11","port":"80","state":"up"}]'
farm='"family":"ipv4","virtual-addr":"198.18.0.102","protocol":"tcp","scheduler":"rr","state":"up"'
printf '{"farms":[%s,%s,%s]}\n' \
  "{\"name\":\"nat\",$farm,\"virtual-ports\":\"80\",\"mode\":\"dnat\",$be}" \
  "{\"name\":\"fnat\",$farm,\"virtual-ports\":\"81\",\"mode\":\"snat\",$be}" \
  "{\"name\":\"dr\",$farm,\"virtual-ports\":\"82\",\"mode\":\"dsr\",\"iface\":\"eth0\",\"oface\":\"eth0\",\"ether-addr\":\"$MAC_LB1\",\"backends\":[{\"name\":\"b1\",\"ip-addr\":\"198.18.0.61\",\"ether-addr\":\"$MAC_RS\",\"state\":\"up\"}]}" \
  >"$TMP/nftlb.json"
# nftlb alone in lab B, with its own chain priorities
xb lb1 nftlb -e -c "$TMP/nftlb.json" >/dev/null
for i in $(seq 1 40); do
  x client curl -sf -m 1 http://198.18.0.100:80/ >/dev/null && x client curl -sf -m 1 http://198.18.0.101:80/ >/dev/null && break
  sleep 0.5
done
x client curl -sf -m 2 http://198.18.0.100:80/ >/dev/null || { echo "keepvs NAT not answering" >&2; cat "$TMP/kernel.log" >&2; exit 1; }
xb client curl -sf -m 2 http://198.18.0.102:80/ >/dev/null || { echo "nftlb NAT not answering" >&2; exit 1; }
if [[ $TUN == 1 ]]; then
  for i in $(seq 1 40); do xc client curl -sf -m 1 http://198.18.0.100:84/ >/dev/null && break; sleep 0.5; done
  xc client curl -sf -m 2 http://198.18.0.100:84/ >/dev/null || { echo "keepvs TUN not answering" >&2; cat "$TMP/tun.log" >&2; exit 1; }
  # no tc-BPF program on lab A's director
  for d in eth0 eth1; do
    for h in ingress egress; do
      ! x lb1 tc filter show dev $d $h 2>/dev/null | grep -q bpf || { echo "a tc-BPF program on lab A's lb1 $d" >&2; exit 1; }
    done
  done
  xc lb1 tc filter show dev eth0 ingress 2>/dev/null | grep -q bpf || echo "# note: no tc-BPF filter seen on lab C's eth0 ingress" >&2
fi
# keepvs's tables never in lab B, nftlb's never in lab A
! x lb1 nft list tables | grep -q nftlb || { echo "nftlb tables in keepvs's lab" >&2; exit 1; }
! xb lb1 nft list tables | grep -q keepvs || { echo "keepvs tables in nftlb's lab" >&2; exit 1; }

# PAUSE=N: keep the lab up N seconds before measuring (debugging)
[[ -n ${PAUSE:-} ]] && sleep "$PAUSE"
PERF=${PERF:-1}
if [[ $PERF == 1 ]] && ! perf record -q -a -e cpu-clock -c 100000 -o "$TMP/probe.data" -- true >/dev/null 2>&1; then
  echo "perf cannot sample cpu-clock here: no per-packet cost column" >&2
  PERF=0
fi
lb1_rx() { # lab prefix
  ip netns exec "$1-lb1" cat /sys/class/net/eth0/statistics/rx_packets /sys/class/net/eth1/statistics/rx_packets | paste -sd+ | bc
}
# ns of netfilter data-path CPU per packet received by lb1, from one perf record file
# (per symbol, the ns and packets are appended to $3: the symbol table printed at the end)
nf_cost() { # perf.data packets symbol-file
  perf report -i "$1" --comm wrk,nginx --no-children --stdio --sort sym -g none 2>/dev/null | awk -v pk="$2" -v out="$3" '
    /Event count/ { ev = $NF }
    /^ +[0-9.]+%/ { p = $1; sub("%", "", p); s = $3
      if (s ~ /^(nft_|__nft_|nf_|__nf_|ipv4_conntrack|nf_conntrack)/ && s !~ /^(nf_hook_slow|nf_tables_|nft_set_dump|nft_counter_fetch)/) {
        t += p; printf "%s %.0f\n", s, p / 100 * ev >> out } }
    END { printf "__run__ 0 %d\n", pk >> out; printf "%.0f\n", (pk > 0 ? t / 100 * ev / pk : 0) }'
}
run() { # lab symbol-file url extra-args... -> "requests/s ns-per-packet" (0 when the path fails)
  local v c=0 p0 p1 lab=$1 sf=$2
  shift 2
  if [[ $PERF == 1 ]]; then
    p0=$(lb1_rx "$lab")
    v=$(perf record -q -a -e cpu-clock -c 100000 -o "$TMP/run.data" -- \
      ip netns exec "$lab-client" wrk -t1 -c"$CONNS" -d"${DURATION}s" "$@" 2>/dev/null | awk '/Requests\/sec/ {print $2}')
    p1=$(lb1_rx "$lab")
    c=$(nf_cost "$TMP/run.data" $((p1 - p0)) "$sf")
  else
    v=$(ip netns exec "$lab-client" wrk -t1 -c"$CONNS" -d"${DURATION}s" "$@" 2>/dev/null | awk '/Requests\/sec/ {print $2}')
  fi
  echo "${v:-0} $c"
}
declare -A URL=(
  [direct]=http://198.18.0.61:80/ [routed]=http://198.18.1.11:85/ [nat]=http://198.18.0.100:80/ [fnat]=http://198.18.0.100:81/
  [dr]=http://198.18.0.100:82/ [dr-pin]=http://198.18.0.100:86/ [tun]=http://198.18.0.100:84/ [proxy]=http://198.18.0.101:80/
  [nftlb-nat]=http://198.18.0.102:80/ [nftlb-fnat]=http://198.18.0.102:81/ [nftlb-dr]=http://198.18.0.102:82/
)
paths=(direct routed nat fnat dr dr-pin proxy nftlb-nat nftlb-fnat nftlb-dr)
[[ $TUN == 1 ]] && paths+=(tun)
# PATHS="direct routed dr nftlb-dr": measure only these (direct and routed are always kept: the baselines)
if [[ -n ${PATHS:-} ]]; then
  paths=(direct routed)
  for p in $PATHS; do [[ $p == direct || $p == routed ]] || paths+=("$p"); done
fi
declare -A R C
for ((r = 0; r < ROUNDS; r++)); do
  for ((k = 0; k < ${#paths[@]}; k++)); do
    p=${paths[$(((k + r) % ${#paths[@]}))]}
    lab=$LAB_A
    [[ $p == nftlb-* ]] && lab=$LAB_B
    [[ $p == tun ]] && lab=$LAB_C
    read -r v c < <(run "$lab" "$TMP/sym-$p-ka" "${URL[$p]}")
    R[$p-ka]+="$v " C[$p-ka]+="$c "
    read -r v c < <(run "$lab" "$TMP/sym-$p-close" "${URL[$p]}" -H 'Connection: close')
    R[$p-close]+="$v " C[$p-close]+="$c "
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
ratio() { if [[ $(echo "$2 > 0" | bc) == 1 ]]; then echo "$1 / $2" | bc -l; else echo 0; fi; }
echo "# keepvs kernel plane benchmark, $(date -u +%FT%TZ), $(nproc) CPUs, kernel $(uname -r), load before $LOAD0, after $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $ROUNDS rounds x ${DURATION}s per path and mode, wrk -t1 -c$CONNS, one real server"
echo "# ratio: to routed (client -> lb1 -> rs1, no rules; the targets' baseline); l2: to direct (same bridge)"
printf '%-12s %12s %7s %6s %12s %7s %6s\n' path keep-alive ratio l2 'conn: close' ratio l2
dk=$(echo "${R[direct-ka]}" | median)
dc=$(echo "${R[direct-close]}" | median)
rk=$(echo "${R[routed-ka]}" | median)
rc=$(echo "${R[routed-close]}" | median)
for p in "${paths[@]}"; do
  k=$(echo "${R[$p-ka]}" | median)
  c=$(echo "${R[$p-close]}" | median)
  printf '%-12s %12.0f %7.2f %6.2f %12.0f %7.2f %6.2f\n' "$p" "$k" "$(ratio "$k" "$rk")" "$(ratio "$k" "$dk")" \
    "$c" "$(ratio "$c" "$rc")" "$(ratio "$c" "$dc")"
done
for m in nat fnat dr; do
  [[ -n ${R[$m-ka]:-} && -n ${R[nftlb-$m-ka]:-} ]] || continue
  printf 'keepvs/nftlb %-5s keep-alive %.2f, conn: close %.2f\n' "$m" \
    "$(ratio "$(echo "${R[$m-ka]}" | median)" "$(echo "${R[nftlb-$m-ka]}" | median)")" \
    "$(ratio "$(echo "${R[$m-close]}" | median)" "$(echo "${R[nftlb-$m-close]}" | median)")"
done
if [[ $PERF == 1 ]]; then
  echo "# netfilter data-path CPU per packet lb1 received (ns, median; lower is better; perf cpu-clock samples)"
  printf '%-12s %12s %12s   %s\n' path keep-alive 'conn: close' 'each round (keep-alive | close)'
  for p in "${paths[@]}"; do
    [[ $p == direct ]] && continue # never crosses lb1
    printf '%-12s %12.0f %12.0f   %s| %s\n' "$p" "$(echo "${C[$p-ka]}" | median)" "$(echo "${C[$p-close]}" | median)" \
      "${C[$p-ka]}" "${C[$p-close]}"
  done
  for m in nat fnat dr; do
    [[ -n ${C[$m-ka]:-} && -n ${C[nftlb-$m-ka]:-} ]] || continue
    printf 'per-packet cost keepvs/nftlb %-5s keep-alive %.2f, conn: close %.2f (below 1: keepvs cheaper)\n' "$m" \
      "$(ratio "$(echo "${C[$m-ka]}" | median)" "$(echo "${C[nftlb-$m-ka]}" | median)")" \
      "$(ratio "$(echo "${C[$m-close]}" | median)" "$(echo "${C[nftlb-$m-close]}" | median)")"
  done
  # where the time goes: per symbol, ns per packet over all rounds, keepvs beside nftlb (keep-alive)
  symtab() { # file -> "symbol ns-per-packet" over every run of the path
    [[ -s $1 ]] || return 0
    awk '$1 == "__run__" { pk += $3; next } { ns[$1] += $2 } END { for (s in ns) printf "%s %.1f\n", s, (pk > 0 ? ns[s] / pk : 0) }' "$1"
  }
  for m in nat fnat dr; do
    [[ -s $TMP/sym-$m-ka && -s $TMP/sym-nftlb-$m-ka ]] || continue
    echo "# $m keep-alive, ns per packet by symbol: keepvs | nftlb"
    join -a1 -a2 -e 0 -o 0,1.2,2.2 <(symtab "$TMP/sym-$m-ka" | sort) <(symtab "$TMP/sym-nftlb-$m-ka" | sort) |
      sort -k2,2gr -k3,3gr | awk '$2 >= 5 || $3 >= 5 { printf "  %-32s %8.1f %8.1f\n", $1, $2, $3 }'
  done
fi
xb lb1 nft delete table ip nftlb 2>/dev/null || true
xb lb1 nft delete table netdev nftlb 2>/dev/null || true
x rs1 node bin/keepvs.js realserver stop --state "$TMP/rs.json" >/dev/null || true
[[ $TUN == 1 ]] && { xc rs1 node bin/keepvs.js realserver stop --state "$TMP/rs-c.json" >/dev/null || true; }
[[ $TUN == 1 ]] && { xc rs1 sh -c "kill \$(cat $TMP/nginx-c.pid)" || true; }
xb rs1 node bin/keepvs.js realserver stop --state "$TMP/rs-b.json" >/dev/null || true
x rs1 sh -c "kill \$(cat $TMP/nginx.pid)" || true
xb rs1 sh -c "kill \$(cat $TMP/nginx-b.pid)" || true
ip netns add "kvw$$"
[[ ${WEIGHT_ROUNDS:-30} == 0 ]] && exit 0
ROUNDS=${WEIGHT_ROUNDS:-30} ip netns exec "kvw$$" node dist/bench/kernel-weight.js
