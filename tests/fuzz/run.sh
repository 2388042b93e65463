#!/usr/bin/env bash
# run.sh -- build the libFuzzer targets in their own build dir and run each
# for a bounded time from seed corpora made of the salt-wire captures,
# conf/*.yaml, the job cache samples of tests/data and INFO replication
# answers of Redis 7.0 (seeds-replinfo/), tree sync records (seeds-treerec/)
# and Sentinels' +switch-master messages (seeds-switchmsg/). Exit 1 if clang
# is missing (CI must not pass without fuzzing), if a target ran no input,
# or if a fuzzer found a crash, a leak or a broken invariant (the input is
# kept in BUILD/fuzz-artifacts/ and its log printed).
#   tests/fuzz/run.sh [SECONDS_PER_TARGET]         (default 10; what CI runs)
#   tests/fuzz/run.sh --long [SECONDS_PER_TARGET]  (default 600; not in CI)
# Targets run side by side, one per core. Both modes also start from the
# corpus kept in the repository
# (tests/fuzz/corpus/TARGET/: inputs that reached new code, minimized). The
# long mode grows it: new inputs are merged into it (-merge=1 keeps only
# those adding coverage), so commit what it adds.
# Environment: SALTRELAY_FUZZ_BUILD (default build-fuzz), SALTRELAY_WIRE.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
long=0
if [ "${1:-}" = --long ]; then
  long=1
  shift
fi
secs=${1:-$([ $long = 1 ] && echo 600 || echo 10)}
kept=$here/corpus
build=${SALTRELAY_FUZZ_BUILD:-$repo/build-fuzz}
wire=${SALTRELAY_WIRE:-$(cd "$repo/.." && pwd)/shared/salt-wire}
targets="entry channel envelope config reqrec jobcache replinfo treerec switchmsg"

if ! command -v clang >/dev/null 2>&1; then
  echo "fuzz: FAILED: no clang (tests/deps.sh installs it)"
  exit 1
fi
cmake -S "$repo" -B "$build" -DCMAKE_C_COMPILER=clang -DSALTRELAY_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug \
  >"$build.cmake.log" 2>&1 || { cat "$build.cmake.log"; echo "fuzz: cmake failed"; exit 1; }
cmake --build "$build" -j"$(nproc)" --target fuzz_seeds $(printf 'fuzz_%s ' $targets) >"$build.make.log" 2>&1 ||
  { tail -40 "$build.make.log"; echo "fuzz: build failed"; exit 1; }

# Seeds are rewritten each run; what the fuzzers learn stays in corpus/.
seeds=$build/fuzz-seeds
rm -rf "$seeds" && mkdir -p $(printf "$seeds/%s " $targets) "$build/fuzz-artifacts"
"$build/tests/fuzz/fuzz_seeds" "$wire" "$seeds" || { echo "fuzz: no seeds (is $wire there?)"; exit 1; }
cp "$repo"/conf/*.yaml "$seeds/config/" 2>/dev/null || true
cp "$here"/seeds-config/* "$seeds/config/"
cp "$here"/seeds-replinfo/* "$seeds/replinfo/"
cp "$here"/seeds-treerec/* "$seeds/treerec/"
cp "$here"/seeds-switchmsg/* "$seeds/switchmsg/"
# every file of the real job caches (.minions.p, .load.p, return.p, jid): msgpack lists and more
n=0
find "$repo"/tests/data/jobcache*/ -type f ! -name '*.md' -print0 | sort -z |
  while IFS= read -r -d '' f; do n=$((n + 1)); cp "$f" "$seeds/jobcache/seed-$n"; done

export ASAN_OPTIONS=detect_leaks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# fuzz_one TARGET: runs it, writes its report line(s) to $build/fuzz-TARGET.result
# and exits 1 if it failed
fuzz_one() {
  local t=$1 corpus=$build/fuzz-corpus/$1 log=$build/fuzz-$1.log rc runs cov dict=()
  mkdir -p "$corpus" "$kept/$t"
  [ "$t" = config ] && dict=(-dict="$seeds/config.dict")
  exec >"$build/fuzz-$t.result"
  "$build/tests/fuzz/fuzz_$t" "$corpus" "$kept/$t" "$seeds/$t" "${dict[@]}" -max_total_time="$secs" -timeout=10 \
    -rss_limit_mb=2048 -artifact_prefix="$build/fuzz-artifacts/$t-" \
    -print_final_stats=1 >"$log" 2>&1
  rc=$?
  if [ $long = 1 ] && [ $rc -eq 0 ]; then
    # keep what reached new code: merged (minimized) into the repository's corpus
    "$build/tests/fuzz/fuzz_$t" -merge=1 "$kept/$t" "$corpus" "${dict[@]}" -rss_limit_mb=2048 \
      >"$log.merge" 2>&1 || echo "fuzz_$t: merge into $kept/$t failed (see $log.merge)"
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
  if [ $rc -eq 0 ] && ! [ "${runs:-0}" -gt 0 ] 2>/dev/null; then
    echo "fuzz_$t: FAILED: no input was run; log $log:"
    tail -20 "$log"
    return 1
  elif [ $rc -ne 0 ]; then
    echo "fuzz_$t: FAILED (exit $rc) after ${runs:-?} runs; log $log:"
    grep -v '^#' "$log" | tail -40
    return 1
  fi
  echo "fuzz_$t: ok, ${runs:-?} runs in ${secs} s, ${cov:-cov: ?}, corpus $(ls "$corpus" | wc -l) files" \
    "(kept in the repository: $(ls "$kept/$t" | wc -l))"
}

# one target per core at a time (each fuzzer is one process); reports in target order
status=0
running=0
for t in $targets; do
  if [ $running -ge "$(nproc)" ]; then
    wait -n || status=1
    running=$((running - 1))
  fi
  (fuzz_one "$t") &
  running=$((running + 1))
done
while [ $running -gt 0 ]; do
  wait -n || status=1
  running=$((running - 1))
done
for t in $targets; do
  cat "$build/fuzz-$t.result"
done
exit $status
