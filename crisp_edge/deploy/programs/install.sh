set -u
dir=$1 up=$2 id=$3 sha=$4 arch=$5 qcpu=$6 model=$7 input=$8 top1=$9
cd "$dir" || { echo "cannot enter $dir" >&2; exit 1; }
new="releases/$id"
fail() { rm -rf "$up" "$new.partial"; echo "$1" >&2; exit 1; }
got=$(sha256sum "$up/bundle.tar.gz" | cut -d' ' -f1)
[ "$got" = "$sha" ] || fail "the uploaded bundle is corrupted (sha256 $got, expected $sha); nothing was changed"
# shellcheck disable=SC2015  # A && B || handler: the handler is meant to run when A or B fails
rm -rf "$new.partial" && mkdir -p "$new.partial" || fail "cannot create $dir/$new.partial"
err=$(tar -xzf "$up/bundle.tar.gz" -C "$new.partial" --strip-components=1 2>&1) ||
  fail "unpacking the bundle failed: $err; nothing was changed"
err=$(cd "$new.partial" && sha256sum -c --quiet --strict SHA256SUMS 2>&1) ||
  fail "unpacked files do not match their checksums: $err; nothing was changed"
# shellcheck disable=SC2015  # A && B || handler: the handler is meant to run when A or B fails
rm -rf "$new" && mv "$new.partial" "$new" || fail "cannot move $new into place"
rm -rf "$up"
prev=$(readlink current 2>/dev/null || true)
[ "$prev" = "$new" ] && prev=""
echo "@@previous ${prev#releases/}"
rollback() {
  if [ -n "$prev" ] && [ -d "$prev" ]; then
    ln -sfn "$prev" current.new && mv -T current.new current
  else
    rm -f current
  fi
  rm -rf "$new"
  echo "$1; rolled back to ${prev:-no bundle}" >&2
  exit 1
}
# shellcheck disable=SC2015  # A && B || handler: the handler is meant to run when A or B fails
ln -sfn "$new" current.new && mv -T current.new current || rollback "cannot switch the current link"
pick_runner "$arch" "$qcpu" || rollback "cannot run the bundle's binaries here"
out=$(cd current && $runner ./bin/crisp-run "$model" "$input" --top-k 1 2>&1) ||
  rollback "the smoke inference failed: $out"
echo "@@smoke $out"
if [ -n "$top1" ]; then
  case "$out" in
    *"#1 index $top1 "*) ;;
    *) rollback "the smoke inference answered '$out', the host runtime top-1 index $top1" ;;
  esac
fi
if [ -n "$prev" ]; then ln -sfn "$prev" previous.new && mv -T previous.new previous; else rm -f previous; fi
for r in releases/*; do
  [ "$r" = "$new" ] || [ "$r" = "$prev" ] || rm -rf "$r"
done
echo "@@installed $id"
