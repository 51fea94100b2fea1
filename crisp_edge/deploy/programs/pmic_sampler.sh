i=0
while [ "$i" -lt %(max)d ]; do
  t0=%(now)s
  out=$(vcgencmd pmic_read_adc 2>&1) ||
    { printf '!vcgencmd pmic_read_adc failed: %%s\n' "$out"; exit 1; }
  t1=%(now)s
  printf 'B %%s %%s\n%%s\nE\n' "$t0" "$t1" "$out" || exit 0
  i=$((i + 1))
  sleep %(period)s
done
