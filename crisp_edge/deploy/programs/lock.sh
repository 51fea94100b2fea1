# One operation at a time per install directory (docs/deploy.md, "The device protocol").
# Defines take_lock and release_lock (call them in the install directory: cd there first), step
# (progress, and the kill tests' hook) and enter_locked (make and enter the directory, take the lock).
#
# The lock is the symlink .lock; its target is the owner record
#   pid=PID start=TICKS since=EPOCH host=HOSTNAME op=OPERATION
# so taking it (symlink(2): fails if .lock exists) and writing the owner are one atomic step.
# take_lock OP takes it, or recovers it when its owner is gone (same host, and that pid is not
# running, or runs another process: START is the process's start time) or when it is older than
# $lock_timeout s, saying so on stdout ("@@lock_recovered REASON"); while another live operation
# holds it, it prints "@@locked PID SINCE OP HOST" and returns 75. release_lock removes the lock
# only if it is still this shell's; take_lock arranges for it to run on exit (HUP/INT/TERM/PIPE
# too).
# SIGKILL or a power cut leaves the lock behind: the next take_lock recovers it.
lock_timeout=${lock_timeout:-3600}

proc_start() {  # PID: its start time (clock ticks after boot, /proc/PID/stat field 22), or ""
  # when it is not running: no such process, or a zombie (exited, its parent has not reaped it)
  # The command name (field 2) may hold spaces: count the fields after its closing ") ".
  _stat=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 0
  case $_stat in Z* | X* | '') return 0 ;; esac
  echo "$_stat" | cut -d' ' -f20
}

lock_field() {  # NAME RECORD: the value of NAME=... in an owner record
  for _w in $2; do  # (word splitting wanted: the record is NAME=VALUE words)
    case $_w in "$1="*) echo "${_w#*=}"; return 0 ;; esac
  done
}

lock_owner_alive() {  # PID START HOST: can the owner still be running?
  [ "$3" = "$lock_host" ] || return 0  # another machine's (a shared disk): only the age tells
  if [ -d /proc/self ]; then
    _start=$(proc_start "$1")
    [ -n "$_start" ] || return 1
    [ -z "$2" ] || [ "$_start" = "$2" ]
  else
    _err=$(kill -0 "$1" 2>&1) && return 0
    case $_err in *ermitted*) return 0 ;; esac  # EPERM: alive, another user's
    return 1
  fi
}

take_lock() {  # OP
  lock_host=$(uname -n)
  lock_path="$(pwd)/.lock"
  lock_me="pid=$$ start=$(proc_start $$) since=$(date +%s) host=$lock_host op=$1"
  if [ -d .lock ] && [ ! -L .lock ]; then
    echo "$lock_path is a directory, not a crisp-edge lock; remove it" >&2
    return 1
  fi
  _tries=0
  while ! ln -s "$lock_me" .lock 2>/dev/null; do
    _tries=$((_tries + 1))
    if [ "$_tries" -gt 10 ]; then
      echo "cannot take the lock $lock_path (it keeps changing hands)" >&2
      return 1
    fi
    _owner=$(readlink .lock 2>/dev/null) || continue  # released meanwhile: try again
    _o_pid=$(lock_field pid "$_owner")
    _o_since=$(lock_field since "$_owner")
    _o_host=$(lock_field host "$_owner")
    _o_op=$(lock_field op "$_owner")
    _why=""
    case $_o_pid$_o_since in
      '' | *[!0-9]*) _why="a lock whose owner record '$_owner' is not one crisp-edge writes" ;;
    esac
    if [ -z "$_why" ]; then
      _age=$(($(date +%s) - _o_since))
      if [ "$_age" -gt "$lock_timeout" ]; then
        _why="the lock of ${_o_op:-?} pid $_o_pid on $_o_host: it is $_age s old (timeout $lock_timeout s)"
      elif ! lock_owner_alive "$_o_pid" "$(lock_field start "$_owner")" "$_o_host"; then
        _why="the lock of ${_o_op:-?} pid $_o_pid (since $_o_since): its process is gone"
      fi
    fi
    if [ -z "$_why" ]; then
      echo "@@locked $_o_pid $_o_since ${_o_op:-?} $_o_host"
      echo "another ${_o_op:-operation} is running in $(pwd) (pid $_o_pid on $_o_host since $_o_since); wait or remove $lock_path" >&2
      return 75
    fi
    # Break it only if it is still the record judged: move it aside (a rename), then check. If a
    # concurrent breaker replaced it with its own fresh lock meanwhile, put that one back.
    _aside=".lock.stale.$$"
    mv -f .lock "$_aside" 2>/dev/null || continue
    if [ "$(readlink "$_aside" 2>/dev/null)" = "$_owner" ]; then
      echo "@@lock_recovered recovered $_why"
    else
      ln -s "$(readlink "$_aside")" .lock 2>/dev/null
    fi
    rm -f "$_aside"
  done
  trap release_lock EXIT
  trap 'exit 129' HUP
  trap 'exit 130' INT
  trap 'exit 143' TERM
  trap 'exit 141' PIPE  # the SSH connection is gone: exit (through release_lock) at the next write
}

release_lock() {
  if [ -n "${lock_path:-}" ] && [ "$(readlink "$lock_path" 2>/dev/null)" = "$lock_me" ]; then
    rm -f "$lock_path"
  fi
}

step() {  # NAME: progress on stdout ("@@step NAME"); a test stops the shell here when asked to
  echo "@@step $1"
  if [ "$1" = "${crisp_test_kill_at:-}" ]; then kill -KILL $$; fi
}

enter_locked() {  # DIR OP: the install directory made and entered, and its lock taken by OP
  mkdir -p "$1/releases" "$1/incoming" || return 1
  cd "$1" || return 1
  take_lock "$2" || return $?
  step locked
}
