#!/usr/bin/env bash
# Installs the Debian 12 packages Trestle needs, idempotently (apt-get skips what is installed).
# Usage: scripts/deps.sh [build] [test] [fuzz] [bench] [format]   (default: build)
set -euo pipefail
groups=("$@")
[ ${#groups[@]} -eq 0 ] && groups=(build)

pkgs=(cmake ninja-build g++ pkg-config ca-certificates
      libqpid-proton-cpp12-dev libqpid-proton11-dev libboost-dev libspdlog-dev libfmt-dev
      libssl-dev librdkafka-dev)
for g in "${groups[@]}"; do
  case "$g" in
    build) ;;
    test)  pkgs+=(libgtest-dev libqpid-proton11-dev-examples python3 python3-qpid-proton
                  libpaho-mqtt-dev libpaho-mqttpp-dev mosquitto-clients kcat curl openssl
                  mosquitto)  # mosquitto_passwd: its password files are read as they are
           # The Azure SDK test runs on Node.js: Debian's unless one is already on PATH (a
           # nodesource build, say, which Debian's npm package would conflict with).
           command -v npm >/dev/null 2>&1 || pkgs+=(nodejs npm) ;;
    fuzz)  pkgs+=(clang libclang-rt-14-dev) ;;
    bench) pkgs+=(libqpid-proton11-dev-examples python3 mosquitto) ;;
    format) pkgs+=(clang-format-14) ;;
    *) echo "deps.sh: unknown group '$g'" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update
  $SUDO apt-get install -y --no-install-recommends "${pkgs[@]}"
fi
