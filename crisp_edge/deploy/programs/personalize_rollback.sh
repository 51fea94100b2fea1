# Runs on the device after runner.sh, lock.sh and switch.sh: `crisp-edge personalize
# --rollback` (docs/personalize.md, "On a board"). Under the lock: if the links are still as the
# host saw them, smoke-test `previous` (its own crisp-run on its own smoke case) and switch
# `current` to it; the release that was current becomes `previous`, so a second rollback goes
# forward again.
set -u
dir=$1 cur=$2 prev=$3 arch=$4 qcpu=$5 model=$6 input=$7 top1=${8:-}
cd "$dir" || exit 1
take_lock personalize || exit $?
fail() {
  restore_current
  echo "$1; current: $(link_target current | grep . || echo none)" >&2
  exit 1
}
prune_releases
if [ "$(link_target current)" != "$cur" ] || [ "$(link_target previous)" != "$prev" ]; then
  fail "current or previous changed meanwhile: another operation ran; nothing was switched"
fi
release_intact "$prev" || fail "previous ($prev) is damaged (its files do not match SHA256SUMS); nothing was switched"
pick_runner "$arch" "$qcpu" || fail "cannot run the bundle's binaries here; nothing was switched"
smoke_release "$prev" "$model" "$input" "$top1" || fail "$smoke_error; nothing was switched"
switch_current "$prev" || fail "$switch_error"
echo "@@current $(link_target current)"
echo "@@previous $(link_target previous)"
prune_releases
