#!/usr/bin/env bash
# The install paths of the README, each from a fresh clone of this repository (committed HEAD),
# into a private npm prefix: `npm install -g .` in a clone without node_modules, and
# `npm install -g` of the tarball that `npm pack` makes. Each installed keepvs must run
# (--version, -t on a sample), keepvsadm must answer -h, and the man pages must be linked.
set -euo pipefail
# (grep without -q after a pipe: -q would end the writer with SIGPIPE, which pipefail reports)
src=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/keepvs-pkg.XXXXXX)
trap 'rm -rf "$work"' EXIT
npmq=(--no-audit --no-fund --loglevel=error)

check() { # PREFIX WHAT
  local bin=$1/bin what=$2
  "$bin/keepvs" --version | grep '^keepvs v' >/dev/null || { echo "package-install: $what: keepvs --version failed" >&2; exit 1; }
  local st=0
  "$bin/keepvs" -t -f "$src/test/fixtures/corpus/keepalived-doc/keepalived.conf.HTTP_GET.port" --no-interface-check 2>/dev/null || st=$?
  [[ $st == 0 || $st == 5 ]] || { echo "package-install: $what: keepvs -t exited $st" >&2; exit 1; }
  "$bin/keepvsadm" -h | grep '^keepvsadm' >/dev/null || { echo "package-install: $what: keepvsadm -h failed" >&2; exit 1; }
  for m in man8/keepvs.8 man8/keepvsadm.8 man5/keepvs.conf.5; do
    [[ -e $1/share/man/$m ]] || { echo "package-install: $what: man page $m not installed" >&2; exit 1; }
  done
  echo "package-install: $what: ok ($("$bin/keepvs" --version))"
}

git clone -q "$src" "$work/clone"
npm install -g --prefix "$work/from-clone" "${npmq[@]}" "$work/clone"
check "$work/from-clone" 'npm install -g from a clone'

git clone -q "$src" "$work/pack"
(cd "$work/pack" && npm ci "${npmq[@]}" >/dev/null && npm pack --silent >/dev/null)
tarball=$(ls "$work"/pack/keepvs-*.tgz)
for f in dist/src/cli/keepvs-main.js man/keepvs.8 man/keepvsadm.8 man/keepvs.conf.5 completions/keepvsadm contrib/keepvs.service LICENSE; do
  tar tzf "$tarball" | grep -x "package/$f" >/dev/null || { echo "package-install: $f is not in the tarball" >&2; exit 1; }
done
npm install -g --prefix "$work/from-tarball" "${npmq[@]}" "$tarball"
[[ ! -e $work/from-tarball/lib/node_modules/keepvs/node_modules/typescript ]] || { echo "package-install: the tarball install pulled dev dependencies" >&2; exit 1; }
check "$work/from-tarball" 'npm install -g of the npm pack tarball'
