#!/usr/bin/env bash
# run.sh -- the whole test suite, as CI runs it (.ci/run calls this):
# installs what is missing, builds a release build and a Debug build with
# AddressSanitizer/UBSan, runs every ctest test on both, a subset under
# valgrind, and the fuzzers briefly; prints what each stage took at the end.
# Tests run side by side (ctest -j; they mostly wait on processes, sockets
# and timeouts): SALTRELAY_TEST_JOBS=N changes how many (default 4). A test
# that needs the machine alone has RUN_SERIAL in its tests/*.cmake.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
test_jobs=${SALTRELAY_TEST_JOBS:-4}

# stage NAME COMMAND...: run it; its wall time and the CPU time of what it
# ran (children's user + system, from /proc) go to the summary at the end
summary=()
children_cpu() { awk '{print $16 + $17}' /proc/$$/stat; }
stage() {
  local name=$1 t0=$SECONDS c0 rc=0
  shift
  c0=$(children_cpu)
  echo "== $name"
  "$@" || rc=$?
  summary+=("$(printf '%6d s wall %6d s CPU  %s%s' $((SECONDS - t0)) \
    $((($(children_cpu) - c0) / $(getconf CLK_TCK))) "$name" "$([ $rc = 0 ] || echo " (FAILED)")")")
  return $rc
}

build() { # DIR CMAKE-ARGS...
  local dir=$1; shift
  cmake -S . -B "$dir" "$@" >/dev/null && cmake --build "$dir" -j"$jobs" >/dev/null
}

stage "dependencies (tests/deps.sh)" bash tests/deps.sh
stage "release build" build build -DCMAKE_BUILD_TYPE=RelWithDebInfo
stage "sanitizer build (ASan + UBSan)" build build-asan -DCMAKE_BUILD_TYPE=Debug -DSALTRELAY_SANITIZE=ON

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=98
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
status=0
flaky=()
suite() { # DIR: every test once; up to 3 failed tests are rerun once, alone. Fails
  # again: the suite fails. Passes then: named below as flaky, never silently;
  # a flaky test is a bug to find (DEVELOPERS.md).
  local dir=$1 failed
  (cd "$dir" && ctest -j"$test_jobs" --output-on-failure --timeout 600) && return 0
  failed=$(sed -n 's/^[0-9]*:\(.*\)$/\1/p' "$dir/Testing/Temporary/LastTestsFailed.log" | tr '\n' ' ')
  [ "$(wc -w <<<"$failed")" -le 3 ] || return 1 # more is no timing accident
  echo "== $dir: rerunning what failed, once, alone: $failed"
  (cd "$dir" && ctest --output-on-failure --timeout 600 --rerun-failed) || return 1
  flaky+=("$dir: $failed")
}
stage "tests, release build (ctest -j$test_jobs)" suite build || status=1
# ctest starts the longest tests first when it knows their times: the
# release run's are a fair guess for the sanitizer build's first run
cost=Testing/Temporary/CTestCostData.txt
if [ -f "build/$cost" ] && [ ! -f "build-asan/$cost" ]; then
  mkdir -p "build-asan/$(dirname "$cost")" && cp "build/$cost" "build-asan/$cost"
fi
stage "tests, sanitizer build (ctest -j$test_jobs)" suite build-asan || status=1

valgrind_subset() {
  # Each name must select exactly one test: ctest -R alone exits 0 on no match,
  # so a renamed test would silently leave this stage empty.
  local valgrind_tests=(test_pub.test_sigterm_restart_exactly_once test_pub.test_replay_captures
                        test_return.test_registry_auth test_return.test_oversize_refused)
  local regex selected
  regex="^($(IFS='|'; echo "${valgrind_tests[*]}"))\$"
  selected=$(cd build && ctest -N -R "$regex" | sed -n 's/^Total Tests: *//p')
  if [ "$selected" != "${#valgrind_tests[@]}" ]; then
    echo "valgrind: the regex selects ${selected:-no} tests, expected ${#valgrind_tests[@]}: ${valgrind_tests[*]}"
    return 1
  fi
  (cd build && SALTRELAY_VALGRIND=1 ctest --output-on-failure --timeout 900 --no-tests=error -R "$regex")
}
stage "valgrind (memcheck) on the daemons, a subset" valgrind_subset || status=1
stage "fuzzers (short runs)" bash tests/fuzz/run.sh || status=1

echo "== time per stage ($(nproc) cores; load average now $(cut -d' ' -f1-3 /proc/loadavg))"
printf '   %s\n' "${summary[@]}"
if [ ${#flaky[@]} -gt 0 ]; then
  echo "== FLAKY: failed once, passed when rerun alone (look into each):"
  printf '   %s\n' "${flaky[@]}"
fi
exit $status
