"""(e) Bot memory per linked user: VmRSS before and after a full poll of N users, divided by N.

A warm-up poll of a few hundred users first fills the one-off costs (connection pool, SQLAlchemy
statement cache, lazily imported modules) so the figure is the marginal cost of one more user.
Seeding runs in a child process, so this process never held the seeding's objects.

    python -m bench.rss_per_user --users 10000
"""

from __future__ import annotations

import argparse
import asyncio

from bench.common import (
    bench_db,
    machine_line,
    peak_rss_kib,
    sandbox_canvas,
    seed,
    shipped_concurrency,
    table,
    verdict,
)
from bench.poll_throughput import WARM_UP, run_bot


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=10000)
    parser.add_argument("--concurrency", type=int, default=shipped_concurrency())
    args = parser.parse_args(argv)
    print(machine_line(), flush=True)
    with sandbox_canvas() as canvas, bench_db() as db:
        seed(db, canvas.url, WARM_UP + args.users)
        phase = asyncio.run(run_bot(db, canvas, args.users, args.concurrency))
    polled = phase.polls
    per_user = 1024 * (phase.rss_after_kib - phase.rss_before_kib) / max(polled, 1)
    print(f"\n### RSS per linked user (after a {WARM_UP}-user warm-up)\n")
    print(
        table(
            ["users polled", "RSS before KiB", "RSS after KiB", "bytes/user", "peak RSS KiB"],
            [[polled, phase.rss_before_kib, phase.rss_after_kib, round(per_user), peak_rss_kib()]],
        )
    )
    print()
    print(
        table(
            ["target", "measured", "verdict"],
            [["<= 2 KB/user", f"{per_user:,.0f} B", verdict(per_user <= 2048)]],
        )
    )
    print(f"\n({machine_line()})")


if __name__ == "__main__":
    main()
