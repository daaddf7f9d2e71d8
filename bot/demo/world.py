"""The demo's world: a Slack workspace with three people and a channel, a Canvas course they share.

Built through the sandboxes' control APIs only; the tokens it collects stay in memory and out of any repr,
so no traceback or log line can print them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
from cryptography.fernet import Fernet

from bot.config import Settings, load_settings
from bot.sandbox.server import free_port

JSON = dict[str, Any]
TEAM_ID = "T0DEMO"
COURSE_NAME = "Biology 101"
CHANNEL_NAME = "biology-101"
POLL_SECONDS = 2.0


class DemoError(Exception):
    """A step of the demo did not happen; the message says which."""


@dataclass(frozen=True)
class Person:
    slack_id: str
    name: str
    enrollment: str

    @property
    def role(self) -> str:
        return "teacher" if self.enrollment == "TeacherEnrollment" else "student"


PEOPLE = (
    Person("UGRACE", "Grace Hopper", "TeacherEnrollment"),
    Person("UADA", "Ada Lovelace", "StudentEnrollment"),
    Person("UALAN", "Alan Turing", "StudentEnrollment"),
)
TEACHER = PEOPLE[0]


def person(slack_id: str) -> Person:
    """The demo person with this Slack id; DemoError for anyone else (the page's forms name people)."""
    for candidate in PEOPLE:
        if candidate.slack_id == slack_id:
            return candidate
    raise DemoError(f"no demo user {slack_id!r}")


@dataclass
class World:
    """What the setup created. `page_token` is a second Canvas token of the teacher, for the page's own
    reads, so they never share a rate-limit bucket with the bot's polls of the same teacher."""

    course_id: int = 0
    channel_id: str = ""
    canvas_ids: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict, repr=False)
    page_token: str = field(default="", repr=False)
    bot_token: str = field(default="", repr=False)

    @property
    def names(self) -> dict[str, str]:
        return {someone.slack_id: someone.name for someone in PEOPLE}

    @property
    def channel_names(self) -> dict[str, str]:
        return {self.channel_id: CHANNEL_NAME}


async def sandbox_post(http: httpx.AsyncClient, url: str, body: JSON | None = None) -> Any:
    """POST to a sandbox control route; a refusal becomes a DemoError naming the route, not the body."""
    response = await http.post(url, json=body or {})
    if response.status_code >= 400:
        raise DemoError(f"sandbox refused {url.split('/_sandbox', 1)[-1]}: {response.text[:200]}")
    return response.json()


async def build_world(http: httpx.AsyncClient, canvas_url: str, slack_url: str) -> World:
    """A workspace with three people and #biology-101 (bot invited), and the course they are enrolled in."""
    world = World()
    team = await sandbox_post(
        http, f"{slack_url}/_sandbox/teams", {"team_id": TEAM_ID, "team_name": "Demo U"}
    )
    world.bot_token = team["bot_token"]
    course = await sandbox_post(http, f"{canvas_url}/_sandbox/courses", {"name": COURSE_NAME})
    world.course_id = course["id"]
    for someone in PEOPLE:
        handle = someone.name.split()[0].lower()
        await sandbox_post(
            http,
            f"{slack_url}/_sandbox/users",
            {"id": someone.slack_id, "team_id": TEAM_ID, "name": handle, "real_name": someone.name},
        )
        user = await sandbox_post(http, f"{canvas_url}/_sandbox/users", {"name": someone.name})
        world.canvas_ids[someone.slack_id], world.tokens[someone.slack_id] = user["id"], user["token"]
        await sandbox_post(
            http,
            f"{canvas_url}/_sandbox/courses/{course['id']}/enrollments",
            {"user_id": user["id"], "type": someone.enrollment},
        )
    channel = await sandbox_post(
        http,
        f"{slack_url}/_sandbox/channels",
        {
            "team_id": TEAM_ID,
            "name": CHANNEL_NAME,
            "creator": TEACHER.slack_id,
            "members": [someone.slack_id for someone in PEOPLE],
        },
    )
    world.channel_id = channel["id"]
    minted = await sandbox_post(
        http, f"{canvas_url}/_sandbox/tokens", {"user_id": world.canvas_ids[TEACHER.slack_id]}
    )
    world.page_token = minted["token"]
    return world


def demo_settings(canvas_url: str, slack_url: str, world: World, workdir: str, secret: str) -> Settings:
    """Settings for the in-process bot; nothing is read from `.env`, OAuth and Socket Mode stay off."""
    port = free_port()
    return load_settings(
        _env_file=None,
        canvas_base_url=canvas_url,
        slack_api_url=f"{slack_url}/api/",
        slack_bot_token=world.bot_token,
        slack_signing_secret=secret,
        canvas_client_id=None,
        canvas_client_secret=None,
        slack_client_id=None,
        slack_client_secret=None,
        slack_app_token=None,
        public_base_url=f"http://127.0.0.1:{port}",
        database_url=f"sqlite+aiosqlite:///{workdir}/confbot.db",
        token_encryption_keys=Fernet.generate_key().decode(),
        poll_interval_seconds=POLL_SECONDS,
        host="127.0.0.1",
        port=port,
        log_level="WARNING",
    )
