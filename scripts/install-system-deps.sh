#!/usr/bin/env bash
# Installs the system packages `make test` needs, only where missing, so a fresh
# Debian/Ubuntu machine passes with no manual step. Runs apt-get as root, or
# through sudo; otherwise says exactly what to install.
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have cmake || need+=(cmake)
have gcc || need+=(gcc)
have make || need+=(make)
have aarch64-linux-gnu-gcc || need+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
have qemu-aarch64 || need+=(qemu-user)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi

echo "install-system-deps: installing ${need[*]}"
if [ "$(id -u)" -eq 0 ]; then
  sudo=""
elif have sudo; then
  sudo="sudo"
else
  echo "install-system-deps: error: missing ${need[*]} and not root (no sudo)." >&2
  echo "  Install them with: apt-get install ${need[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
