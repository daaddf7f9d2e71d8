"""Refreshing OAuth tokens through the fault proxy: a passing fault at the token endpoint never unlinks.

The real path: `Credentials` -> `CanvasOAuth` -> the fault proxy -> the sandbox Canvas token endpoint,
over loopback, with a real SQLite database. Canvas' throttle, 429s, HTML error pages from a proxy,
5xx, resets and hangs must come out as `Throttled` / `Transient` (the poller backs off and keeps the
link); only Canvas' final refusals (invalid_grant, invalid_client, invalid_request "refresh_token not
found") come out as `RelinkNeeded`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from bot.canvas.client import CanvasClient
from bot.canvas.errors import CanvasError, Throttled, Transient
from bot.canvas.oauth import TOKEN_PATH, CanvasOAuth
from bot.domain.models import CanvasUser
from bot.engine.credentials import Credentials, RelinkNeeded, StoredToken
from bot.engine.linking import link_with_token
from bot.engine.recordings import RecordingWatcher, watch_row
from bot.store import repo
from bot.store.crypto import TokenCipher
from bot.store.db import SessionFactory, create_engine, session_factory, upgrade
from bot.store.models import LinkedUser, utcnow
from tests.faults import Fault, FaultProxy, canvas_throttle, html_page
from tests.oauth_support import developer_key, grant_for, works
from tests.support import CanvasWorld, Sandbox, fernet_key

CLIENT_ID, CLIENT_SECRET = "10000000000001", "sandbox-developer-key-secret"
TOKEN_ENDPOINT = f"^{TOKEN_PATH}$"


def _on_refresh(fault: Fault) -> Fault:
    """The fault, applied to POSTs at the token endpoint only (revocation and the API pass)."""
    return replace(fault, path=TOKEN_ENDPOINT, method="POST")


# Each: (fault, the class the refresh must raise). None of them says anything about the grant.
TRANSIENT_FAULTS: dict[str, tuple[Fault, type[CanvasError]]] = {
    "canvas-throttle-403-text": (canvas_throttle(), Throttled),
    "throttle-429-retry-after": (
        Fault("respond", status=429, body=b"Too Many Requests", headers={"Retry-After": "7"}),
        Throttled,
    ),
    "proxy-html-404": (html_page(404), Transient),
    "proxy-html-400": (html_page(400), Transient),
    "bad-gateway-502": (html_page(502), Transient),
    "unavailable-503": (
        Fault("respond", status=503, body=b'{"errors":[{"message":"An error occurred."}]}'),
        Transient,
    ),
    "reset-before-canvas": (Fault("reset", forward=False), Transient),
    "hang-until-timeout": (Fault("hang"), Transient),
}


@dataclass
class Linked:
    """One OAuth-linked user: the bot's credentials (through the proxy) and its stored token."""

    credentials: Credentials
    sessions: SessionFactory
    cipher: TokenCipher
    stored: StoredToken
    grant: dict[str, Any]

    async def row(self) -> LinkedUser:
        async with self.sessions() as session:
            user = await session.scalar(select(LinkedUser).where(LinkedUser.id == self.stored.user_id))
        assert user is not None
        return user


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'confbot.db'}"
    upgrade(url)  # runs its own event loop, so not inside an async fixture
    return url


@pytest.fixture
async def linked(
    database_url: str, canvas: CanvasWorld, canvas_sandbox: Sandbox, canvas_faults: FaultProxy
) -> AsyncIterator[Linked]:
    developer_key(canvas_sandbox, CLIENT_ID, CLIENT_SECRET)
    ada = canvas.user("Ada Lovelace")
    grant = grant_for(canvas_sandbox, ada["id"], CLIENT_ID, CLIENT_SECRET)
    url = database_url
    engine = create_engine(url)
    sessions = session_factory(engine)
    cipher = TokenCipher([fernet_key()])
    async with (
        CanvasClient(canvas_faults.url) as client,
        CanvasOAuth(canvas_faults.url, CLIENT_ID, CLIENT_SECRET, timeout=1.0) as oauth,
    ):
        await link_with_token(
            sessions,
            client,
            cipher,
            team_id="T1",
            slack_user_id="UADA",
            token=grant["access_token"],
            token_kind="oauth",
            refresh_token=grant["refresh_token"],
            expires_in=grant["expires_in"],
            canvas_user=CanvasUser(id=ada["id"], name=ada["name"]),
        )
        async with sessions() as session:
            user = await session.scalar(select(LinkedUser).where(LinkedUser.slack_user_id == "UADA"))
        assert user is not None
        yield Linked(Credentials(sessions, cipher, oauth), sessions, cipher, StoredToken.of(user), grant)
    await engine.dispose()


@pytest.mark.parametrize("name", list(TRANSIENT_FAULTS))
async def test_a_passing_fault_at_the_token_endpoint_keeps_the_link(
    name: str, linked: Linked, canvas_faults: FaultProxy, canvas_sandbox: Sandbox
) -> None:
    fault, expected = TRANSIENT_FAULTS[name]
    fault = _on_refresh(fault)
    with canvas_faults.active(fault), pytest.raises(expected) as caught:
        await linked.credentials.refresh(linked.stored)
    assert fault.applied >= 1, "the fault really met the refresh"
    if name == "throttle-429-retry-after":
        assert isinstance(caught.value, Throttled) and caught.value.retry_after == 7

    token = await linked.credentials.refresh(linked.stored)  # the fault is over: same refresh token works
    assert works(canvas_sandbox, token)
    assert not (await linked.row()).needs_relink


async def test_a_refresh_canvas_performed_but_whose_answer_was_lost_keeps_the_link(
    linked: Linked, canvas_faults: FaultProxy, canvas_sandbox: Sandbox
) -> None:
    """Canvas rotated the access token, the reset ate the answer: the refresh token still works."""
    lost = _on_refresh(Fault("reset", forward=True, times=1))
    with canvas_faults.active(lost), pytest.raises(Transient):
        await linked.credentials.refresh(linked.stored)
    assert lost.applied == 1
    assert not works(canvas_sandbox, linked.grant["access_token"]), "Canvas did refresh behind the reset"
    assert works(canvas_sandbox, await linked.credentials.refresh(linked.stored))


@pytest.mark.parametrize("name", list(TRANSIENT_FAULTS))
async def test_an_early_refresh_that_fails_for_now_keeps_polling_with_the_current_token(
    name: str, linked: Linked, canvas_faults: FaultProxy, canvas_sandbox: Sandbox
) -> None:
    """Two minutes before expiry the bot refreshes early; if the endpoint is busy the token still works."""
    fault, expected = TRANSIENT_FAULTS[name]
    fault = _on_refresh(fault)
    linked.stored.expires_at = utcnow() + timedelta(minutes=2)
    with canvas_faults.active(fault):
        token = await linked.credentials.access_token(linked.stored)
        assert token == linked.grant["access_token"] and works(canvas_sandbox, token)

        linked.stored.expires_at = utcnow() - timedelta(seconds=1)  # now really expired: back off
        with pytest.raises(expected):
            await linked.credentials.access_token(linked.stored)
    assert fault.applied >= 2


async def test_a_revoked_grant_needs_relink(
    linked: Linked, canvas_faults: FaultProxy, canvas_sandbox: Sandbox
) -> None:
    """Canvas answers 400 invalid_request "refresh_token not found" once the user revoked the token."""
    canvas_sandbox.post(f"/_sandbox/tokens/{linked.grant['access_token']}/revoke")
    with pytest.raises(RelinkNeeded) as caught:
        await linked.credentials.refresh(linked.stored)
    assert "invalid_request" in caught.value.reason
    assert canvas_faults.seen(TOKEN_PATH) == 1, "through the proxy, and asked once"


async def test_a_grant_of_another_developer_key_needs_relink(
    linked: Linked, canvas: CanvasWorld, canvas_sandbox: Sandbox
) -> None:
    """400 invalid_grant ("incorrect client"): this key can never refresh that grant."""
    developer_key(canvas_sandbox, "20000000000002", "other-secret")
    bob = canvas.user("Bob")
    foreign = grant_for(canvas_sandbox, bob["id"], "20000000000002", "other-secret")
    stored = replace(linked.stored)
    stored.refresh_enc = linked.cipher.encrypt(foreign["refresh_token"])
    with pytest.raises(RelinkNeeded) as caught:
        await linked.credentials.refresh(stored)
    assert "invalid_grant" in caught.value.reason


async def test_a_wrong_client_secret_needs_relink(
    linked: Linked, canvas_faults: FaultProxy, canvas_sandbox: Sandbox
) -> None:
    """401 invalid_client: the developer key was deleted or its secret rotated."""
    async with CanvasOAuth(canvas_faults.url, CLIENT_ID, "rotated-away") as wrong:
        credentials = Credentials(linked.sessions, linked.cipher, wrong)
        with pytest.raises(RelinkNeeded) as caught:
            await credentials.refresh(linked.stored)
    assert "invalid_client" in caught.value.reason
    assert works(canvas_sandbox, await linked.credentials.refresh(linked.stored)), "the grant itself is fine"


async def test_a_dead_grant_met_by_the_recording_check_does_not_abort_its_tick(
    linked: Linked, canvas_sandbox: Sandbox, canvas_faults: FaultProxy
) -> None:
    """The recording watcher refreshes early too; a dead grant there is "no listing", not a crash."""
    now = utcnow()
    async with linked.sessions.begin() as session:
        await session.execute(
            update(LinkedUser)
            .where(LinkedUser.id == linked.stored.user_id)
            .values(token_expires_at=now + timedelta(minutes=1))  # due for an early refresh
        )
        await repo.watch_recordings(
            session,
            [
                watch_row(
                    team_id="T1",
                    destination="UADA",
                    event_conference_id=424242,
                    started_at=now - timedelta(hours=1),
                    context_type="Course",
                    context_id=1,
                    linked_user_id=linked.stored.user_id,
                    now=now,
                    first_check=timedelta(0),
                )
            ],
        )
    canvas_sandbox.post(f"/_sandbox/tokens/{linked.grant['access_token']}/revoke")
    async with CanvasClient(canvas_faults.url) as client:
        watcher = RecordingWatcher(
            linked.sessions, client, linked.credentials, check_every=timedelta(minutes=5)
        )
        assert await watcher.tick() == 0
    assert canvas_faults.seen(TOKEN_PATH) == 1, "the refresh was tried and refused"
