"""Run the test suite several times while a low-priority load keeps every core busy.

    python scripts/test_under_load.py [--runs 5] [--] [COMMAND ...]   (default: make test)

The load is one busy-looping process per core at nice 19: it takes whatever
CPU the tests leave, as another tenant of a shared machine would, so timing
assumptions and races in the suite show up as failures. Prints one line per
run (exit code, minutes) and exits non-zero if any run failed.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import time


def spin() -> None:
    os.nice(19)
    while True:
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("command", nargs="*", default=["make", "test"])
    args = parser.parse_args()
    load = [multiprocessing.Process(target=spin, daemon=True) for _ in range(os.cpu_count() or 2)]
    for process in load:
        process.start()
    failures = 0
    try:
        for run in range(1, args.runs + 1):
            began = time.monotonic()
            code = subprocess.run(args.command).returncode
            minutes = (time.monotonic() - began) / 60
            failures += code != 0
            print(f"run {run}/{args.runs}: exit {code} in {minutes:.1f} min", flush=True)
    finally:
        for process in load:
            process.kill()
    print(f"{args.runs - failures} passed, {failures} failed", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
