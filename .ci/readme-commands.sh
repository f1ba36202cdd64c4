#!/usr/bin/env bash
# Runs the README's first two commands as they are written, in a fresh clone of this repository
# (its committed HEAD): 1. the demo (`npm ci && npm run demo`), checked to serve its dashboard and
# metrics, then stopped with SIGINT (Ctrl-C) by the PID of the process group this script started;
# 2. the install-and-test command (`npm ci && npm test`). Arguments after `--` are run in the
# clone afterwards (.ci/run passes the Node 24 test run).
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
after=()
if [[ ${1:-} == -- ]]; then
  shift
  after=("$@")
fi

work=$(mktemp -d /tmp/keepvs-fresh.XXXXXX)
demo_pid=
cleanup() {
  if [[ -n $demo_pid ]] && kill -0 "$demo_pid" 2>/dev/null; then kill -KILL -- "-$demo_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

git clone -q "$src" "$work/keepvs"
# the lab tests find the network lab as ../shared/lab, beside the repository
if [[ -d $src/../shared ]]; then ln -s "$(cd "$src/../shared" && pwd)" "$work/shared"; fi
cd "$work/keepvs"

# the README's first ```sh block; its comment lines are not commands
mapfile -t cmds < <(awk '/^```sh$/ { n++; next } /^```$/ { if (n == 1) exit; next } n == 1 && NF && !/^#/' README.md)
if ((${#cmds[@]} != 2)) || [[ ${cmds[0]} != *demo* ]]; then
  echo "readme-commands: expected the demo and the test command in the README's first sh block, got:" >&2
  printf '  %s\n' "${cmds[@]}" >&2
  exit 1
fi

echo "readme-commands: \$ ${cmds[0]}"
setsid bash -c "${cmds[0]}" >demo.log 2>&1 &
demo_pid=$!
for _ in $(seq 1 300); do
  grep -q '^running' demo.log && break
  kill -0 "$demo_pid" 2>/dev/null || break
  sleep 1
done
if ! grep -q '^running' demo.log; then
  echo "readme-commands: the demo did not get to 'running':" >&2
  tail -40 demo.log >&2
  exit 1
fi
url=$(sed -n 's/^  dashboard    : \(http:[^ ]*\)\/ .*/\1/p' demo.log | head -1)
# (into files: grep -q on a pipe would end curl with SIGPIPE, which pipefail reports)
curl -sf -o dashboard.html "$url/" && grep -q '<html' dashboard.html || { echo "readme-commands: no dashboard at $url/" >&2; exit 1; }
curl -sf -o metrics.txt "$url/metrics" && grep -q '^keepvs_real_server_up' metrics.txt || { echo "readme-commands: no metrics at $url/metrics" >&2; exit 1; }
grep -E '^(before|after|rs2 health)' demo.log || true
kill -INT -- "-$demo_pid"
for _ in $(seq 1 30); do kill -0 "$demo_pid" 2>/dev/null || break; sleep 1; done
if kill -0 "$demo_pid" 2>/dev/null; then
  echo "readme-commands: the demo did not stop on SIGINT" >&2
  exit 1
fi
wait "$demo_pid" || true
demo_pid=
echo "readme-commands: demo served $url and stopped on SIGINT"

echo "readme-commands: \$ ${cmds[1]}"
bash -c "${cmds[1]}"

if ((${#after[@]})); then
  echo "readme-commands: \$ ${after[*]}"
  "${after[@]}"
fi
