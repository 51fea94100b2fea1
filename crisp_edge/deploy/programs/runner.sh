pick_runner() {  # ARCH QEMU_CPU
  m=$(uname -m)
  case "$m" in arm64) m=aarch64 ;; amd64) m=x86_64 ;; esac
  if [ "$m" = "$1" ]; then
    runner=""; echo "@@runner native"
  elif [ -n "$2" ] && command -v "qemu-$1" >/dev/null 2>&1; then
    runner="qemu-$1 -cpu $2"; echo "@@runner $runner"
  else
    echo "this device is $m and cannot run $1 binaries (no qemu-$1, or the board profile names no qemu_cpu); is --board right?" >&2
    return 1
  fi
}
