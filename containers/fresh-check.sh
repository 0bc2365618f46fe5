#!/bin/sh
# The README's two commands from nothing, as on a fresh machine: clone the committed repository into a temporary
# folder; then, for `make test` and again for `make demo`: stop the Docker Engine that containers/ensure-docker.sh
# started, remove riskgym's containers, images and the clone's virtualenv, and run the command (pip's cache unused).
# Reports both exit codes and times. Docker and Chromium tests must run, as in CI. Logs: the folder it prints. Needs root.
#   sh containers/fresh-check.sh            (RISKGYM_FRESH_KEEP=1 keeps the clone, virtualenv included)
set -u
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/var/tmp}/riskgym-fresh-XXXXXX")
git clone -q "$repo" "$work/riskgym" || { echo "fresh check: git clone of $repo failed" >&2; exit 2; }
commit=$(git -C "$work/riskgym" rev-parse --short HEAD)

fresh() {  # as on a new machine: no riskgym container or image, no engine of riskgym's, no virtualenv
  rm -rf "$work/riskgym/.venv"
  docker info >/dev/null 2>&1 || return 0
  docker ps -aq --filter label=riskgym | xargs -r docker rm -f >/dev/null
  docker images --format '{{.Repository}}:{{.Tag}}' | grep '^riskgym/' | xargs -r docker rmi -f >/dev/null
  pid=$(cat /var/run/docker.pid 2>/dev/null || true)
  if [ -n "$pid" ] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q '^dockerd --iptables=false'; then
    kill "$pid"
    while [ -e "/proc/$pid" ]; do sleep 0.2; done
    echo "fresh check: stopped the engine riskgym started (pid $pid), removed riskgym's images and the virtualenv"
  else
    echo "fresh check: removed riskgym's images and the virtualenv; the engine here is not riskgym's: it keeps running"
  fi
}

step() {  # step NAME: run `make NAME` in the clone; say its exit code, time and last line
  start=$(date +%s)
  (cd "$work/riskgym" && PIP_NO_CACHE_DIR=1 RISKGYM_REQUIRE_DOCKER=1 RISKGYM_REQUIRE_CHROMIUM=1 \
    HYPOTHESIS_PROFILE=ci make "$1") >"$work/$1.log" 2>&1
  code=$?
  secs=$(( $(date +%s) - start ))
  last=$(grep -v '^\s*$' "$work/$1.log" | tail -1)
  printf '  make %-5s exit %s in %d min %02d s: %s\n' "$1" "$code" $((secs / 60)) $((secs % 60)) "$last" \
    >>"$work/summary"
  return $code
}

echo "fresh check of $commit in $work/riskgym (logs: $work/demo.log, $work/test.log) ..."
fresh; step test; test=$?
fresh; step demo; demo=$?
echo "fresh check of $commit:"
cat "$work/summary"
[ "${RISKGYM_FRESH_KEEP:-0}" = 1 ] || rm -rf "$work/riskgym"
[ "$demo" = 0 ] && [ "$test" = 0 ]
