#!/usr/bin/env bash
# Time `funnelctl due` and `funnelctl run` on a small and a large book with the
# same amount of work due: the time should follow what is due, not the book. Then
# `due --days DAYS` (many rows: about 50,000 on 100,000 customers with 45) as JSON
# and as the agenda table (COLUMNS=120, every row): the table should cost no more
# than about twice the JSON of the same rows.
#
#   benchmarks/bench_due.sh [SMALL LARGE ACTIVITIES_PER_CUSTOMER DAYS]   # default 1000 100000 10 45
#
# Needs the project's venv active (funnelctl on PATH). Run by hand; never in CI.
set -euo pipefail
SMALL="${1:-1000}"; LARGE="${2:-100000}"; PER="${3:-10}"; DAYS="${4:-45}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-python3}"
TODAY=2026-11-23
TMP="$(mktemp -d "${TMPDIR:-/tmp}/funnelctl-due.XXXXXX")"
[ "${KEEP:-0}" = 1 ] && echo "keeping $TMP" >&2 || trap 'rm -rf "$TMP"' EXIT

printf '%-10s %-9s %-26s %8s %8s\n' customers activities command seconds peak_MB
for n in "$SMALL" "$LARGE"; do
    ws="$TMP/ws$n"
    "$PYTHON" "$HERE/build_workspace.py" "$ws" --customers "$n" --activities $((n * PER)) --today "$TODAY" >&2
    for cmd in "due -f json" "due --days $DAYS -f json" "due --days $DAYS -f table" "run -f json"; do
        best=""
        for _ in 1 2 3; do
            home="$ws"
            if [ "${cmd%% *}" = run ]; then  # each run on a fresh copy: a rerun has nothing to do
                rm -rf "$TMP/copy" && cp -r "$ws" "$TMP/copy" && home="$TMP/copy"
            fi
            # shellcheck disable=SC2086 # the command's words
            COLUMNS=120 "$PYTHON" "$HERE/timeit.py" -o "$TMP/t" -- funnelctl $cmd --home "$home" --today "$TODAY" >/dev/null 2>"$TMP/err"
            read -r secs mb code <"$TMP/t"
            [ "$code" = 0 ] || { cat "$TMP/err" >&2; exit 1; }
            if [ -z "$best" ] || awk "BEGIN{exit !($secs < $best)}"; then best=$secs; peak=$mb; fi
        done
        printf '%-10s %-9s %-26s %8s %8s\n' "$n" $((n * PER)) "$cmd" "$best" "$peak"
    done
done
