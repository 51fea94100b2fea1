# Runs on the device after lock.sh and switch.sh: prepares the install directory, removes what
# interrupted operations left (under the lock: fails fast while another one runs) and reports
# what is there.
set -u
mkdir -p "$1/releases" || exit 1
cd "$1" || exit 1
echo "@@dir $(pwd)"
take_lock deploy || exit $?
prune_releases
release_lock
echo "@@machine $(uname -m)"
cur=$(link_target current)
echo "@@current $(release_id "$cur")"
# ok: its files match SHA256SUMS and it passed its smoke test here (switch.sh)
release_ok "$cur" && echo "@@current_ok yes"
echo "@@free_kb $(df -Pk . | awk 'NR == 2 {print $4}')"
for tool in sha256sum tar gzip mktemp; do
  command -v "$tool" >/dev/null 2>&1 || echo "@@missing $tool"
done
for q in qemu-aarch64 qemu-x86_64; do command -v "$q" >/dev/null 2>&1 && echo "@@qemu $q"; done
true
