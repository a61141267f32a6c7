#!/usr/bin/env bash
# Time a customer CSV import: funnelctl against plain sqlite-utils.
#
#   benchmarks/bench_import.sh [N]        # N rows, default 100000
#
# Needs `funnelctl` and `sqlite-utils` on PATH (activate the project's venv
# first). Environment knobs:
#   PYTHON=python3   interpreter for the generator and timeit.py
#   SEED=1           generator seed (same seed, same file)
#   REPEAT=1         rounds; each command's median seconds and peak are printed
#   BEFORE=CMD       also time CMD (another funnelctl, e.g. an older checkout) in
#                    each round, with the same arguments: before and after, one run
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
REPEAT="${REPEAT:-1}"
case "$REPEAT" in
    '' | *[!0-9]* | 0) echo "REPEAT must be a whole number from 1" >&2; exit 2 ;;
esac

echo "generating $N rows (seed $SEED) ..." >&2
"$PYTHON" "$HERE/gen_customers.py" "$CSV" --rows "$N" --seed "$SEED"
echo "csv: $(du -h "$CSV" | cut -f1)" >&2

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

for round in $(seq "$REPEAT"); do
    rm -rf "$TMP/ws" "$TMP/before-ws" "$TMP/other.db"
    for ws in "$TMP/ws" ${BEFORE:+"$TMP/before-ws"}; do
        funnelctl init "$ws" >"$TMP/init.out" 2>"$TMP/init.err" || {
            echo "Error: 'funnelctl init $ws' failed:" >&2
            cat "$TMP/init.err" >&2
            exit 1
        }
    done
    if [ -n "${BEFORE:-}" ]; then
        # shellcheck disable=SC2086  # BEFORE may be a command with arguments
        run "before.$round" $BEFORE import "$CSV" --home "$TMP/before-ws" --funnel after-sales
    fi
    run "funnelctl.$round" funnelctl import "$CSV" --home "$TMP/ws" --funnel after-sales
    run "sqlite-utils.$round" sqlite-utils insert "$TMP/other.db" customers "$CSV" --csv
done

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

# median NAME: "SECONDS PEAK_MB EXIT" over the rounds (the median of each; the worst exit)
median() {
    "$PYTHON" - "$TMP" "$1" "$REPEAT" <<'PY'
import statistics, sys
folder, name, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
runs = []
for r in range(1, rounds + 1):
    try:
        with open(f"{folder}/{name}.{r}.time") as fh:
            seconds, peak, code = fh.read().split()
        runs.append((float(seconds), float(peak), int(code)))
    except (OSError, ValueError):
        runs.append((float("nan"), float("nan"), -1))
seconds = statistics.median(r[0] for r in runs)
peak = statistics.median(r[1] for r in runs)
code = next((r[2] for r in runs if r[2] != 0), 0)
print(f"{seconds:.3f} {peak:.1f} {code}")
PY
}

row() {
    local name="$1" stored="$2" seconds peak code
    read -r seconds peak code <<<"$(median "$name")"
    local note="" ratio
    ratio="$("$PYTHON" -c "import sys; a, b = map(float, sys.argv[1:]); print(f'{a / b:.2f}x')" \
        "$seconds" "$REFERENCE" 2>/dev/null || echo '?')"
    [ "$code" = 0 ] || note="  (exit $code)"
    [ "$stored" = "$N" ] || note="$note  (stored: $stored)"
    printf '%-14s %10s %10s %10s %8s%s\n' "$name" "$N" "$seconds" "$peak" "$ratio" "$note"
}

REFERENCE="$(median sqlite-utils | cut -d' ' -f1)"
echo
echo "median of $REPEAT round(s); ratio: seconds over sqlite-utils'"
printf '%-14s %10s %10s %10s %8s\n' command rows seconds "peak MB" ratio
printf '%-14s %10s %10s %10s %8s\n' -------------- ---------- ---------- ---------- --------
[ -n "${BEFORE:-}" ] && row before "$(count_rows "$TMP/before-ws/funnel.db")"
row funnelctl "$(count_rows "$TMP/ws/funnel.db")"
row sqlite-utils "$(count_rows "$TMP/other.db")"
if [ "$FAILED" != 0 ]; then
    echo "a timed command failed; see the warnings above (KEEP=1 keeps the logs)" >&2
    exit 1
fi
