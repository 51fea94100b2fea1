# Runs on the device after lock.sh and switch.sh, before `crisp-edge personalize` changes
# anything (docs/personalize.md, "On a board"): removes what interrupted operations left (under
# the lock: fails fast while another operation runs) and reports the install: the current and
# previous releases, whether they are ok, their manifests, free space and tools.
set -u
[ -d "$1" ] || { echo "@@no_install"; exit 0; }
cd "$1" || exit 1
echo "@@dir $(pwd)"
take_lock personalize || exit $?
prune_releases
release_lock
echo "@@machine $(uname -m)"
cur=$(link_target current)
prev=$(link_target previous)
echo "@@current $cur"
release_ok "$cur" && echo "@@current_ok yes"
[ -f "$cur/bin/crisp-personalize" ] && echo "@@has_tool yes"
if [ -n "$prev" ]; then
  echo "@@previous $prev"
  release_intact "$prev" && echo "@@previous_intact yes"
fi
echo "@@free_kb $(df -Pk . | awk 'NR == 2 {print $4}')"
[ -d "$cur" ] && echo "@@release_kb $(du -sk "$cur/" | cut -f1)"
for tool in sha256sum tar mktemp base64 cp du; do
  command -v "$tool" >/dev/null 2>&1 || echo "@@missing $tool"
done
for q in qemu-aarch64 qemu-x86_64; do command -v "$q" >/dev/null 2>&1 && echo "@@qemu $q"; done
for link in current previous; do
  rel=$(link_target "$link")
  if [ -n "$rel" ] && [ -f "$rel/manifest.json" ]; then
    echo "@@manifest_begin $link"
    cat "$rel/manifest.json"
    echo
    echo "@@manifest_end $link"
  fi
done
true
