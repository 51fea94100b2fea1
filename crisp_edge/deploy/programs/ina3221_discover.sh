root=%(root)s
printf 'H %%s\n' "$(uname -n)"
for d in "$root"/class/hwmon/hwmon*; do
  [ -r "$d/name" ] || continue
  read -r name < "$d/name" || continue
  [ "$name" = ina3221 ] || continue
  for l in "$d"/in*_label; do
    [ -r "$l" ] || continue
    read -r label < "$l" || continue
    n=${l##*/in}; n=${n%%_label}
    printf 'R %%s/in%%s_input\t%%s/curr%%s_input\t%%s\n' "$d" "$n" "$d" "$n" "$label"
  done
done
for d in "$root"/bus/i2c/drivers/ina3221x/*/iio:device*; do
  [ -d "$d" ] || continue
  for l in "$d"/rail_name_*; do
    [ -r "$l" ] || continue
    read -r label < "$l" || continue
    n=${l##*/rail_name_}
    printf 'I %%s/in_voltage%%s_input\t%%s/in_current%%s_input\t%%s\n' "$d" "$n" "$d" "$n" "$label"
  done
done
[ -d "$root/bus/i2c/drivers/ina3221x" ] && echo 'X ina3221x'
exit 0
