#!/usr/bin/env bash
# Time `funnelctl at-risk` and `funnelctl run` (which scores every active customer)
# on 10,000 and 100,000 customers with 10 signals each (1,000,000 at the large size).
#
#   benchmarks/bench_health.sh [SIZES...]     # default: 10000 100000
#
# Needs the project's venv active (funnelctl on PATH). Run by hand; never in CI.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-python3}"
TODAY=2026-11-23
SIZES=("${@:-10000 100000}")
TMP="$(mktemp -d "${TMPDIR:-/tmp}/funnelctl-health.XXXXXX")"
[ "${KEEP:-0}" = 1 ] && echo "keeping $TMP" >&2 || trap 'rm -rf "$TMP"' EXIT

printf '%-10s %-9s %-15s %8s %8s\n' customers signals command seconds peak_MB
for n in ${SIZES[*]}; do
    ws="$TMP/ws$n"
    "$PYTHON" "$HERE/build_workspace.py" "$ws" --customers "$n" --activities "$n" \
        --signals $((n * 10)) --today "$TODAY" >&2
    # at-risk before today's run scores everyone live; after it, reads the run's snapshots.
    for cmd in "at-risk --live" run at-risk; do
        # shellcheck disable=SC2086
        "$PYTHON" "$HERE/timeit.py" -o "$TMP/t" -- funnelctl $cmd --home "$ws" --today "$TODAY" -f json \
            >/dev/null 2>"$TMP/err" || { cat "$TMP/err" >&2; exit 1; }
        read -r secs mb code <"$TMP/t"
        printf '%-10s %-9s %-15s %8s %8s\n' "$n" $((n * 10)) "$cmd" "$secs" "$mb"
    done
done
