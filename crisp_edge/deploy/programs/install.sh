# Runs on the device with the bundle archive on stdin, after runner.sh, lock.sh and switch.sh:
# take the lock, receive and verify the archive, unpack and verify a new release, smoke-test it,
# then switch `current` to it (docs/deploy.md, "The device protocol").
set -u
dir=$1 id=$2 sha=$3 arch=$4 qcpu=$5 model=$6 input=$7 top1=${8:-}
enter_locked "$dir" deploy || exit $?
up="" new=""
fail() {  # MESSAGE: undo what is not live, make sure `current` is an ok release if one is left
  rm -rf "$up"
  if [ -n "$new" ]; then
    rm -rf "$new.partial"
    is_live "$new" || rm -rf "$new"
  fi
  restore_current
  prune_releases
  echo "$1; current: $(link_target current | grep . || echo none)" >&2
  exit 1
}
prune_releases
if [ "$(release_id "$(link_target current)")" = "$id" ] && release_ok "$(link_target current)"; then
  echo "@@unchanged $id"  # installed meanwhile, by a deploy this one waited for
  exit 0
fi
step cleaned
up=$(mktemp -d incoming/upload.XXXXXX) || fail "cannot create an upload directory in $dir/incoming"
err=$(cat 2>&1 > "$up/bundle.tar.gz") || fail "receiving the bundle into $dir/$up failed: $err"
step uploaded
got=$(sha256sum "$up/bundle.tar.gz" | cut -d' ' -f1)
[ "$got" = "$sha" ] || fail "the uploaded bundle is corrupted (sha256 $got, expected $sha); nothing was changed"
new=$(new_release_name "$id")
# shellcheck disable=SC2015  # A && B || handler: the handler is meant to run when A or B fails
rm -rf "$new" "$new.partial" && mkdir -p "$new.partial" || fail "cannot create $dir/$new.partial"
err=$(tar -xzf "$up/bundle.tar.gz" -C "$new.partial" --strip-components=1 2>&1) ||
  fail "unpacking the bundle failed: $err; nothing was changed"
rm -rf "$up"
step unpacked
err=$(cd "$new.partial" && sha256sum -c --quiet --strict SHA256SUMS 2>&1) ||
  fail "unpacked files do not match their checksums: $err; nothing was changed"
mv "$new.partial" "$new" || fail "cannot move $new into place"
step placed
pick_runner "$arch" "$qcpu" || fail "cannot run the bundle's binaries here; nothing was switched"
smoke_release "$new" "$model" "$input" "$top1" || fail "$smoke_error; nothing was switched"
step verified
switch_current "$new" || fail "$switch_error"
step switched
prev=$(link_target previous)
echo "@@previous $(release_id "$prev")"
prune_releases
step pruned
echo "@@installed $id"
