#!/bin/sh
# Make sure a Docker Engine answers: use the one that answers; otherwise install Debian's docker.io (and
# debootstrap, for `riskgym images build`) and start `dockerd --iptables=false` in the background.
set -eu
log=${RISKGYM_DOCKERD_LOG:-/var/log/riskgym-dockerd.log}

answers() { command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; }
need_root() { [ "$(id -u)" = 0 ] || { echo "no Docker Engine answers and $1 needs root: start Docker" >&2; exit 2; }; }

if ! answers; then
  if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
    need_root "installing one"
    sh "$(dirname "$0")/host-packages.sh" engine  # docker.io, and debootstrap with it
  fi
  if ! answers; then  # the package's own scripts may have started one
    need_root "starting dockerd"
    echo "starting dockerd --iptables=false (log: $log) ..."
    nohup setsid dockerd --iptables=false >"$log" 2>&1 </dev/null &
    i=0
    until answers; do
      i=$((i + 1))
      [ "$i" -le 120 ] || { echo "dockerd did not answer within 60 s; see $log:" >&2; tail -5 "$log" >&2; exit 2; }
      sleep 0.5
    done
  fi
fi
echo "docker engine: $(docker version --format '{{.Server.Version}}') answers"

[ "$(id -u)" != 0 ] || sh "$(dirname "$0")/host-packages.sh" engine  # debootstrap, if the engine was there already
