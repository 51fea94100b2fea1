set -u
dir=$1 arch=$2 qcpu=$3 threads=$4 warmup=$5 runs=$6
shift 6
cd "$dir/current" 2>/dev/null || { echo "no bundle is installed in $dir: run crisp-edge deploy first" >&2; exit 1; }
pick_runner "$arch" "$qcpu" || exit 1
device_info
echo "@@manifest $(tr -d '\n' < manifest.json)"
readings before
for model in "$@"; do
  out=$($runner ./bin/crisp-bench "$model" --threads "$threads" --warmup "$warmup" \
         --runs "$runs" --json 2>&1) || { echo "crisp-bench failed on $model: $out" >&2; exit 1; }
  echo "@@bench $model $(printf '%s' "$out" | tr -d '\n')"
done
readings after
