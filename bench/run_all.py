"""Run every benchmark, one after another, and print all their tables.

Each runs in its own process (as `python -m bench.<name>`) so one's heap or event loop never skews
the next one's CPU and RSS figures. `--quick` runs small workloads, about a minute in all on two
cores: CI runs it (.ci/run) so a benchmark that no longer runs against today's bot is noticed.

Benchmarks report, they do not gate: a missed target is a "NOT met" in the output, exit status 0.
The exit status is 1 only when a benchmark crashed (a non-zero exit) or overran its time limit.

    python -m bench.run_all            # the figures in bench/RESULTS.md (about 10 minutes)
    python -m bench.run_all --quick    # smoke run (CI)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import dataclass

from bench.common import loadavg, machine_line


@dataclass(frozen=True, slots=True)
class Bench:
    module: str
    args: tuple[str, ...] = ()
    limit: float = 900.0
    """Seconds before it counts as crashed (a hung benchmark must not hang CI)."""

    @property
    def command(self) -> str:
        return " ".join(["python -m", f"bench.{self.module}", *self.args])


FULL: list[Bench] = [
    Bench("poll_throughput", ("--users", "1000", "10000")),
    Bench("alert_latency"),
    Bench("ack_latency"),
    Bench("rss_per_user", ("--users", "10000")),
    Bench("slow_users"),
    Bench("unsigned_post"),
    Bench("scan_overhead"),
    Bench("live_event_latency"),
    Bench("scale", ("--users", "2000", "--replicas", "2", "--database", "postgres", "--kill")),
]
QUICK: list[Bench] = [
    Bench("slow_users", ("--quick",), limit=120),
    Bench("poll_throughput", ("--users", "300", "--sequential-sample", "100", "--variants"), limit=60),
    Bench(
        "alert_latency", ("--users", "40", "--conferences", "4", "--interval", "2", "--window", "4"), limit=60
    ),
    Bench("ack_latency", ("--users", "500", "--requests", "40"), limit=60),
    Bench("rss_per_user", ("--users", "500"), limit=60),
    Bench("unsigned_post", ("--megabytes", "10"), limit=60),
    Bench("scan_overhead", ("--quick",), limit=90),
    Bench("live_event_latency", ("--quick",), limit=90),
    Bench("scale", ("--quick",), limit=60),
]


def run(bench: Bench) -> tuple[bool, float]:
    """Run one benchmark in its own process; (it exited 0 within its limit, seconds taken)."""
    started = time.perf_counter()
    command = [sys.executable, "-m", f"bench.{bench.module}", *bench.args]
    try:
        ok = subprocess.run(command, check=False, timeout=bench.limit).returncode == 0
    except subprocess.TimeoutExpired:
        print(f"TIMED OUT after {bench.limit:g}s", flush=True)
        ok = False
    return ok, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small workloads (CI smoke run)")
    args = parser.parse_args(argv)
    print(machine_line(), flush=True)
    began = time.perf_counter()
    crashed: list[str] = []
    for bench in QUICK if args.quick else FULL:
        print(f"\n## {bench.command}   (load {loadavg()})", flush=True)
        ok, seconds = run(bench)
        print(f"({'ok' if ok else 'CRASHED'}, {seconds:.0f}s)", flush=True)
        if not ok:
            crashed.append(bench.command)
    print(f"\nall benchmarks: {time.perf_counter() - began:.0f}s; {machine_line()}")
    if crashed:
        print("crashed: " + "; ".join(crashed))
    return 1 if crashed else 0


if __name__ == "__main__":
    raise SystemExit(main())
