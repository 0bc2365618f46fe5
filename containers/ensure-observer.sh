#!/bin/sh
# The host observer (riskgym/world/kernel): BPF programs on the system-call tracepoints, built here with Debian's
# clang, bpftool and libbpf, and tracefs mounted. As root only: elsewhere riskgym falls back to the in-box observer
# (strace) and says so in every trace and report.
set -eu
[ "$(id -u)" = 0 ] || { echo "host observer: not root, the in-box observer (strace) will be used"; exit 0; }
sh "$(dirname "$0")/host-packages.sh" observer  # clang, bpftool, libbpf-dev, gcc and iproute2, where missing
[ -d /sys/kernel/tracing/events ] || mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || true
"${PYTHON:-.venv/bin/python}" -m riskgym.world.kernel.build || echo "host observer: the in-box observer (strace) will be used"
