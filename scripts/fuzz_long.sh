#!/usr/bin/env bash
# `make fuzz-long` (issue 14): every fuzz target for a fixed number of executions, one after
# another, then a table of executions, crashes and wall time per target. Exits non-zero if any
# target crashed (libFuzzer stops a target at its first crash, leak or timeout and writes the
# input to build/fuzz/artifacts/; the Python reader's failing input is printed by hypothesis).
#
# Run from the repository root after `make build-fuzz`. Environment:
#   FUZZ_LONG_RUNS  "target=runs ..." (defaults below: shares chosen by each target's speed under
#                   ASan+UBSan: about 10.3 M executions, most of an hour on two busy cores)
#   PY              the Python with crisp_edge and hypothesis (default .venv/bin/python)
#   FUZZ_LONG_LOG   where each target's full output goes (default build/fuzz/long)
set -uo pipefail

RUNS="${FUZZ_LONG_RUNS:-loader=80000 image=1000000 npy=8000000 cli=1200000 read_py=60000}"
PY="${PY:-.venv/bin/python}"
LOG="${FUZZ_LONG_LOG:-build/fuzz/long}"
FLAGS=(-rss_limit_mb=2048 -timeout=10 -print_final_stats=1
       "-artifact_prefix=$PWD/build/fuzz/artifacts/")
mkdir -p "$LOG" build/fuzz/artifacts

declare -A corpus=([loader]=build/fuzz/corpus [image]=build/fuzz/image-corpus
                   [npy]=build/fuzz/npy-corpus [cli]=build/fuzz/cli-corpus)
rows=()
failed=0
started=$(date -u +%s)
# The commit the targets were built from (build-fuzz just ran): recorded before the run.
commit="$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- runtime tests crisp_edge scripts \
          || echo ' (+ uncommitted changes)')"
for pair in $RUNS; do
  target=${pair%%=*} runs=${pair#*=}
  out="$LOG/$target.log"
  t0=$(date +%s.%N)
  if [ "$target" = read_py ]; then
    CRISP_READ_FUZZ_LONG_EXAMPLES=$runs "$PY" -m pytest -q -s -p no:cacheprovider \
      -m fuzz_long tests/format/test_read_fuzz.py >"$out" 2>&1
    rc=$?
    execs=$(sed -n 's/^read_fuzz: \([0-9]*\) executions.*/\1/p' "$out" | tail -1)
  else
    "build/fuzz/runtime/fuzz_$target" "${corpus[$target]}" -runs="$runs" "${FLAGS[@]}" \
      >"$out" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out" | tail -1)
  fi
  secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  crashes=0
  if [ "$rc" -ne 0 ]; then
    crashes=1
    failed=1
    echo "fuzz-long: $target FAILED (exit $rc); see $out" >&2
    grep -E "ERROR|SUMMARY|fuzz_loader:|Falsifying|Error" "$out" | head -5 >&2
  fi
  rate=$(awk -v n="${execs:-0}" -v s="$secs" 'BEGIN { printf "%.0f", n / (s + 0.001) }')
  rows+=("| fuzz_$target | ${execs:-?} | $crashes | $(printf %.0f "$secs") | $rate |")
  echo "fuzz-long: fuzz_$target: ${execs:-?} executions, $crashes crashes, $(printf %.0f "$secs") s"
done

total=0
for r in "${rows[@]}"; do
  n=$(echo "$r" | cut -d'|' -f3 | tr -d ' ')
  [[ "$n" =~ ^[0-9]+$ ]] && total=$((total + n))
done
echo
echo "fuzz-long: started $(date -u -d "@$started" '+%Y-%m-%d %H:%M UTC'), commit $commit"
echo "| target | executions | crashes | wall s | exec/s |"
echo "|--------|-----------:|--------:|-------:|-------:|"
printf '%s\n' "${rows[@]}"
echo "| total | $total | | $(( $(date -u +%s) - started )) | |"
exit $failed
