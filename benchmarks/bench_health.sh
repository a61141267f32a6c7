#!/usr/bin/env bash
# Time `funnelctl at-risk` and `funnelctl run` (which scores the active customers)
# on 10,000 and 100,000 customers with 10 signals each (1,000,000 at the large size).
#
#   benchmarks/bench_health.sh [SIZES...]     # default: 10000 100000
#
# For each size, in this order on one book: `at-risk --live` (scores everyone now),
# `run` (the first of the day: scores everyone), `run` again (nothing changed),
# `at-risk` (reads the run's snapshots), then after a new NPS answer for 1% of the
# customers `at-risk --live` and `run` (both score only those), and `run --rescore`
# (everyone again, on demand).
#
# Needs the project's venv active (funnelctl on PATH). Run by hand; never in CI.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-python3}"
TODAY=2026-11-23
SIZES=("${@:-10000 100000}")
TMP="$(mktemp -d "${TMPDIR:-/tmp}/funnelctl-health.XXXXXX")"
[ "${KEEP:-0}" = 1 ] && echo "keeping $TMP" >&2 || trap 'rm -rf "$TMP"' EXIT

timed() { # SIZE LABEL COMMAND...
    local n="$1" label="$2"
    shift 2
    "$PYTHON" "$HERE/timeit.py" -o "$TMP/t" -- "$@" >"$TMP/out" 2>"$TMP/err" ||
        { cat "$TMP/err" >&2; exit 1; }
    read -r secs mb _ <"$TMP/t"
    scored=$(grep -o '"scored": [0-9]*' "$TMP/out" | grep -o '[0-9]*$' || true)
    printf '%-10s %-22s %8s %8s %8s\n' "$n" "$label" "$secs" "$mb" "${scored:--}"
}

printf '%-10s %-22s %8s %8s %8s\n' customers command seconds peak_MB scored
for n in ${SIZES[*]}; do
    ws="$TMP/ws$n"
    "$PYTHON" "$HERE/build_workspace.py" "$ws" --customers "$n" --activities "$n" \
        --signals $((n * 10)) --today "$TODAY" >&2
    opts=(--home "$ws" --today "$TODAY" -f json)
    timed "$n" "at-risk --live" funnelctl at-risk --live "${opts[@]}"
    timed "$n" "run" funnelctl run "${opts[@]}"
    timed "$n" "run (again)" funnelctl run "${opts[@]}"
    timed "$n" "at-risk" funnelctl at-risk "${opts[@]}"
    # a new NPS answer for every hundredth customer, as `signal import` would store it
    "$PYTHON" - "$ws/funnel.db" "$TODAY" <<'PY'
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1])
with conn:
    conn.execute(
        "INSERT INTO signals (customer_id, metric, value, measured_on, source, created_on) "
        "SELECT id, 'nps', id % 11, ?, 'bench', ? FROM customers WHERE id % 100 = 0",
        [sys.argv[2], sys.argv[2]],
    )
conn.close()
PY
    timed "$n" "at-risk --live (1%)" funnelctl at-risk --live "${opts[@]}"
    timed "$n" "run (1% changed)" funnelctl run "${opts[@]}"
    # grep reads all of it: with -q it could stop early, and under pipefail the help's
    # broken pipe would then read as "no --rescore"
    if funnelctl run --help | grep -- --rescore >/dev/null; then
        timed "$n" "run --rescore" funnelctl run --rescore "${opts[@]}"
    fi
done
