"""In-memory world of the sandbox Slack: workspaces, tokens, people, channels and everything posted.

The state is only mutated from handlers running on the server's event loop, and no handler awaits
between reading and writing it, so no lock is needed.  Tests read it after polling the HTTP control API.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

JSON = dict[str, Any]

RESPONSE_URL_USES = 5
RESPONSE_URL_LIFETIME_SECONDS = 30 * 60
OAUTH_CODE_LIFETIME_SECONDS = 10 * 60
DEFAULT_SCOPES = "commands,chat:write,im:write,users:read"

_TZ_LABELS = {
    "EST": "Eastern Standard Time",
    "EDT": "Eastern Daylight Time",
    "CST": "Central Standard Time",
    "CDT": "Central Daylight Time",
    "MST": "Mountain Standard Time",
    "MDT": "Mountain Daylight Time",
    "PST": "Pacific Standard Time",
    "PDT": "Pacific Daylight Time",
    "GMT": "Greenwich Mean Time",
    "BST": "British Summer Time",
    "UTC": "Coordinated Universal Time",
    "CET": "Central European Time",
    "CEST": "Central European Summer Time",
}


def stable_id(prefix: str, *parts: str) -> str:
    """An id that is the same for the same inputs, so a DM channel keeps its id across restarts."""
    digest = hashlib.sha1(":".join(parts).encode(), usedforsecurity=False).hexdigest()
    return prefix + digest[:10].upper()


def random_id(prefix: str) -> str:
    return prefix + secrets.token_hex(5).upper()


@dataclass
class Team:
    team_id: str
    team_name: str
    bot_user_id: str
    bot_id: str
    app_id: str


@dataclass
class Token:
    team_id: str
    user_id: str
    revoked: bool = False


@dataclass
class User:
    id: str
    team_id: str
    name: str
    real_name: str
    tz: str = "America/New_York"
    locale: str = "en-US"  # as Slack spells it; users.info returns it only with include_locale=true
    is_admin: bool = False
    is_owner: bool = False
    is_bot: bool = False

    def to_json(self, now: float, *, include_locale: bool = False) -> JSON:
        """Shape of `users.info`'s `user`, with the zone offset as of `now` (it changes with DST); `locale`
        only when asked for, as Slack does."""
        try:
            moment = datetime.fromtimestamp(now, ZoneInfo(self.tz))
        except (ZoneInfoNotFoundError, ValueError):
            moment = datetime.fromtimestamp(now, ZoneInfo("UTC"))
        offset = moment.utcoffset()
        abbreviation = moment.tzname() or "UTC"
        user: JSON = {
            "id": self.id,
            "team_id": self.team_id,
            "name": self.name,
            "deleted": False,
            "real_name": self.real_name,
            "tz": self.tz,
            "tz_label": _TZ_LABELS.get(abbreviation, abbreviation),
            "tz_offset": int(offset.total_seconds()) if offset else 0,
            "is_admin": self.is_admin,
            "is_owner": self.is_owner,
            "is_primary_owner": self.is_owner,
            "is_restricted": False,
            "is_ultra_restricted": False,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "profile": {
                "real_name": self.real_name,
                "display_name": self.name,
                "real_name_normalized": self.real_name,
                "display_name_normalized": self.name,
                "team": self.team_id,
                "image_72": f"https://example.invalid/avatars/{self.id}_72.png",
            },
        }
        if include_locale:
            user["locale"] = self.locale
        return user


@dataclass
class Channel:
    id: str
    name: str
    team_id: str
    creator: str
    members: set[str] = field(default_factory=set)
    is_im: bool = False
    im_user: str | None = None
    created: int = 0

    def to_json(self, bot_user_id: str) -> JSON:
        data: JSON = {
            "id": self.id,
            "name": self.name,
            "is_channel": not self.is_im,
            "is_group": False,
            "is_im": self.is_im,
            "is_private": self.is_im,
            "is_archived": False,
            "is_member": bot_user_id in self.members,
            "creator": self.creator,
            "created": self.created,
        }
        if self.is_im:
            data["user"] = self.im_user
        return data


@dataclass
class Message:
    channel: str
    ts: str
    team_id: str
    text: str
    blocks: list[Any] | None
    thread_ts: str | None
    user: str | None
    bot_user_id: str
    history: list[JSON] = field(default_factory=list)
    metadata: JSON | None = None
    files: list[JSON] = field(default_factory=list)  # shared with the message (files.completeUploadExternal)

    def to_json(self) -> JSON:
        data: JSON = {
            "channel": self.channel,
            "ts": self.ts,
            "team_id": self.team_id,
            "text": self.text,
            "blocks": self.blocks,
            "thread_ts": self.thread_ts,
            "user": self.user,
            "edits": len(self.history),
            "history": list(self.history),
        }
        if self.files:
            data["files"] = list(self.files)
        return data


@dataclass
class UploadedFile:
    """A file from files.getUploadURLExternal: its bytes arrive at its upload URL, then
    files.completeUploadExternal shares it (or keeps it private to the app without a channel)."""

    id: str
    team_id: str
    filename: str
    length: int
    snippet_type: str | None
    created: float
    content: bytes | None = None  # None until the upload URL received the bytes
    title: str | None = None
    completed: bool = False
    channel: str | None = None
    ts: str | None = None
    thread_ts: str | None = None

    def to_json(self) -> JSON:
        """As Slack describes a file in a message (`files[]`), plus the sandbox's view of it."""
        return {
            "id": self.id,
            "name": self.filename,
            "title": self.title or self.filename,
            "filetype": self.snippet_type or "text",
            "size": len(self.content or b""),
            "created": int(self.created),
        }


@dataclass
class ResponseUrl:
    id: str
    created_at: float
    context: JSON
    posts: list[JSON] = field(default_factory=list)


@dataclass
class OAuthCode:
    code: str
    team_id: str
    team_name: str
    client_id: str
    client_secret: str
    authed_user_id: str
    scope: str
    redirect_uri: str | None
    created_at: float


@dataclass
class Fault:
    method: str
    status: int
    retry_after: int
    count: int


@dataclass
class SlackState:
    """Everything the sandbox knows; `clock` is injectable so expiry can be tested without waiting."""

    clock: Callable[[], float] = time.time
    teams: dict[str, Team] = field(default_factory=dict)
    tokens: dict[str, Token] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    channels: dict[str, Channel] = field(default_factory=dict)
    messages: dict[tuple[str, str], Message] = field(default_factory=dict)
    ephemerals: list[JSON] = field(default_factory=list)
    views: dict[str, JSON] = field(default_factory=dict)
    response_urls: dict[str, ResponseUrl] = field(default_factory=dict)
    oauth_codes: dict[str, OAuthCode] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    calls: list[JSON] = field(default_factory=list)
    files: dict[str, UploadedFile] = field(default_factory=dict)
    base_url: str = ""  # where this sandbox answers (learned from requests): upload URLs point here
    # Slack limits distributed non-Marketplace apps to ~1 conversations.history/replies read a minute
    # per workspace and method; None: unlimited (internal apps' tiers are far above what tests do).
    history_reads_per_minute: int | None = None
    history_reads: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    _last_ts_us: int = 0

    def next_ts(self) -> str:
        """Slack-style `seconds.micros` timestamp, strictly increasing so it can serve as a message id."""
        now_us = int(self.clock() * 1_000_000)
        self._last_ts_us = max(now_us, self._last_ts_us + 1)
        return f"{self._last_ts_us // 1_000_000}.{self._last_ts_us % 1_000_000:06d}"

    def add_team(
        self,
        team_id: str,
        team_name: str | None = None,
        bot_token: str | None = None,
        bot_user_id: str | None = None,
    ) -> tuple[Team, str]:
        """Create (or refresh) a workspace with the bot installed; returns it and a valid bot token."""
        team = self.teams.get(team_id)
        if team is None:
            team = Team(
                team_id=team_id,
                team_name=team_name or f"Sandbox {team_id}",
                bot_user_id=bot_user_id or stable_id("U", team_id, "bot"),
                bot_id=stable_id("B", team_id, "bot"),
                app_id="A0SANDBOX1",
            )
            self.teams[team_id] = team
        else:
            if team_name:
                team.team_name = team_name
            if bot_user_id:
                team.bot_user_id = bot_user_id
        if team.bot_user_id not in self.users:
            self.users[team.bot_user_id] = User(
                id=team.bot_user_id, team_id=team_id, name="confbot", real_name="confbot", is_bot=True
            )
        token = bot_token or "xoxb-" + secrets.token_hex(16)
        self.tokens[token] = Token(team_id=team_id, user_id=team.bot_user_id)
        return team, token

    def dm_channel(self, team: Team, user_id: str) -> Channel:
        """The bot's direct-message channel with a user, opened on first use like `conversations.open`."""
        channel_id = stable_id("D", team.team_id, user_id)
        channel = self.channels.get(channel_id)
        if channel is None:
            channel = Channel(
                id=channel_id,
                name=channel_id,
                team_id=team.team_id,
                creator=team.bot_user_id,
                members={team.bot_user_id, user_id},
                is_im=True,
                im_user=user_id,
                created=int(self.clock()),
            )
            self.channels[channel_id] = channel
        return channel

    def history_retry_after(self, team_id: str, method: str) -> int | None:
        """Seconds to wait when this read is over the history limit (a sliding minute), else None
        (and the read is counted)."""
        if self.history_reads_per_minute is None:
            return None
        now = self.clock()
        reads = [t for t in self.history_reads.get((team_id, method), []) if t > now - 60]
        if len(reads) >= self.history_reads_per_minute:
            self.history_reads[(team_id, method)] = reads
            return max(1, int(reads[0] + 60 - now + 0.999))
        self.history_reads[(team_id, method)] = [*reads, now]
        return None

    def take_fault(self, method: str) -> Fault | None:
        """Consume one configured fault matching `method` (or `*`), if any is left."""
        for fault in self.faults:
            if fault.count > 0 and fault.method in (method, "*"):
                fault.count -= 1
                return fault
        return None

    def reset(self) -> None:
        """Forget traffic (messages, calls, views, faults) but keep workspaces, people and channels."""
        self.messages.clear()
        self.ephemerals.clear()
        self.views.clear()
        self.response_urls.clear()
        self.faults.clear()
        self.calls.clear()
        self.files.clear()
