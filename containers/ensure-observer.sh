#!/bin/sh
# The host observer (riskgym/world/kernel): BPF programs on the system-call tracepoints, built here with Debian's
# clang, bpftool and libbpf, and tracefs mounted. As root only: elsewhere riskgym falls back to the in-box observer
# (strace) and says so in every trace and report.
set -eu
[ "$(id -u)" = 0 ] || { echo "host observer: not root, the in-box observer (strace) will be used"; exit 0; }
need=""
for pair in clang:clang bpftool:bpftool gcc:gcc ip:iproute2; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || ls /usr/bin/"${pair%%:*}"-[0-9]* >/dev/null 2>&1 || need="$need ${pair#*:}"
done
[ -f /usr/include/bpf/libbpf.h ] || need="$need libbpf-dev"
if [ -n "$need" ]; then
  echo "installing Debian's$need (to build the host observer) ..."
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >/dev/null
fi
[ -d /sys/kernel/tracing/events ] || mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || true
"${PYTHON:-.venv/bin/python}" -m riskgym.world.kernel.build || echo "host observer: the in-box observer (strace) will be used"
