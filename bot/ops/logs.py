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


class DemoteFilter(logging.Filter):
    """Turns a library's known, harmless message into DEBUG, so the default level does not show it.

    Bolt warns "As you gave client as well, token will be unused" whenever SLACK_BOT_TOKEN is in the
    environment, even though the client it is given carries that very token: nothing is wrong.
    """

    def __init__(self, messages: set[str]) -> None:
        super().__init__()
        self.messages = messages

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage() not in self.messages:
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger().isEnabledFor(logging.DEBUG)


# Libraries whose INFO lines describe their own set-up (alembic's "setup plugin ...", "Context impl
# SQLiteImpl", one line per migration): below the default level, the bot says what matters itself.
CHATTY = ("httpx", "httpcore", "aiosqlite", "alembic")


def _bolt_messages() -> set[str]:
    from slack_bolt.logger import messages

    return {messages.warning_client_prioritized_and_token_skipped()}


def configure(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    quiet = logging.DEBUG if root.level <= logging.DEBUG else logging.WARNING
    for noisy in CHATTY:
        logging.getLogger(noisy).setLevel(quiet)
    bolt = logging.getLogger("slack_bolt.AsyncApp")
    bolt.filters[:] = [item for item in bolt.filters if not isinstance(item, DemoteFilter)]
    bolt.addFilter(DemoteFilter(_bolt_messages()))
    # A tick that overruns the next one is skipped by design (max_instances=1, coalesce): not news.
    for scheduler_logger in ("apscheduler.executors.default", "apscheduler.scheduler"):
        logging.getLogger(scheduler_logger).setLevel(logging.ERROR)
