#!/usr/bin/env bash
# Time a customer CSV import: funnelctl against plain sqlite-utils.
#
#   benchmarks/bench_import.sh [N]        # N rows, default 100000
#
# Needs `funnelctl` and `sqlite-utils` on PATH (activate the project's venv
# first). Environment knobs:
#   PYTHON=python3   interpreter for the generator and timeit.py
#   SEED=1           generator seed (same seed, same file)
#   KEEP=1           keep the temporary folder (CSV, workspace, logs) afterwards
# Run by hand; never in CI. Timing numbers are for comparison on one machine.
set -euo pipefail

N="${1:-100000}"
case "$N" in
    '' | *[!0-9]*) echo "usage: $0 [ROWS]  (ROWS is a whole number, default 100000)" >&2; exit 2 ;;
esac
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-python3}"
SEED="${SEED:-1}"

for tool in funnelctl sqlite-utils "$PYTHON"; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "Error: '$tool' is not on PATH; activate the project's virtualenv first." >&2
        exit 1
    fi
done

TMP="$(mktemp -d "${TMPDIR:-/tmp}/funnelctl-bench.XXXXXX")"
if [ "${KEEP:-0}" = 1 ]; then
    echo "keeping $TMP" >&2
else
    trap 'rm -rf "$TMP"' EXIT
fi

CSV="$TMP/customers.csv"
WS="$TMP/ws"
OTHER="$TMP/other.db"

echo "generating $N rows (seed $SEED) ..." >&2
"$PYTHON" "$HERE/gen_customers.py" "$CSV" --rows "$N" --seed "$SEED"
echo "csv: $(du -h "$CSV" | cut -f1)" >&2

funnelctl init "$WS" >"$TMP/init.out" 2>"$TMP/init.err" || {
    echo "Error: 'funnelctl init $WS' failed:" >&2
    cat "$TMP/init.err" >&2
    exit 1
}

FAILED=0

# run NAME CMD... : time one command, keep its output in $TMP/NAME.{out,err}
run() {
    local name="$1"
    shift
    echo "running: $*" >&2
    "$PYTHON" "$HERE/timeit.py" -o "$TMP/$name.time" -- "$@" \
        >"$TMP/$name.out" 2>"$TMP/$name.err" || true
    local code
    code="$(awk '{print $3}' "$TMP/$name.time" 2>/dev/null || echo '?')"
    if [ "$code" != 0 ]; then
        FAILED=1
        echo "warning: $name exited with ${code:-?}; last lines of its stderr:" >&2
        tail -n 5 "$TMP/$name.err" >&2
    fi
}

run funnelctl funnelctl import "$CSV" --home "$WS" --funnel after-sales
run sqlite-utils sqlite-utils insert "$OTHER" customers "$CSV" --csv

# Rows actually stored, read back with the standard library (best effort).
count_rows() {
    "$PYTHON" - "$1" <<'PY' 2>/dev/null || echo "?"
import sqlite3, sys
try:
    con = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
    print(con.execute("select count(*) from customers").fetchone()[0])
except Exception:
    print("?")
PY
}

row() {
    local name="$1" stored="$2" seconds="?" peak="?" code="?"
    if [ -s "$TMP/$name.time" ]; then
        read -r seconds peak code <"$TMP/$name.time"
    fi
    local note=""
    [ "$code" = 0 ] || note="  (exit $code)"
    [ "$stored" = "$N" ] || note="$note  (stored: $stored)"
    printf '%-14s %10s %10s %10s%s\n' "$name" "$N" "$seconds" "$peak" "$note"
}

echo
printf '%-14s %10s %10s %10s\n' command rows seconds "peak MB"
printf '%-14s %10s %10s %10s\n' -------------- ---------- ---------- ----------
row funnelctl "$(count_rows "$WS/funnel.db")"
row sqlite-utils "$(count_rows "$OTHER")"
if [ "$FAILED" != 0 ]; then
    echo "a timed command failed; see the warnings above (KEEP=1 keeps the logs)" >&2
    exit 1
fi
