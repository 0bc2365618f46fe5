#!/bin/sh
# The host observer (riskgym/world/kernel): Debian's bpftrace, and tracefs mounted. As root only: elsewhere riskgym
# falls back to the in-box observer (strace) and says so in every trace and report.
set -eu
[ "$(id -u)" = 0 ] || { echo "host observer: not root, the in-box observer (strace) will be used"; exit 0; }
if ! command -v bpftrace >/dev/null 2>&1; then
  echo "installing Debian's bpftrace (the host observer) ..."
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bpftrace >/dev/null
fi
[ -d /sys/kernel/tracing/events ] || mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || true
echo "host observer: $(bpftrace --version 2>/dev/null || echo 'bpftrace missing')"
