#!/usr/bin/env bash
# Runs the whole test suite (unit + integration against real Kamailio/sipp)
# and ends with the line "N passed, N failed" counted from the test cases'
# own results. Exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh || { echo "0 passed, 1 failed"; exit 1; }

bazel test //... "$@"
bazel_status=$?

# Count test cases from the JUnit XML files of this workspace's test targets.
targets=$(bazel query 'tests(//...)' 2>/dev/null)
summary=$(TARGETS="$targets" python3 - <<'PY'
import os, sys
import xml.etree.ElementTree as ET
passed = failed = 0
root = os.path.realpath("bazel-testlogs")
for label in os.environ["TARGETS"].split():
    package, name = label.lstrip("/").split(":")
    path = os.path.join(root, package, name, "test.xml")
    if not os.path.exists(path):
        failed += 1
        print(f"no result for {label}", file=sys.stderr)
        continue
    try:
        tree = ET.parse(path)
    except ET.ParseError:
        failed += 1
        print(f"unreadable result: {path}", file=sys.stderr)
        continue
    cases = tree.getroot().iter("testcase")
    found = False
    for case in cases:
        found = True
        if case.find("failure") is not None or case.find("error") is not None:
            failed += 1
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
print(f"{passed} {failed}")
PY
)
read -r passed failed <<<"$summary"
if [[ $bazel_status -ne 0 && $failed -eq 0 ]]; then
  failed=1  # the build or a test binary failed without a counted case
fi
echo "${passed} passed, ${failed} failed"
if [[ $bazel_status -ne 0 || $failed -ne 0 ]]; then exit 1; fi
exit 0
