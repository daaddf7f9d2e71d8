"""Linking a Slack user to Canvas: shared by the CLI, the token modal and the OAuth callback."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, func, select

from bot.canvas.client import CanvasClient
from bot.canvas.errors import (
    CanvasError,
    Forbidden,
    InsufficientScope,
    InvalidToken,
    NotFound,
    Throttled,
    Transient,
)
from bot.canvas.scopes import where_to_tick
from bot.domain.models import CanvasUser
from bot.store import repo
from bot.store.crypto import TokenCipher
from bot.store.db import SessionFactory
from bot.store.models import LinkedUser, OutboxMessage, Subscription, utcnow

log = logging.getLogger(__name__)

SLACK_USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")
"""Slack user ids: U... (or W... on Enterprise Grid), upper-case letters and digits."""

SLACK_TEAM_ID = re.compile(r"[TE][A-Z0-9]{2,}")
"""Slack workspace ids are T...; an Enterprise Grid org id (E...) is accepted too."""


def describe_link_failure(error: CanvasError, canvas_root: str) -> str:
    """What went wrong when checking a token, in words that tell a network problem from a refusal.

    Only a 401 with a Bearer challenge means Canvas refused the token; a host that does not resolve or
    a page that is not Canvas JSON must say so, or the operator hunts for a token problem that is not
    there. Transport failures carry no status and their message ends with `network.describe`'s phrase.
    """
    what = f"{canvas_root}/api/v1/users/self"
    if isinstance(error, InvalidToken):
        return (
            f"Canvas refused the token ({error.status}, invalid access token): make a new personal access "
            f"token at {canvas_root}/profile/settings"
        )
    if isinstance(error, InsufficientScope):
        return (
            f"Canvas accepted the token but its scopes do not include {error.missing_scope}; a token made "
            f"under a developer key with Enforce Scopes needs it ({where_to_tick(error.missing_scope)})"
        )
    if isinstance(error, Throttled):
        return "Canvas is throttling this token (rate limit exceeded); wait a minute and try again"
    if isinstance(error, NotFound):
        return f"{canvas_root} is not a Canvas: {what} is not found; set CANVAS_BASE_URL to the Canvas root"
    if isinstance(error, Forbidden):
        return (
            f"Canvas answered {error.status} without asking for another token, so {canvas_root} may not be "
            "Canvas itself (a proxy or login page?); check CANVAS_BASE_URL"
        )
    if isinstance(error, Transient):
        if error.status is None:
            reason = str(error).partition(": ")[2] or str(error)
            return f"cannot reach Canvas at {canvas_root}: {reason}; check CANVAS_BASE_URL and the network"
        if 200 <= error.status < 300:
            return (
                f"{canvas_root} is not a Canvas: {what} answered {error.status} without Canvas JSON "
                "(an HTML page?); set CANVAS_BASE_URL to the Canvas root"
            )
        if 300 <= error.status < 400:
            return (
                f"{what} redirects ({error.status}) instead of answering; set CANVAS_BASE_URL to the Canvas "
                "root the API lives at (https, no path)"
            )
        return f"Canvas at {canvas_root} answered {error.status} (server error); try again later"
    return f"unexpected answer from Canvas at {canvas_root}: {error}"


async def link_with_token(
    sessions: SessionFactory,
    canvas: CanvasClient,
    cipher: TokenCipher,
    *,
    team_id: str,
    slack_user_id: str,
    token: str,
    token_kind: str = "pat",
    refresh_token: str | None = None,
    expires_in: int | None = None,
    canvas_user: CanvasUser | None = None,
) -> CanvasUser:
    """Check the token against users/self (CanvasError propagates: nothing is saved), then store it."""
    who = canvas_user or await canvas.self_user(token)
    now = utcnow()
    async with sessions.begin() as session:
        await repo.upsert_link(
            session,
            team_id=team_id,
            slack_user_id=slack_user_id,
            canvas_user_id=who.id,
            canvas_name=who.name,
            token_kind=token_kind,
            access_token_enc=cipher.encrypt(token),
            refresh_token_enc=cipher.encrypt(refresh_token) if refresh_token else None,
            token_expires_at=now + timedelta(seconds=expires_in) if expires_in else None,
            now=now,
        )
    log.info("linked Slack user %s (team %s) to Canvas user %s", slack_user_id, team_id, who.id)
    return who


@dataclass(frozen=True, slots=True)
class Unlinked:
    user: LinkedUser
    subscriptions: int


async def unlink(sessions: SessionFactory, team_id: str, slack_user_id: str) -> Unlinked | None:
    """Forget the user's tokens and per-user state; returns the removed row (caller may revoke at Canvas)
    and how many channel subscriptions went with it."""
    async with sessions.begin() as session:
        user = await repo.get_linked(session, team_id, slack_user_id)
        if user is None:
            return None
        # Known conferences, mutes, recording watches and the user's channel subscriptions go with the
        # row (ON DELETE CASCADE): without the token nothing of theirs can be polled.
        await session.execute(
            delete(OutboxMessage).where(
                OutboxMessage.team_id == team_id,
                OutboxMessage.destination == slack_user_id,
                OutboxMessage.status == "pending",
            )
        )
        subscriptions = await session.scalar(
            select(func.count()).select_from(Subscription).where(Subscription.subscriber_id == user.id)
        )
        await session.delete(user)
        return Unlinked(user, subscriptions or 0)
