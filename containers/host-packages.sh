#!/bin/sh
# Install the Debian packages the host lacks for what is asked, with one apt-get update: `engine` (docker.io and
# debootstrap, for the Docker Engine and `riskgym images build`), `observer` (clang, bpftool, libbpf-dev, gcc and
# iproute2, for the host observer) and `chromium` (for the HTML report's tests). The one place that knows them:
# the ensure-*.sh scripts call it, and `make test` asks for the observer's and chromium's together. As root only;
# elsewhere the ensure-*.sh scripts say what is missing.
#   sh containers/host-packages.sh engine observer chromium
set -eu
[ "$(id -u)" = 0 ] || exit 0
has() { command -v "$1" >/dev/null 2>&1 || ls /usr/bin/"$1"-[0-9]* >/dev/null 2>&1; }
need="" bare=""  # bare: without their recommended packages, as ensure-observer.sh installs them
for want in "$@"; do
  case $want in
    engine)
      { has docker && has dockerd; } || docker info >/dev/null 2>&1 || need="$need docker.io"
      has debootstrap || need="$need debootstrap" ;;
    observer)
      for pair in clang:clang bpftool:bpftool gcc:gcc ip:iproute2; do
        has "${pair%%:*}" || bare="$bare ${pair#*:}"
      done
      [ -f /usr/include/bpf/libbpf.h ] || bare="$bare libbpf-dev" ;;
    chromium)
      has chromium || has chromium-browser || need="$need chromium" ;;
    *) echo "host-packages.sh: unknown part $want (engine, observer or chromium)" >&2; exit 2 ;;
  esac
done
[ -n "$need$bare" ] || exit 0
echo "installing Debian's$need$bare ..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
[ -z "$need" ] || apt-get install -y -qq $need >/dev/null
[ -z "$bare" ] || apt-get install -y -qq --no-install-recommends $bare >/dev/null
