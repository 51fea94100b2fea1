# Releases and the `current` / `previous` links (docs/deploy.md, "The device protocol").
# Only defines functions; call them in the install directory, holding the lock (lock.sh).
# smoke_release needs $runner (runner.sh's pick_runner).
#
# A release is a directory releases/NAME (NAME: the bundle id, or ID.N for a second copy of the
# same bundle while the first is still live). It is "ok" when its files match its SHA256SUMS
# and it has passed a smoke test here (the file .verified, written by smoke_release). Every
# step below leaves `current` at an ok release whenever it was at one before, at any moment a
# process may be killed: releases are never changed in place, links change by rename, and no
# release `current` or `previous` points at is deleted.

link_target() {  # LINK: where it points ("" if it is not a symlink)
  readlink "$1" 2>/dev/null || true
}

real_dir() {  # DIR: its physical path ("" if it is not a directory)
  (cd "$1" 2>/dev/null && pwd -P) || true
}

is_live() {  # REL: does `current` or `previous` point at it (by name, or by any other path)?
  [ -n "$1" ] || return 1
  for _link in current previous; do
    [ "$1" = "$(link_target "$_link")" ] && return 0
    _real=$(real_dir "$1")
    [ -n "$_real" ] && [ "$_real" = "$(real_dir "$_link")" ] && return 0
  done
  return 1
}

release_intact() {  # REL: its files match its SHA256SUMS
  [ -n "$1" ] && [ -f "$1/SHA256SUMS" ] &&
    (cd "$1" && sha256sum -c --quiet --strict SHA256SUMS >/dev/null 2>&1)
}

release_ok() {  # REL: intact and smoke-tested here
  [ -n "$1" ] && [ -f "$1/.verified" ] && release_intact "$1"
}

release_id() {  # REL: the bundle id of releases/ID or releases/ID.N
  _r=${1#releases/}
  echo "${_r%%.*}"
}

new_release_name() {  # ID: releases/ID, or releases/ID.N when that one is live
  _n=0 _r="releases/$1"
  while is_live "$_r"; do
    _n=$((_n + 1)) _r="releases/$1.$_n"
  done
  echo "$_r"
}

set_link() {  # LINK REL: point LINK at REL atomically (a new link renamed over the old one)
  rm -f "$1.new" && ln -s "$2" "$1.new" && mv -T -f "$1.new" "$1"
}

# shellcheck disable=SC2034  # smoke_error is for the caller
smoke_release() {  # REL MODEL INPUT [TOP1]: run REL's crisp-run on its smoke input (not through
  # `current`); on success record REL/.verified (and print @@smoke), else set $smoke_error.
  # shellcheck disable=SC2154  # $runner: set by pick_runner (runner.sh); unquoted: a command
  smoke_out=$(cd "$1" && $runner ./bin/crisp-run "$2" "$3" --top-k 1 2>&1) || {
    smoke_error="the smoke inference failed: $smoke_out"
    return 1
  }
  if [ -n "${4:-}" ]; then
    case "$smoke_out" in
      *"#1 index $4 "*) ;;
      *) smoke_error="the smoke inference answered '$smoke_out', the host runtime top-1 index $4"
         return 1 ;;
    esac
  fi
  echo "@@smoke $smoke_out"
  { date +%s && printf '%s\n' "$smoke_out"; } > "$1/.verified.tmp" &&
    mv -f "$1/.verified.tmp" "$1/.verified"
}

# shellcheck disable=SC2034  # switch_error is for the caller
switch_current() {  # REL: make REL (an ok release) current. The release current was at becomes
  # `previous` if its files are intact (a damaged one is not kept: `previous` stays).
  release_ok "$1" || {
    switch_error="$1 is not an intact, smoke-tested release"
    return 1
  }
  _old=$(link_target current)
  if [ -n "$_old" ] && [ "$_old" != "$1" ] && release_intact "$_old"; then
    # previous first: killed between the two renames, current is still the (ok) old release
    set_link previous "$_old" || { switch_error="cannot update the previous link"; return 1; }
  fi
  set_link current "$1" || { switch_error="cannot switch the current link"; return 1; }
}

restore_current() {  # after a failed operation: if `current` is not an ok release and `previous`
  # is, point `current` back at previous (prints @@restored REL)
  _cur=$(link_target current)
  release_ok "$_cur" && return 0
  _prev=$(link_target previous)
  if [ -n "$_prev" ] && release_ok "$_prev" && set_link current "$_prev"; then
    echo "@@restored $_prev${_cur:+ (instead of $_cur, which is damaged or was never smoke-tested)}"
  fi
}

prune_releases() {  # remove what killed operations leave (half-made links, uploads and other
  # files of incoming/, partial releases) and every release neither current nor previous points
  # at. Only under the lock: incoming/ belongs to the operation holding it.
  rm -f current.new previous.new
  rm -rf incoming/*
  for _r in releases/* releases/.[!.]*; do
    [ -e "$_r" ] || [ -L "$_r" ] || continue
    is_live "$_r" || rm -rf "$_r"
  done
}
