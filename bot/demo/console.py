"""What `confbot demo` prints: its steps, and each Slack message once as it arrives or is edited."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping

import httpx

from bot.demo.terminal import Ansi, message_lines
from bot.demo.world import JSON


class Console:
    """Everything the demo prints goes through here (stdout, flushed, optional colour)."""

    def __init__(self, ansi: Ansi) -> None:
        self.ansi = ansi

    def say(self, text: str = "") -> None:
        print(text, flush=True)

    def step(self, text: str) -> None:
        self.say(f"{self.ansi('1;36', '▶')} {text}")

    def lines(self, lines: list[str]) -> None:
        self.say("\n" + "\n".join(lines))


class Feed:
    """Follows the sandbox Slack: prints each new or edited message once, keeps the latest snapshot."""

    def __init__(self, http: httpx.AsyncClient, slack_url: str, console: Console, names: Mapping[str, str]):
        self.http, self.slack_url, self.console, self.names = http, slack_url, console, names
        self.messages: list[JSON] = []
        self._printed: dict[tuple[str, str], int] = {}

    async def refresh(self) -> None:
        response = await self.http.get(f"{self.slack_url}/_sandbox/messages")
        response.raise_for_status()
        messages: list[JSON] = sorted(response.json()["messages"], key=lambda m: float(m["ts"]))
        for message in messages:
            key, edits = (message["channel"], message["ts"]), int(message.get("edits") or 0)
            if self._printed.get(key) != edits:
                self._printed[key] = edits
                self.console.lines(
                    message_lines(message, self._heading(message), self.console.ansi, self.names)
                )
        self.messages = messages

    def _heading(self, message: JSON) -> str:
        user = message.get("user")
        if user:
            return f"DM to {self.names.get(user, user)}"
        return f"#{message.get('channel')}"

    async def watch(self) -> None:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                await self.refresh()
            await asyncio.sleep(0.25)

    def dms(self, predicate: Callable[[JSON], bool]) -> dict[str, JSON]:
        """Latest DM per recipient matching `predicate`."""
        return {m["user"]: m for m in self.messages if m.get("user") and predicate(m)}
