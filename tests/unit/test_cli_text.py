"""The CLI's pure parts: where the link token comes from, the start-up lines, the link failure messages."""

from __future__ import annotations

import io

import pytest

from bot.canvas.errors import Forbidden, InvalidToken, NotFound, Throttled, Transient
from bot.cli import TOKEN_PROMPT, UsageError, read_token, startup_lines
from bot.config import SlackMode, load_settings
from bot.engine.linking import describe_link_failure

ROOT = "https://canvas.example.edu"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def never(_prompt: str) -> str:
    raise AssertionError("must not prompt")


def test_a_terminal_gets_a_hidden_prompt_and_a_pipe_is_read() -> None:
    asked: list[str] = []

    def prompt(text: str) -> str:
        asked.append(text)
        return " 7~typed \n"

    err = io.StringIO()
    assert read_token(None, stdin=Terminal(), stderr=err, prompt=prompt) == "7~typed"
    assert asked == [TOKEN_PROMPT]
    assert read_token(None, stdin=io.StringIO("7~piped\n"), stderr=err, prompt=never) == "7~piped"
    assert read_token("-", stdin=io.StringIO("7~dash\n"), stderr=err, prompt=never) == "7~dash"
    assert err.getvalue() == ""


def test_a_token_in_argv_is_accepted_with_a_warning_that_does_not_repeat_it() -> None:
    err = io.StringIO()
    assert read_token("7~argv", stdin=io.StringIO(), stderr=err, prompt=never) == "7~argv"
    assert "visible to other users" in err.getvalue() and "7~argv" not in err.getvalue()


def test_no_token_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="no Canvas token given"):
        read_token(None, stdin=io.StringIO(""), stderr=io.StringIO(), prompt=never)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            InvalidToken("GET /api/v1/users/self: 401 Invalid access token", status=401),
            "Canvas refused the token",
        ),
        (
            Transient("GET /api/v1/users/self: DNS lookup failed (no such host)"),
            "cannot reach Canvas at https://canvas.example.edu: DNS lookup failed",
        ),
        (Transient("GET /api/v1/users/self: unparseable body (1 problem(s))", status=200), "is not a Canvas"),
        (NotFound("GET /api/v1/users/self: 404 not found", status=404), "is not a Canvas"),
        (Transient("GET /api/v1/users/self: 302 redirect", status=302), "redirects (302)"),
        (Transient("GET /api/v1/users/self: 502 server error", status=502), "answered 502 (server error)"),
        (Throttled("GET /api/v1/users/self: 403 rate limit", status=403), "throttling"),
        (Forbidden("GET /api/v1/users/self: 401 unauthorized", status=401), "may not be Canvas itself"),
    ],
)
def test_link_failures_say_what_happened(error: Exception, expected: str) -> None:
    message = describe_link_failure(error, ROOT)  # type: ignore[arg-type]
    assert expected in message
    if not isinstance(error, InvalidToken):
        assert "refused the token" not in message


def test_startup_lines_name_each_component_and_mode_without_the_password() -> None:
    settings = load_settings(
        _env_file=None,
        canvas_base_url=ROOT,
        slack_bot_token="xoxb-1",
        slack_app_token="xapp-1",
        database_url="postgresql+asyncpg://confbot:hunter2secret@db:5432/confbot",
        poll_interval_seconds=30,
        host="10.0.0.5",
        port=3000,
    )
    lines = startup_lines(settings, SlackMode.SOCKET)
    assert [line.split(":", 1)[0] for line in lines] == ["database", "slack", "poller", "http"]
    assert "PostgreSQL at postgresql+asyncpg://confbot:***@db:5432/confbot" in lines[0]
    assert "Socket Mode" in lines[1]
    assert "every 30s" in lines[2]
    assert lines[3].startswith("http: listening on 10.0.0.5:3000")
    assert "hunter2secret" not in " ".join(lines)
