"""Run every benchmark with its default settings, one after another, and print all their tables.

Each runs in its own process (as `python -m bench.<name>`) so one's heap or event loop never skews
the next one's CPU and RSS figures. Pass `--quick` for smaller workloads (a smoke run).

    python -m bench.run_all [--quick]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from bench.common import machine_line

FULL: list[list[str]] = [
    ["poll_throughput", "--users", "1000", "10000"],
    ["alert_latency"],
    ["ack_latency"],
    ["rss_per_user", "--users", "10000"],
    ["cpu_profile"],
]
QUICK: list[list[str]] = [
    ["poll_throughput", "--users", "300", "--sequential-sample", "300"],
    ["alert_latency", "--users", "60", "--conferences", "6", "--window", "10"],
    ["ack_latency", "--users", "1000", "--requests", "50"],
    ["rss_per_user", "--users", "1000"],
    ["cpu_profile", "--users", "500", "--rounds", "1"],
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    print(machine_line(), flush=True)
    failed = 0
    for name, *rest in QUICK if args.quick else FULL:
        command = [sys.executable, "-m", f"bench.{name}", *rest]
        print(f"\n## python -m bench.{name} {' '.join(rest)}".rstrip(), flush=True)
        started = time.perf_counter()
        result = subprocess.run(command, check=False)
        print(f"(exit {result.returncode}, {time.perf_counter() - started:.0f}s)", flush=True)
        failed += result.returncode != 0
    print(f"\n{machine_line()}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
