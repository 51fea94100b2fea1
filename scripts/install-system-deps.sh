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
# Deploy tests: a real OpenSSH server on 127.0.0.1 plays the board.
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
have ssh || need+=(openssh-client)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
# make test-fuzz: clang with libFuzzer. Debian 12 ships libFuzzer's runtime in
# libclang-rt-<N>-dev, which clang only recommends (not installed here).
have clang || need+=(clang)
fuzzer_links() {
  printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' |
    clang -fsanitize=fuzzer -x c - -o /dev/null >/dev/null 2>&1
}
# The runtime package matches clang's major version, known once clang is in.
fuzzer_runtime() { echo "libclang-rt-$(clang -dumpversion | cut -d. -f1)-dev"; }
if have clang && ! fuzzer_links; then
  need+=("$(fuzzer_runtime)")
fi

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
if ! fuzzer_links; then
  echo "install-system-deps: installing $(fuzzer_runtime) (libFuzzer for make test-fuzz)"
  $sudo apt-get install -y -qq --no-install-recommends "$(fuzzer_runtime)"
fi
