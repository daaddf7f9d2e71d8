"""Logging set-up with a last line of defence: anything shaped like a secret is masked before output."""

from __future__ import annotations

import logging
import re
import sys

SECRET_PATTERNS = re.compile(
    r"(xox[abposr]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+|Bearer\s+[^\s\"']+|"
    r"(?:access_token|refresh_token|client_secret|code)=[^&\s\"']+)"
)


def redact(text: str) -> str:
    return SECRET_PATTERNS.sub(lambda match: match.group(0)[:4] + "…[redacted]", text)


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def configure(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("httpx", "httpcore", "aiosqlite"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # A tick that overruns the next one is skipped by design (max_instances=1, coalesce): not news.
    for scheduler_logger in ("apscheduler.executors.default", "apscheduler.scheduler"):
        logging.getLogger(scheduler_logger).setLevel(logging.ERROR)
