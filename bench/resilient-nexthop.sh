#!/usr/bin/env bash
# Which share of flows changes next hop at a Linux router when an ECMP next hop (a director) is added
# or removed: a hash-threshold group (what FRR 8.4's zebra installs for BGP multipath) against a
# resilient nexthop group (`ip nexthop add id N group ... type resilient`). A scratch namespace,
# four next hops on a veth with static neighbours, fib_multipath_hash_policy 1 (L4), FLOWS TCP
# flows (source ports), each placed with `ip route get` in one `ip -batch` (the kernel's own
# multipath choice). Prints moved/total per change. Root only; touches nothing outside its namespace.
# Usage: FLOWS=3000 bash bench/resilient-nexthop.sh
set -euo pipefail
[[ $(id -u) == 0 ]] || { echo "needs root" >&2; exit 2; }
echo "# resilient nexthop groups vs hash-threshold, $(date -u +%FT%TZ), load $(cut -d" " -f1-3 /proc/loadavg)"
N=kvnh$$
ip netns add $N
trap "ip netns del $N; rm -f /tmp/$N.*" EXIT
x() { ip -n $N "$@"; }
ip netns exec $N sysctl -qw net.ipv4.fib_multipath_hash_policy=1
x link add r0 type veth peer name r1; x link set r0 up; x link set r1 up; x link set lo up
x addr add 10.9.0.1/24 dev r0
for i in 11 12 13 14; do x neigh add 10.9.0.$i lladdr 02:00:00:00:00:$i dev r0; x nexthop add id $i via 10.9.0.$i dev r0; done
F=${FLOWS:-3000}
for s in $(seq 20000 $((20000 + F - 1))); do echo "route get 198.18.0.100 from 10.9.0.1 ipproto tcp sport $s dport 80"; done > /tmp/$N.batch
pick() { ip -n $N -b /tmp/$N.batch | grep -o 'via 10.9.0.[0-9]*' | awk '{print $2}'; }
moved() { paste -d' ' "$1" "$2" | awk '$1 != $2 {m++} END {printf "%d/%d = %.1f%%", m, NR, 100*m/NR}'; }
for kind in mpath resilient; do
  if [[ $kind == resilient ]]; then extra="type resilient buckets 512 idle_timer 0"; else extra=""; fi
  x nexthop add id 100 group 11/12/13 $extra
  x route add 198.18.0.100/32 nhid 100
  pick > /tmp/$N.a
  x nexthop replace id 100 group 11/12/13/14 $extra
  pick > /tmp/$N.b
  x nexthop replace id 100 group 11/12/13 $extra
  pick > /tmp/$N.c
  x nexthop replace id 100 group 11/13 $extra
  pick > /tmp/$N.d
  echo "$kind: 3->4 moved $(moved /tmp/$N.a /tmp/$N.b); 4->3 moved $(moved /tmp/$N.b /tmp/$N.c); 3->2 (lose .12) moved $(moved /tmp/$N.c /tmp/$N.d); spread3 $(sort /tmp/$N.a | uniq -c | awk '{printf "%s ", $1}')"
  x route del 198.18.0.100/32; x nexthop del id 100
done
rm -f /tmp/$N.*
