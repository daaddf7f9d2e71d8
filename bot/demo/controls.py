"""The demo's hands: what a teacher does in Canvas and what people do in Slack, played on the sandboxes.

The page's buttons and the scripted scenario both act through `ControlRoom`, server side: the sandbox
control routes for Canvas (start, end, restart, recordings), and for Slack requests signed with the app's
signing secret and posted to the bot exactly as Slack would (slash commands, App Home opened). The browser
never sees a token or the signing secret.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from bot.demo.world import JSON, TEACHER, TEAM_ID, DemoError, Person, World, person, sandbox_post
from bot.sandbox.slack import signed_request, signed_slash_command

STEP_TIMEOUT = 25.0
SCHEDULE_DELAY = timedelta(minutes=2)
DigestTrigger = Callable[[str], Awaitable[int]]
# action -> (sandbox Canvas control path, what the page says happened)
_CONFERENCE_ACTIONS = {
    "start": ("start", "Started in Canvas; the bot sees it at its next poll."),
    "end": ("end", "Ended in Canvas; the bot edits the alerts at its next poll."),
    "restart": ("restart", "Restarted in Canvas (started_at kept, ended_at cleared); alerts say live again."),
    "recording": ("recordings", "Recording added; the bot replies in the alerts' threads."),
}


async def until(condition: Callable[[], Any], *, within: float, what: str, every: float = 0.1) -> Any:
    """Poll `condition` (sync or async) until truthy; DemoError naming `what` after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise DemoError(f"timed out after {within:.0f} s waiting for {what}")
        await asyncio.sleep(every)


@dataclass
class Reply:
    """A slash command and what the bot posted to its response_url (ephemeral: only `to` sees it)."""

    to: str
    command: str
    post: JSON
    where: str = "DM"


@dataclass(frozen=True)
class ConferenceRow:
    """A conference of the demo course as Canvas reports it, for the page's table."""

    id: int
    title: str
    status: str  # "live" | "ended" | "scheduled" | "not started"
    start_at: str  # local HH:MM of a scheduled start, else ""
    recordings: int

    @classmethod
    def of(cls, raw: JSON) -> ConferenceRow:
        if raw.get("ended_at"):
            status = "ended"
        elif raw.get("started_at"):
            status = "live"
        else:
            status = "scheduled" if raw.get("start_at") else "not started"
        start_at = ""
        if raw.get("start_at") and status == "scheduled":
            moment = datetime.fromisoformat(str(raw["start_at"]).replace("Z", "+00:00"))
            start_at = moment.astimezone().strftime("%H:%M:%S")
        recordings = len(raw.get("recordings") or [])
        return cls(int(raw["id"]), str(raw.get("title") or ""), status, start_at, recordings)


class ControlRoom:
    """Start, end, restart and record conferences; type `/conferences` as anyone; open App Homes; post a
    digest now. Each method returns a short note for the page, or raises DemoError saying what failed."""

    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        canvas_url: str,
        slack_url: str,
        bot_url: str,
        signing_secret: str,
        world: World,
        post_digest_now: DigestTrigger,
    ) -> None:
        self._http = http
        self._canvas_url = canvas_url
        self._slack_url = slack_url
        self._bot_url = bot_url
        self._signing_secret = signing_secret
        self._world = world
        self._post_digest_now = post_digest_now
        self._dm_channels: dict[str, str] = {}
        self._timers: set[asyncio.Task[None]] = set()
        self.replies: list[Reply] = []

    @property
    def world(self) -> World:
        return self._world

    # --- Canvas ---------------------------------------------------------------------------------------

    async def conferences(self) -> list[ConferenceRow]:
        """The course's conferences, newest first, read from the Canvas API as the teacher."""
        response = await self._http.get(
            f"{self._canvas_url}/api/v1/courses/{self._world.course_id}/conferences",
            params={"per_page": 50},
            headers={"Authorization": f"Bearer {self._world.page_token}"},
        )
        response.raise_for_status()
        return [ConferenceRow.of(raw) for raw in response.json()["conferences"]]

    async def create(self, title: str, *, start_at: datetime | None = None) -> int:
        title = title.strip()
        if not title:
            raise DemoError("give the conference a title")
        body: JSON = {
            "context_type": "Course",
            "context_id": self._world.course_id,
            "title": title[:255],
            "user_ids": list(self._world.canvas_ids.values()),
        }
        if start_at is not None:
            body["start_at"] = start_at.isoformat()
        made = await sandbox_post(self._http, f"{self._canvas_url}/_sandbox/conferences", body)
        return int(made["id"])

    async def act(self, conference_id: int, action: str) -> str:
        """`start`, `end`, `restart` (Canvas keeps `started_at`, clears `ended_at`) or `recording`."""
        if action not in _CONFERENCE_ACTIONS:
            raise DemoError(f"unknown conference action {action!r}")
        path, note = _CONFERENCE_ACTIONS[action]
        body = {"title": "Lecture recording", "duration_minutes": 42} if action == "recording" else {}
        url = f"{self._canvas_url}/_sandbox/conferences/{conference_id}/{path}"
        await sandbox_post(self._http, url, body)
        return note

    async def schedule(self, title: str) -> str:
        """A conference with `start_at` in two minutes; the teacher joins it then, which starts it."""
        start_at = datetime.now(UTC) + SCHEDULE_DELAY
        conference_id = await self.create(title, start_at=start_at)
        timer = asyncio.create_task(self._start_later(conference_id, SCHEDULE_DELAY.total_seconds()))
        self._timers.add(timer)
        timer.add_done_callback(self._timers.discard)
        return f"Scheduled for {start_at.astimezone().strftime('%H:%M:%S')}; it starts then."

    async def _start_later(self, conference_id: int, delay: float) -> None:
        await asyncio.sleep(delay)
        with contextlib.suppress(DemoError, httpx.HTTPError):
            await self.act(conference_id, "start")

    async def close(self) -> None:
        for timer in list(self._timers):
            timer.cancel()
        await asyncio.gather(*self._timers, return_exceptions=True)

    # --- Slack ----------------------------------------------------------------------------------------

    async def _dm_channel(self, slack_id: str) -> str:
        """The user's DM with the bot, opened like the Slack client does before the first message."""
        if slack_id not in self._dm_channels:
            response = await self._http.post(
                f"{self._slack_url}/api/conversations.open",
                data={"users": slack_id},
                headers={"Authorization": f"Bearer {self._world.bot_token}"},
            )
            answer = response.json()
            if not answer.get("ok"):
                raise DemoError(f"the sandbox Slack could not open a DM: {answer.get('error')}")
            self._dm_channels[slack_id] = answer["channel"]["id"]
        return self._dm_channels[slack_id]

    async def slash(self, slack_id: str, text: str, *, in_channel: bool = False) -> Reply:
        """`/conferences TEXT` typed by `slack_id` in their DM or the course channel; waits for the reply."""
        who: Person = person(slack_id)
        channel = self._world.channel_id if in_channel else await self._dm_channel(slack_id)
        minted = await sandbox_post(
            self._http,
            f"{self._slack_url}/_sandbox/response_urls",
            {"user_id": slack_id, "channel_id": channel},
        )
        body, headers = signed_slash_command(
            self._signing_secret,
            team_id=TEAM_ID,
            user_id=who.slack_id,
            channel_id=channel,
            text=text.strip(),
            response_url=minted["url"],
            user_name=who.name.split()[0].lower(),
        )
        ack = await self._http.post(f"{self._bot_url}/slack/events", content=body, headers=headers)
        if ack.status_code != 200:
            raise DemoError(f"the bot answered the slash command with HTTP {ack.status_code}")

        async def posts() -> list[JSON]:
            response = await self._http.get(f"{self._slack_url}/_sandbox/response_urls/{minted['id']}")
            return list(response.json()["posts"])

        posted = await until(posts, within=STEP_TIMEOUT, what=f"the reply to /conferences {text}".rstrip())
        where = "#" + self._world.channel_names[channel] if in_channel else "DM"
        reply = Reply(who.slack_id, f"/conferences {text.strip()}".rstrip(), posted[-1], where)
        self.replies.append(reply)
        return reply

    async def open_home(self, slack_id: str) -> str:
        """Send `app_home_opened` as Slack does when someone opens the app; wait for the published view."""
        who = person(slack_id)
        before = await self._home_updates(slack_id)
        event_ts = f"{time.time():.6f}"
        envelope = {
            "type": "event_callback",
            "team_id": TEAM_ID,
            "api_app_id": "A0SANDBOX1",
            "event_id": f"Ev{secrets.token_hex(8).upper()}",
            "event_time": int(time.time()),
            "event": {"type": "app_home_opened", "user": slack_id, "tab": "home", "event_ts": event_ts},
        }
        body = json.dumps(envelope).encode()
        headers = signed_request(self._signing_secret, body, "application/json")
        ack = await self._http.post(f"{self._bot_url}/slack/events", content=body, headers=headers)
        if ack.status_code != 200:
            raise DemoError(f"the bot answered app_home_opened with HTTP {ack.status_code}")

        async def republished() -> bool:
            return await self._home_updates(slack_id) > before

        await until(republished, within=STEP_TIMEOUT, what=f"{who.name}'s App Home")
        return f"{who.name} opened the app's Home tab."

    async def _home_updates(self, slack_id: str) -> int:
        views = await self.homes()
        return next((int(v.get("updates", 0)) + 1 for v in views if v.get("user_id") == slack_id), 0)

    async def homes(self) -> list[JSON]:
        """Every published App Home view (one per user), as the sandbox Slack keeps them."""
        response = await self._http.get(f"{self._slack_url}/_sandbox/views", params={"type": "home"})
        response.raise_for_status()
        return list(response.json()["views"])

    async def subscribe_channel(self) -> Reply:
        """The teacher subscribes #biology-101 to the course, with the slash command, in the channel."""
        return await self.slash(TEACHER.slack_id, f"subscribe {self._world.course_id}", in_channel=True)

    async def digest_now(self) -> str:
        """The teacher sets a daily digest at this minute (UTC), then the digest runs without waiting."""
        now = datetime.now(UTC)
        await self.slash(TEACHER.slack_id, f"digest daily {now:%H:%M} UTC", in_channel=True)
        queued = await self._post_digest_now(self._world.channel_id)
        if queued:
            return "Digest queued; it appears in the channel in a moment."
        return "No digest queued: this minute's was already posted. Try again in a minute."
