vf=%(volts)s; cf=%(amps)s; i=0
while [ "$i" -lt %(max)d ]; do
  t0=%(now)s
  read -r v < "$vf" || { echo "!cannot read $vf"; exit 1; }
  read -r c < "$cf" || { echo "!cannot read $cf"; exit 1; }
  t1=%(now)s
  echo "S $t0 $t1 $v $c" || exit 0
  i=$((i + 1))
  sleep %(period)s
done
