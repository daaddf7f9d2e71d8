"""One line of `confbot check`, shared by every module that checks something."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CheckResult:
    """One printed line: `ok` with what was found, or what is wrong and how to fix it."""

    name: str
    ok: bool
    message: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'}  {self.name}: {self.message}"


def ok(name: str, message: str) -> CheckResult:
    return CheckResult(name, True, message)


def fail(name: str, message: str) -> CheckResult:
    return CheckResult(name, False, message)
