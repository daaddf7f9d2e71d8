"""bench.run_all reports, it does not gate: only a crashed or overrunning benchmark fails the run."""

from __future__ import annotations

import pytest

from bench import run_all
from bench.run_all import Bench


def test_a_benchmark_that_runs_passes_and_one_that_crashes_fails_the_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(run_all, "QUICK", [Bench("seed", ("--help",), limit=60)])
    assert run_all.main(["--quick"]) == 0
    monkeypatch.setattr(run_all, "QUICK", [Bench("seed", ("--help",)), Bench("no_such_benchmark", limit=60)])
    assert run_all.main(["--quick"]) == 1


def test_a_benchmark_over_its_time_limit_counts_as_crashed() -> None:
    ok, _ = run_all.run(Bench("seed", ("--help",), limit=0.001))
    assert not ok
