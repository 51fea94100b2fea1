# Runs on the device after runner.sh, lock.sh and switch.sh, with the images (a tar) on stdin
# when there are any: the first session of `crisp-edge personalize` on a board
# (docs/personalize.md, "On a board"). Under the lock: copy `current` into a new, not yet live
# release directory, run that release's own crisp-personalize on the originally deployed model
# (models/NAME.orig.crisp) and write models/NAME.crisp there; print the tool's output and the
# new model (base64). Nothing live is changed: `current` and its files stay as they are; the
# copy waits for the second session (personalize_finish.sh), and any other operation's
# prune_releases removes it.
set -u
dir=$1 cur=$2 name=$3 sha=$4 arch=$5 qcpu=$6
shift 6  # the rest: crisp-personalize's options (--classes ..., --threads ..., ...)
enter_locked "$dir" personalize || exit $?
inc="" part=""
fail() {  # MESSAGE: remove what this session made; nothing live was touched
  rm -rf "$inc" "$part"
  echo "$1; current: $(link_target current | grep . || echo none), unchanged" >&2
  exit 1
}
prune_releases
[ "$(link_target current)" = "$cur" ] ||
  fail "current changed meanwhile (to $(link_target current)): another operation ran; run personalize again"
release_ok "$cur" || fail "current ($cur) is not an intact, smoke-tested release; deploy again"
[ -f "$cur/bin/crisp-personalize" ] ||
  fail "the installed bundle has no bin/crisp-personalize (it predates on-board personalisation); deploy again"
inc=$(mktemp -d incoming/personalize.XXXXXX) || fail "cannot create a directory in $dir/incoming"
if [ -n "$sha" ]; then
  err=$(cat 2>&1 > "$inc/images.tar") || fail "receiving the images into $dir/$inc failed: $err"
  got=$(sha256sum "$inc/images.tar" | cut -d' ' -f1)
  [ "$got" = "$sha" ] ||
    fail "the uploaded images are corrupted or cut off (sha256 $got, expected $sha); nothing was changed"
  # shellcheck disable=SC2015  # A && B || handler: the handler is meant to run when A or B fails
  mkdir "$inc/images" && err=$(tar -xf "$inc/images.tar" -C "$inc/images" 2>&1) ||
    fail "unpacking the images failed: $err"
  rm -f "$inc/images.tar"
  set -- --images "$(pwd)/$inc/images" "$@"
fi
step received
part=$(mktemp -d releases/personalize.XXXXXX) || fail "cannot create a directory in $dir/releases"
# A copy, not hard links: the files of the live release are never written through another name.
err=$(cp -Rp "$cur/." "$part/" 2>&1) || fail "copying $cur failed: $err"
# shellcheck disable=SC2015  # A && B || handler: the handler is meant to run when A or B fails
chmod 755 "$part" && rm -f "$part/.verified" "$part/.verified.tmp" || fail "cannot prepare $part"
src="models/$name.orig.crisp"  # re-personalising always starts from the deployed model
if [ ! -f "$part/$src" ]; then
  [ -f "$part/models/$name.crisp" ] || fail "the installed bundle has no models/$name.crisp"
  mv "$part/models/$name.crisp" "$part/$src" || fail "cannot keep $part/$src"
fi
step copied
pick_runner "$arch" "$qcpu" || fail "cannot run the bundle's binaries here"
# shellcheck disable=SC2154  # $runner: set by pick_runner (runner.sh); unquoted: a command
out=$(cd "$part" && $runner ./bin/crisp-personalize "$src" "$@" --out "models/$name.crisp" 2>&1) ||
  fail "crisp-personalize failed on the device: $out"
step personalized
printf '%s\n' "$out" | sed 's/^/@@tool /'
echo "@@partial $part"
echo "@@model_sha256 $(sha256sum "$part/models/$name.crisp" | cut -d' ' -f1)"
echo "@@model_begin"
base64 < "$part/models/$name.crisp" || fail "cannot read the new model back"
echo "@@model_end"
rm -rf "$inc"
step sent
