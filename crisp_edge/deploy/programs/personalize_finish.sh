# Runs on the device after runner.sh, lock.sh and switch.sh, with a tar of the new release's
# manifest.json, SHA256SUMS and the files the host made (smoke input, dense twin) on stdin: the
# second session of `crisp-edge personalize` on a board (docs/personalize.md, "On a board").
# Under the lock: if `current` is still the release the first session copied, complete the copy
# with those files, check every file against SHA256SUMS, rename it to releases/ID, smoke-test
# it, switch `current` to it (the release before becomes `previous`), prune.
set -u
dir=$1 cur=$2 part=$3 id=$4 sha=$5 arch=$6 qcpu=$7 model=$8 input=$9
shift 9
top1=${1:-}
enter_locked "$dir" personalize || exit $?
up="" new=""
fail() {  # MESSAGE: remove the new release unless live; `current` stays (or goes back to) ok
  rm -rf "$up" "$part"
  if [ -n "$new" ]; then is_live "$new" || rm -rf "$new"; fi
  restore_current
  prune_releases
  echo "$1; current: $(link_target current | grep . || echo none)" >&2
  exit 1
}
case $part in  # the copy the first session made (rm -rf'd on failure: nothing else)
  releases/personalize.*/* | *..*) part=""; fail "bad partial release name" ;;
  releases/personalize.*) ;;
  *) part=""; fail "bad partial release name" ;;
esac
# Not prune_releases before this point: it would remove the copy this operation is completing.
[ -d "$part" ] ||
  { part=""; fail "the copy made by the first step is gone (another operation ran in between); run personalize again"; }
[ "$(link_target current)" = "$cur" ] ||
  fail "current changed meanwhile (to $(link_target current)): another operation ran; nothing was switched"
up=$(mktemp -d incoming/personalize.XXXXXX) || fail "cannot create a directory in $dir/incoming"
err=$(cat 2>&1 > "$up/files.tar") || fail "receiving the manifest into $dir/$up failed: $err"
got=$(sha256sum "$up/files.tar" | cut -d' ' -f1)
[ "$got" = "$sha" ] || fail "the uploaded manifest is corrupted or cut off; nothing was switched"
err=$(tar -xf "$up/files.tar" -C "$part" 2>&1) || fail "unpacking the manifest failed: $err"
rm -rf "$up"
err=$(cd "$part" && sha256sum -c --quiet --strict SHA256SUMS 2>&1) ||
  fail "the new release's files do not match their checksums: $err; nothing was switched"
step completed
new=$(new_release_name "$id")
# shellcheck disable=SC2015  # A && B || handler: the handler is meant to run when A or B fails
rm -rf "$new" && mv "$part" "$new" || fail "cannot move $new into place"
part=""
step placed
pick_runner "$arch" "$qcpu" || fail "cannot run the bundle's binaries here; nothing was switched"
smoke_release "$new" "$model" "$input" "$top1" || fail "$smoke_error; nothing was switched"
step verified
switch_current "$new" || fail "$switch_error"
step switched
echo "@@previous $(link_target previous)"
prune_releases
echo "@@installed $new"
