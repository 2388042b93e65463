#!/usr/bin/env bash
# mutate.sh -- the mutation check (not part of CI): does the suite catch
# planted bugs? Each tests/mutations/*.patch is one small planted bug against
# the current code; its header names it ("Mutation: ...") and the ctest tests
# that must catch it ("Tests: ..."). The script copies the working tree to a
# scratch directory, builds it once (release), checks that those tests pass
# unmutated, then for each patch: applies it, rebuilds, runs its tests,
# reverts it. One line per patch:
#   caught          a named test failed
#   SURVIVED        every named test passed: the suite misses this bug
#   NO LONGER APPLIES  the patch does not fit the current code (refresh it)
#   DOES NOT BUILD  the mutated code does not compile (fix the patch)
# Exit 0 only if every mutation was caught.
#   tests/mutate.sh [PATCH...]     (default: every tests/mutations/*.patch)
# Environment: SALTRELAY_MUTATE_DIR (scratch, default a new mktemp -d; kept
# on failure), SALTRELAY_WIRE (default ../shared/salt-wire beside the repo).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
wire=${SALTRELAY_WIRE:-$(cd "$repo/.." && pwd)/shared/salt-wire}
scratch=${SALTRELAY_MUTATE_DIR:-$(mktemp -d /tmp/saltrelay-mutate.XXXXXX)}
if [ $# -gt 0 ]; then patches=("$@"); else patches=("$here"/mutations/*.patch); fi
[ -e "${patches[0]}" ] || { echo "mutate: no patches"; exit 1; }

field() { sed -n "s/^$2: *//p" "$1" | head -1; }
regex_of() { local t; t=$(field "$1" Tests); echo "^($(echo "$t" | tr -s ' ' '|'))\$"; }

# The scratch copy sits beside a link to the captures, where CMake looks for them.
mkdir -p "$scratch/src"
ln -sfn "$(dirname "$wire")" "$scratch/shared"
tar -C "$repo" --exclude='./build*' --exclude=./.git -cf - . | tar -C "$scratch/src" -xf -
build() { nice -n 5 cmake --build "$scratch/src/build" -j2 >"$scratch/build.log" 2>&1; }
echo "mutate: scratch copy in $scratch"
nice -n 5 cmake -S "$scratch/src" -B "$scratch/src/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null &&
  build || { tail -30 "$scratch/build.log"; echo "mutate: the unmutated copy does not build"; exit 1; }

run_tests() { # REGEX: 0 if every selected test passed (and at least one was selected)
  (cd "$scratch/src/build" && ctest --no-tests=error --timeout 300 -R "$1" >"$scratch/ctest.log" 2>&1)
}

# Baseline: every test a patch names must exist and pass on the unmutated copy.
all=$(for p in "${patches[@]}"; do field "$p" Tests; done | tr ' ' '\n' | sort -u | grep -v '^$')
names=$(echo "$all" | wc -l)
selected=$(cd "$scratch/src/build" && ctest -N -R "^($(echo "$all" | paste -sd'|'))\$" | sed -n 's/^Total Tests: *//p')
if [ "$selected" != "$names" ]; then
  echo "mutate: the patches name $names tests, ctest knows $selected of them:"; echo "$all"; exit 1
fi
echo "mutate: baseline: $names tests on the unmutated copy"
run_tests "^($(echo "$all" | paste -sd'|'))\$" ||
  { grep -E 'Failed|\*\*\*' "$scratch/ctest.log"; echo "mutate: baseline fails: fix that first"; exit 1; }

caught=0 survived=0 broken=0
for p in "${patches[@]}"; do
  name=$(basename "$p" .patch)
  t0=$(date +%s)
  if ! patch -d "$scratch/src" -p1 --dry-run -s <"$p" >/dev/null 2>&1; then
    printf '%-28s NO LONGER APPLIES (refresh the patch against the current code)\n' "$name"
    broken=$((broken + 1)); continue
  fi
  patch -d "$scratch/src" -p1 -s <"$p"
  if ! build; then
    printf '%-28s DOES NOT BUILD (see %s)\n' "$name" "$scratch/build.log"
    broken=$((broken + 1))
  elif run_tests "$(regex_of "$p")"; then
    printf '%-28s SURVIVED  %s  [%s]\n' "$name" "$(field "$p" Mutation)" "$(field "$p" Tests)"
    survived=$((survived + 1))
  else
    failed=$(grep -oE '[0-9]+ - [^ ]+ \(' "$scratch/ctest.log" | sed 's/^[0-9]* - //; s/ ($//' | paste -sd' ')
    printf '%-28s caught    %s  by %s (%ss)\n' "$name" "$(field "$p" Mutation)" "$failed" "$(( $(date +%s) - t0 ))"
    caught=$((caught + 1))
  fi
  patch -d "$scratch/src" -p1 -R -s <"$p"
done
build || { echo "mutate: the copy no longer builds after reverting"; exit 1; }
echo "mutate: ${#patches[@]} mutations: $caught caught, $survived survived, $broken could not be tried"
if [ $survived -eq 0 ] && [ $broken -eq 0 ]; then
  [ -n "${SALTRELAY_MUTATE_DIR:-}" ] || rm -rf "$scratch"
  exit 0
fi
exit 1
