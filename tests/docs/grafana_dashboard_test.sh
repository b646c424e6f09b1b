#!/usr/bin/env bash
# examples/grafana-dashboard.json is valid JSON, a Grafana dashboard with
# panels, and every telestra_* metric its queries name (a histogram's
# _bucket/_sum/_count series by the histogram's name) is in docs/metrics.md.
set -euo pipefail
dashboard="$1" metrics_doc="$2"
exec /usr/bin/python3 - "$dashboard" "$metrics_doc" <<'PY'
import json, re, sys

dashboard_path, doc_path = sys.argv[1], sys.argv[2]
with open(dashboard_path) as f:
    dashboard = json.load(f)  # fails the test on invalid JSON
with open(doc_path) as f:
    doc = f.read()

# The metrics docs/metrics.md documents: the first column of its tables.
documented = set(re.findall(r"^\| `(telestra_[a-z0-9_]+)", doc, re.M))
if len(documented) < 20:
    sys.exit(f"FAIL: found only {len(documented)} metrics in {doc_path}")
histograms = set(re.findall(r"^\| `(telestra_[a-z0-9_]+)[^|]*\| histogram \|", doc, re.M))

panels = dashboard.get("panels", [])
queries = [t.get("expr", "") for p in panels for t in p.get("targets", [])]
if not dashboard.get("title") or len(queries) < 10:
    sys.exit(f"FAIL: a dashboard with a title and queries expected, got {len(queries)} queries")

missing = []
named = set()
for expr in queries:
    for name in re.findall(r"\btelestra_[a-z0-9_]+", expr):
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        if base != name and base in histograms:
            name = base
        named.add(name)
        if name not in documented:
            missing.append(f"{name} (in {expr})")
if missing:
    sys.exit("FAIL: metrics of the dashboard missing from docs/metrics.md:\n  " + "\n  ".join(missing))
for p in panels:
    if p.get("type") != "row" and not p.get("targets"):
        sys.exit(f"FAIL: panel {p.get('title')!r} has no query")
print(f"PASS: {len(panels)} panels, {len(queries)} queries, {len(named)} metrics, all documented")
PY
