#!/usr/bin/env bash
# Time `funnelctl report` (the JSON report: every funnel, satisfaction, support,
# owners, workload, trends) on a large synthetic book.
#
#   benchmarks/bench_report.sh [CUSTOMERS ACTIVITIES]   # default 100000 1000000
#
# Builds the book with build_workspace.py (directly in SQL, a minute or so), then
# runs the report RUNS times (default 3) and prints the best wall time and its
# peak memory. Needs the project's venv active (funnelctl on PATH).
# Environment knobs:
#   PYTHON=python3   interpreter for build_workspace.py and timeit.py
#   RUNS=3           how many timed runs (the best is printed)
#   SIGNALS=0        signals spread over the customers (nps, csat, ...)
#   KEEP=1           keep the temporary folder (the workspace and the last report)
# Run by hand; never in CI. Timing numbers are for comparison on one machine.
set -euo pipefail

CUSTOMERS="${1:-100000}"
ACTIVITIES="${2:-1000000}"
for n in "$CUSTOMERS" "$ACTIVITIES" "${RUNS:=3}" "${SIGNALS:=0}"; do
    case "$n" in
        '' | *[!0-9]*) echo "usage: $0 [CUSTOMERS ACTIVITIES]  (whole numbers)" >&2; exit 2 ;;
    esac
done
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-python3}"
TODAY=2026-11-23   # build_workspace.py's default today: the book is dated around it

for tool in funnelctl "$PYTHON"; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "Error: '$tool' is not on PATH; activate the project's virtualenv first." >&2
        exit 1
    fi
done

TMP="$(mktemp -d "${TMPDIR:-/tmp}/funnelctl-report.XXXXXX")"
if [ "${KEEP:-0}" = 1 ]; then
    echo "keeping $TMP" >&2
else
    trap 'rm -rf "$TMP"' EXIT
fi
ws="$TMP/ws"

start=$(date +%s)
"$PYTHON" "$HERE/build_workspace.py" "$ws" --customers "$CUSTOMERS" --activities "$ACTIVITIES" \
    --signals "$SIGNALS" --today "$TODAY" >&2
echo "built in $(( $(date +%s) - start )) s" >&2

best="" peak=""
for _ in $(seq "$RUNS"); do
    "$PYTHON" "$HERE/timeit.py" -o "$TMP/t" -- \
        funnelctl report --home "$ws" --today "$TODAY" -f json >"$TMP/report.json" 2>"$TMP/err"
    read -r secs mb code <"$TMP/t"
    if [ "$code" != 0 ]; then
        cat "$TMP/err" >&2
        exit 1
    fi
    if [ -z "$best" ] || awk "BEGIN{exit !($secs < $best)}"; then
        best=$secs
        peak=$mb
    fi
done
# The output must be the whole report, not an error or a truncated file.
"$PYTHON" -c 'import json, sys; r = json.load(open(sys.argv[1])); assert r["funnels"] and "workload" in r' \
    "$TMP/report.json"

printf '%-10s %-10s %-8s %8s %8s\n' customers activities command seconds peak_MB
printf '%-10s %-10s %-8s %8s %8s\n' "$CUSTOMERS" "$ACTIVITIES" report "$best" "$peak"
