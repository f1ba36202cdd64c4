#!/bin/bash
# io_uring or epoll for the proxy's loop? bench/uring-probe.ts runs one minimal keep-alive proxy
# (no table, no bookkeeping) on each; both in front of one nginx on loopback, wrk -t1 -c64 on each
# in turn for ROUNDS rounds of D seconds; prints each round's req/s and CPU us per request (the
# proxy process's utime+stime over wrk's request count) and the median ratio uring/epoll.
# Needs nginx-light and wrk. Every process it starts is killed by PID at the end.
set -e
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-6}
D=${D:-4}
npx tsc -p . >/dev/null
dir=$(mktemp -d /tmp/keepvs-uring-XXXXXX)
port() { node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }
real=$(port); ep=$(port); ur=$(port)
cat >"$dir/nginx.conf" <<CONF
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log;
daemon off;
events { worker_connections 4000; }
http {
  access_log off;
  client_body_temp_path $dir/cb; proxy_temp_path $dir/px; fastcgi_temp_path $dir/fc;
  uwsgi_temp_path $dir/uw; scgi_temp_path $dir/sc;
  keepalive_requests 1000000; keepalive_timeout 300s;
  server { listen 127.0.0.1:$real backlog=4096; location = /small { return 200 'hello\n'; } }
}
CONF
nginx -c "$dir/nginx.conf" -p "$dir" & NG=$!
node dist/bench/uring-probe.js "$ep" "$real" epoll >"$dir/ep.out" 2>&1 & EP=$!
node dist/bench/uring-probe.js "$ur" "$real" uring >"$dir/ur.out" 2>&1 & UR=$!
trap 'kill $EP $UR $NG 2>/dev/null; sleep 0.3; rm -rf "$dir"' EXIT
sleep 1.5
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
echo "# bench/uring-probe.sh $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg), $ROUNDS rounds of ${D}s, wrk -t1 -c64 keep-alive"
for r in $(seq "$ROUNDS"); do
  for name in epoll uring; do
    if [ $name = epoll ]; then p=$ep; pid=$EP; else p=$ur; pid=$UR; fi
    t0=$(ticks $pid)
    out=$(wrk -t1 -c64 -d"${D}s" "http://127.0.0.1:$p/small")
    t1=$(ticks $pid)
    reqs=$(echo "$out" | awk '/requests in/{print $1}')
    rps=$(echo "$out" | awk '/Requests\/sec/{print $2}')
    echo "$r $name $rps $(echo "scale=2; ($t1-$t0)*10000/$reqs" | bc)"
  done
done | tee "$dir/rows" | awk '{print "round " $1 " " $2 ": " $3 " req/s, " $4 " us CPU/request"}'
med() { grep " $1 " "$dir/rows" | awk -v c="$2" '{print $c}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "median req/s: epoll $(med epoll 3), uring $(med uring 3); CPU us/request: epoll $(med epoll 4), uring $(med uring 4); uring/epoll CPU per request $(echo "scale=2; $(med uring 4)/$(med epoll 4)" | bc)"
