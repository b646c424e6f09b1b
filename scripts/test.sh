#!/usr/bin/env bash
# Runs the whole test suite (unit + integration against real Kamailio/sipp)
# and ends with the line "N passed, N failed" counted from the test cases'
# own results. Exits non-zero on any failure.
#
# Phases (docs/reliability.md), all counted in the last line:
#   suite  bazel test //...                                  (every test case)
#   asan   the whole suite again under AddressSanitizer + UBSan
#   tsan   the tests tagged "threaded" under ThreadSanitizer
#   fuzz   scripts/fuzz.sh all 30 (each fuzz target counts as one test)
# A sanitizer report from any process (a test or a gateway it started)
# counts as one failed test. TELESTRA_TEST_PHASES="suite fuzz" runs a
# subset; TELESTRA_FUZZ_SECONDS changes the fuzzing time per target.
set -uo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh || { echo "0 passed, 1 failed"; exit 1; }

# Wall time on 2 cores from a warm disk cache (docs/reliability.md): suite
# 3 min, asan 6-12 min (16 when sanitized code must be recompiled), tsan 2-4
# min, fuzz 4 min (7 targets): 20-35 min in all, and under an hour from a cold cache.
phases=${TELESTRA_TEST_PHASES:-suite asan tsan fuzz}
# A phase that would start after this many minutes is not run (and says
# so): CI stops everything at 90 minutes.
budget_minutes=${TELESTRA_TEST_BUDGET_MINUTES:-70}
script_start=$(date +%s)
fuzz_seconds=${TELESTRA_FUZZ_SECONDS:-30}
total_passed=0
total_failed=0
timings=()
# Every failed case or target, "phase label case", listed again at the end
# so that the last lines of a long log name what failed.
failures_file=$(mktemp "${TMPDIR:-/tmp}/telestra-failures.XXXXXX")
trap 'rm -f "$failures_file"' EXIT

# Counts test cases from the JUnit XML files of TARGETS under TESTLOGS;
# prints "passed failed".
count_cases() {
  TESTLOGS="$1" TARGETS="$2" PHASE="$3" FAILURES="$failures_file" python3 - <<'PY'
import os, sys
import xml.etree.ElementTree as ET
passed = failed = 0
failures = open(os.environ["FAILURES"], "a")
def note(label, what):
    failures.write(f"{os.environ['PHASE']} {label} {what}\n")
root = os.path.realpath(os.environ["TESTLOGS"])
for label in os.environ["TARGETS"].split():
    package, name = label.lstrip("/").split(":")
    path = os.path.join(root, package, name, "test.xml")
    if not os.path.exists(path):
        failed += 1
        note(label, "(no result)")
        print(f"no result for {label}", file=sys.stderr)
        continue
    try:
        tree = ET.parse(path)
    except ET.ParseError:
        failed += 1
        note(label, "(unreadable result)")
        print(f"unreadable result: {path}", file=sys.stderr)
        continue
    cases = tree.getroot().iter("testcase")
    found = False
    for case in cases:
        found = True
        if case.find("failure") is not None or case.find("error") is not None:
            failed += 1
            note(label, f"{case.get('classname', '')}.{case.get('name', '')}")
        elif case.get("status", "run") == "notrun" or case.find("skipped") is not None:
            continue
        else:
            passed += 1
    if not found:
        # A test binary that produced no cases (crashed early): count it.
        suites = list(tree.getroot().iter("testsuite"))
        errors = sum(int(s.get("errors", 0)) + int(s.get("failures", 0)) for s in suites)
        if errors:
            failed += 1
            note(label, "(crashed before any case)")
print(f"{passed} {failed}")
PY
}

# Adds a phase's counts to the totals; a failed bazel run without a failed
# case counts as one failure.
add_phase() {
  local name=$1 status=$2 summary=$3 seconds=$4 passed failed
  read -r passed failed <<<"$summary"
  if [[ $status -ne 0 && $failed -eq 0 ]]; then
    failed=1  # the build or a test binary failed without a counted case
  fi
  total_passed=$((total_passed + passed))
  total_failed=$((total_failed + failed))
  timings+=("$(printf '%-5s %3dm%02ds  %d passed, %d failed' "$name" $((seconds / 60)) \
    $((seconds % 60)) "$passed" "$failed")")
}

# Sanitizer reports written by any process of a phase (log_path=DIR/...):
# each one is a failure. Prints them; echoes the count.
count_reports() {
  local dir=$1 phase=$2 count=0 report
  for report in "$dir"/*; do
    [[ -f $report ]] || continue
    count=$((count + 1))
    echo "$phase sanitizer-report $(basename "$report"): $(grep -m1 -E 'ERROR|WARNING|runtime error' "$report" | cut -c1-160)" >>"$failures_file"
    echo "---- sanitizer report $report" >&2
    head -n 60 "$report" >&2
  done
  echo "$count"
}

# One sanitizer phase: bazel test --config=CONFIG of the tests QUERY names,
# with the sanitizers' options (tests/sanitizers/README.md) and their
# reports collected in a fresh folder.
run_sanitizer_phase() {
  local config=$1 query=$2 start status testlogs targets reports summary found p f
  shift 2
  start=$(date +%s)
  reports=$(mktemp -d "${TMPDIR:-/tmp}/telestra-$config.XXXXXX")
  local supp="$PWD/tests/sanitizers"
  local env=(
    "--test_env=UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:log_path=$reports/ubsan")
  case $config in
    asan)
      env+=("--test_env=ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:log_path=$reports/asan"
            "--test_env=LSAN_OPTIONS=suppressions=$supp/lsan.supp:print_suppressions=0") ;;
    tsan)
      env+=("--test_env=TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=$supp/tsan.supp:log_path=$reports/tsan") ;;
  esac
  targets=$(bazel query "$query" 2>/dev/null)
  # --symlink_prefix=/: bazel-bin & co. keep pointing at the normal build.
  # shellcheck disable=SC2086
  bazel test --config="$config" --symlink_prefix=/ "${env[@]}" $targets "$@"
  status=$?
  testlogs=$(bazel info --config="$config" bazel-testlogs 2>/dev/null)
  summary=$(count_cases "$testlogs" "$targets" "$config")
  found=$(count_reports "$reports" "$config")
  if [[ $found -gt 0 ]]; then
    read -r p f <<<"$summary"
    summary="$p $((f + found))"
    status=1
  fi
  rm -rf "$reports"
  add_phase "$config" "$status" "$summary" $(($(date +%s) - start))
}

started_phases=0
for phase in $phases; do
  elapsed=$(($(date +%s) - script_start))
  started_phases=$((started_phases + 1))
  if [[ $started_phases -gt 1 && $elapsed -ge $((budget_minutes * 60)) ]]; then
    echo "phase $phase not run: $((elapsed / 60)) min elapsed, budget $budget_minutes min" >&2
    timings+=("$(printf '%-5s not run (time budget of %d min spent)' "$phase" "$budget_minutes")")
    continue
  fi
  case $phase in
    suite)
      start=$(date +%s)
      bazel test //... "$@"
      bazel_status=$?
      # Count test cases from the JUnit XML files of this workspace's test targets.
      targets=$(bazel query 'tests(//...)' 2>/dev/null)
      add_phase suite "$bazel_status" "$(count_cases bazel-testlogs "$targets" suite)" \
        $(($(date +%s) - start))
      ;;
    asan)
      run_sanitizer_phase asan 'tests(//...)' "$@"
      ;;
    tsan)
      run_sanitizer_phase tsan 'attr(tags, "\bthreaded\b", tests(//...))' "$@"
      ;;
    fuzz)
      start=$(date +%s)
      fuzz_output=$(scripts/fuzz.sh all "$fuzz_seconds" 2>&1)
      fuzz_status=$?
      echo "$fuzz_output"
      fuzz_summary=$(sed -n 's/^fuzz: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' <<<"$fuzz_output")
      add_phase fuzz "$fuzz_status" "${fuzz_summary:-0 1}" $(($(date +%s) - start))
      ;;
    *)
      echo "unknown phase '$phase' in TELESTRA_TEST_PHASES" >&2
      total_failed=$((total_failed + 1))
      ;;
  esac
done

if [[ -s $failures_file ]]; then
  sed 's/^/failed: /' "$failures_file"
fi
printf 'phase %s\n' "${timings[@]}"
echo "${total_passed} passed, ${total_failed} failed"
if [[ $total_failed -ne 0 ]]; then exit 1; fi
exit 0
