readings() {  # PHASE
  p=$1
  for f in /sys/devices/system/cpu/cpu[0-9]*/cpufreq; do
    [ -d "$f" ] || continue
    c=$(basename "$(dirname "$f")")
    [ -r "$f/scaling_governor" ] && echo "@@$p.governor $c $(cat "$f/scaling_governor")"
    [ -r "$f/scaling_cur_freq" ] && echo "@@$p.freq_khz $c $(cat "$f/scaling_cur_freq")"
  done
  for z in /sys/class/thermal/thermal_zone[0-9]*; do
    [ -r "$z/temp" ] || continue
    echo "@@$p.temp_millic $(cat "$z/type" 2>/dev/null || basename "$z") $(cat "$z/temp")"
  done
  command -v vcgencmd >/dev/null 2>&1 && echo "@@$p.throttled $(vcgencmd get_throttled 2>/dev/null)"
  true
}
device_info() {
  echo "@@machine $(uname -m)"
  echo "@@kernel $(uname -r)"
  echo "@@hostname $(uname -n)"
  echo "@@cpus $(getconf _NPROCESSORS_ONLN 2>/dev/null)"
  [ -r /proc/meminfo ] && echo "@@memtotal_kb $(awk '/^MemTotal/ {print $2}' /proc/meminfo)"
  if [ -r /proc/cpuinfo ]; then
    for key in "model name" "Model" "Hardware" "CPU part"; do
      line=$(grep -m1 "^${key}[[:space:]]*:" /proc/cpuinfo) && echo "@@cpuinfo $line"
    done
  fi
  [ -r /proc/device-tree/model ] && echo "@@dt_model $(tr -d '\0' < /proc/device-tree/model)"
  true
}
