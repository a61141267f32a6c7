#!/usr/bin/env python3
"""Run one command; report its wall time and the child's peak memory.

    python benchmarks/timeit.py [-o RESULT] [--] CMD [ARG...]

The command's own output passes through untouched. When it ends, one line goes
to standard error:

    timeit: 12.345 s wall, peak RSS 87.6 MB, exit 0: CMD ARG...

With ``-o RESULT`` the numbers are also written to RESULT as one line
``SECONDS PEAK_MB EXIT`` for scripts. The exit status is the command's own.

Peak memory comes from ``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss``: the
largest resident set of any child this process waited for. We start exactly
one, so it is the command's peak (a grandchild that the command waited for
counts too). Unix only (the ``resource`` module); standard library only.
"""

from __future__ import annotations

import argparse
import resource
import shlex
import subprocess
import sys
import time


def peak_rss_mb() -> float:
    maxrss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # Linux and the BSDs report kilobytes, macOS bytes.
    return maxrss / (1024 * 1024) if sys.platform == "darwin" else maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Run a command; print its wall seconds and peak RSS (MB) to stderr."
    )
    parser.add_argument(
        "-o", "--output", metavar="RESULT", help="write 'SECONDS PEAK_MB EXIT' here"
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command and its arguments")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give a command to run")

    start = time.perf_counter()
    try:
        proc = subprocess.Popen(command)
    except OSError as exc:
        print(f"timeit: cannot run {command[0]!r}: {exc.strerror}", file=sys.stderr)
        return 127
    try:
        returncode = proc.wait()
    except KeyboardInterrupt:
        proc.wait()
        raise
    seconds = time.perf_counter() - start
    peak = peak_rss_mb()

    status = returncode if returncode >= 0 else 128 - returncode  # killed by a signal
    print(
        f"timeit: {seconds:.3f} s wall, peak RSS {peak:.1f} MB, exit {returncode}: "
        f"{shlex.join(command)}",
        file=sys.stderr,
    )
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(f"{seconds:.3f} {peak:.1f} {returncode}\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
