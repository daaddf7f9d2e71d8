"""`Credentials.call`, the one credentials path, against the sandbox Canvas over real HTTP (issue 10).

Every Canvas caller hands `call` what it wants to do with a token. These tests drive it through the
fault proxy into the sandbox's API and token endpoint with a real SQLite database: a fresh token is
used as is; one expiring soon is refreshed first; a 401 (the sandbox clock jumped past `expires_in`,
which the bot cannot know) is refreshed once and the operation run again; only a token that cannot
be refreshed or a dead grant is `RelinkNeeded`; a failing token endpoint is a `CanvasError`, never a
relink. The recording watcher, which had no refresh on 401, is checked the same way.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.canvas.client import CanvasClient
from bot.canvas.errors import CanvasError, Transient
from bot.canvas.oauth import TOKEN_PATH, CanvasOAuth
from bot.domain.models import CanvasUser, Course
from bot.engine.credentials import Credentials, RelinkNeeded, StoredToken
from bot.engine.linking import link_with_token
from bot.engine.recordings import RecordingWatcher, watch_row
from bot.store import repo
from bot.store.crypto import TokenCipher
from bot.store.db import SessionFactory, create_engine, session_factory, upgrade
from bot.store.models import LinkedUser, OutboxMessage, utcnow
from tests.faults import Fault, FaultProxy, html_page
from tests.oauth_support import developer_key, grant_for, works
from tests.pg import throwaway_database
from tests.support import CanvasWorld, Sandbox, fernet_key

CLIENT_ID, CLIENT_SECRET = "10000000000001", "sandbox-developer-key-secret"


@dataclass
class World:
    """One course with an OAuth-linked teacher and a PAT-linked student; the bot's side through the proxy."""

    credentials: Credentials
    sessions: SessionFactory
    cipher: TokenCipher
    client: CanvasClient
    course_id: int
    teacher: StoredToken
    teacher_grant: dict[str, Any]
    student: StoredToken
    student_pat: str

    async def row(self, stored: StoredToken) -> LinkedUser:
        async with self.sessions() as session:
            user = await session.scalar(select(LinkedUser).where(LinkedUser.id == stored.user_id))
        assert user is not None
        return user


class Courses:
    """An operation that lists the caller's courses and remembers every token it was run with."""

    def __init__(self, client: CanvasClient) -> None:
        self.client = client
        self.tokens: list[str] = []

    async def __call__(self, token: str) -> list[Course]:
        self.tokens.append(token)
        return await self.client.courses(token)


def expire_at_canvas(canvas_sandbox: Sandbox) -> None:
    """Every access token passes its `expires_in` at Canvas; the bot's stored expiry says it is still good."""
    canvas_sandbox.post("/_sandbox/clock", {"advance_seconds": 3700})


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """SQLite, or with `indirect` parametrisation "postgresql" a throwaway PostgreSQL database (where
    replicas meet: row locks are real there)."""
    if getattr(request, "param", "sqlite") == "postgresql":
        with throwaway_database() as url:
            upgrade(url)
            yield url
        return
    url = f"sqlite+aiosqlite:///{tmp_path / 'confbot.db'}"
    upgrade(url)  # runs its own event loop, so not inside an async fixture
    yield url


async def _stored(sessions: SessionFactory, slack_user_id: str) -> StoredToken:
    async with sessions() as session:
        user = await session.scalar(select(LinkedUser).where(LinkedUser.slack_user_id == slack_user_id))
    assert user is not None
    return StoredToken.of(user)


@pytest.fixture
async def world(
    database_url: str, canvas: CanvasWorld, canvas_sandbox: Sandbox, canvas_faults: FaultProxy
) -> AsyncIterator[World]:
    developer_key(canvas_sandbox, CLIENT_ID, CLIENT_SECRET)
    course = canvas.course("Biology 101")
    teacher = canvas.user("Tess Teacher")
    student = canvas.user("Sam Student")
    canvas.enroll(course["id"], teacher["id"], "TeacherEnrollment")
    canvas.enroll(course["id"], student["id"])
    grant = grant_for(canvas_sandbox, teacher["id"], CLIENT_ID, CLIENT_SECRET)
    engine = create_engine(database_url)
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
            slack_user_id="UTESS",
            token=grant["access_token"],
            token_kind="oauth",
            refresh_token=grant["refresh_token"],
            expires_in=grant["expires_in"],
            canvas_user=CanvasUser(id=teacher["id"], name=teacher["name"]),
        )
        await link_with_token(
            sessions, client, cipher, team_id="T1", slack_user_id="USAM", token=student["token"]
        )
        yield World(
            Credentials(sessions, cipher, oauth),
            sessions,
            cipher,
            client,
            int(course["id"]),
            await _stored(sessions, "UTESS"),
            grant,
            await _stored(sessions, "USAM"),
            student["token"],
        )
    await engine.dispose()


async def test_a_fresh_token_is_used_as_is(world: World, canvas_faults: FaultProxy) -> None:
    courses = Courses(world.client)
    assert [c.id for c in await world.credentials.call(world.teacher, courses)] == [world.course_id]
    assert courses.tokens == [world.teacher_grant["access_token"]]
    assert canvas_faults.seen(TOKEN_PATH) == 0, "no refresh for a token that is good for an hour"


async def test_a_token_expiring_soon_is_refreshed_before_the_call(
    world: World, canvas_faults: FaultProxy, canvas_sandbox: Sandbox
) -> None:
    world.teacher.expires_at = utcnow() + timedelta(minutes=2)
    courses = Courses(world.client)
    assert [c.id for c in await world.credentials.call(world.teacher, courses)] == [world.course_id]
    assert canvas_faults.seen(TOKEN_PATH) == 1
    [used] = courses.tokens
    assert used != world.teacher_grant["access_token"] and works(canvas_sandbox, used)
    stored = await world.row(world.teacher)
    assert world.cipher.decrypt(stored.access_token_enc) == used, "the new token is stored"
    assert stored.token_expires_at is not None and stored.token_expires_at > utcnow() + timedelta(minutes=50)


async def test_a_401_refreshes_once_and_runs_the_call_again(
    world: World, canvas_faults: FaultProxy, canvas_sandbox: Sandbox
) -> None:
    expire_at_canvas(canvas_sandbox)
    courses = Courses(world.client)
    assert [c.id for c in await world.credentials.call(world.teacher, courses)] == [world.course_id]
    assert canvas_faults.seen(TOKEN_PATH) == 1
    first, second = courses.tokens
    assert first == world.teacher_grant["access_token"] and works(canvas_sandbox, second)
    assert world.cipher.decrypt((await world.row(world.teacher)).access_token_enc) == second


async def test_a_401_on_a_personal_access_token_needs_relink_without_asking_the_token_endpoint(
    world: World, canvas_faults: FaultProxy, canvas_sandbox: Sandbox
) -> None:
    canvas_sandbox.post(f"/_sandbox/tokens/{world.student_pat}/revoke")
    courses = Courses(world.client)
    with pytest.raises(RelinkNeeded) as caught:
        await world.credentials.call(world.student, courses)
    assert "401" in caught.value.reason
    assert courses.tokens == [world.student_pat], "not run again: nothing could have changed"
    assert canvas_faults.seen(TOKEN_PATH) == 0


async def test_a_dead_grant_needs_relink(
    world: World, canvas_faults: FaultProxy, canvas_sandbox: Sandbox
) -> None:
    """The user revoked the app in Canvas: the token is 401 and the refresh "refresh_token not found"."""
    canvas_sandbox.post(f"/_sandbox/tokens/{world.teacher_grant['access_token']}/revoke")
    with pytest.raises(RelinkNeeded) as caught:
        await world.credentials.call(world.teacher, Courses(world.client))
    assert "invalid_request" in caught.value.reason
    assert canvas_faults.seen(TOKEN_PATH) == 1


@pytest.mark.parametrize(
    "fault", [html_page(502), Fault("reset", forward=False)], ids=["proxy-html-502", "reset"]
)
async def test_a_failing_token_endpoint_is_a_canvas_error_not_a_relink(
    fault: Fault, world: World, canvas_faults: FaultProxy, canvas_sandbox: Sandbox
) -> None:
    expire_at_canvas(canvas_sandbox)
    on_refresh = replace(fault, path=f"^{TOKEN_PATH}$", method="POST")
    with canvas_faults.active(on_refresh), pytest.raises(CanvasError) as caught:
        await world.credentials.call(world.teacher, Courses(world.client))
    assert isinstance(caught.value, Transient) and on_refresh.applied == 1
    assert not (await world.row(world.teacher)).needs_relink
    courses = await world.credentials.call(world.teacher, Courses(world.client))  # the fault is over
    assert [c.id for c in courses] == [world.course_id]


async def test_racing_callers_with_an_expired_token_share_one_refresh(
    world: World, canvas_faults: FaultProxy, canvas_sandbox: Sandbox
) -> None:
    """A user's poll, subscription poll and slash command meet the same 401 at once. Canvas invalidates
    the previous access token on every refresh, so three refreshes would leave two callers with a dead
    token (and, refreshing only once, asking to relink): they share the one refresh instead."""
    expire_at_canvas(canvas_sandbox)
    snapshots = [replace(world.teacher) for _ in range(3)]  # each caller read the row on its own
    results = await asyncio.gather(*(world.credentials.call(s, Courses(world.client)) for s in snapshots))
    assert [[c.id for c in courses] for courses in results] == [[world.course_id]] * 3
    assert canvas_faults.seen(TOKEN_PATH) == 1
    assert len({s.access_enc for s in snapshots}) == 1, "every caller holds the one new token"


async def test_the_recording_watcher_refreshes_an_expired_token_and_replies(
    world: World, canvas: CanvasWorld, canvas_faults: FaultProxy, canvas_sandbox: Sandbox
) -> None:
    """The token expired at Canvas between the lecture and its recording: the check refreshes on the
    401 and queues the "recording ready" reply instead of finding "no listing" for a day."""
    lecture = canvas.conference(world.course_id, "Cell biology", [world.teacher_grant["user"]["id"]])
    canvas.start(lecture["id"])
    canvas.end(lecture["id"])
    canvas_sandbox.post(f"/_sandbox/conferences/{lecture['id']}/recordings", {"title": "Cell biology (rec)"})
    now = utcnow()
    async with world.sessions.begin() as session:
        await repo.watch_recordings(
            session,
            [
                watch_row(
                    team_id="T1",
                    destination="UTESS",
                    event_conference_id=lecture["id"],
                    started_at=now - timedelta(hours=1),
                    context_type="Course",
                    context_id=world.course_id,
                    linked_user_id=world.teacher.user_id,
                    now=now,
                    first_check=timedelta(0),
                )
            ],
        )
    expire_at_canvas(canvas_sandbox)
    watcher = RecordingWatcher(
        world.sessions, world.client, world.credentials, check_every=timedelta(minutes=5)
    )
    assert await watcher.tick() == 1
    assert canvas_faults.seen(TOKEN_PATH) == 1
    async with world.sessions() as session:
        queued = (await session.scalars(select(OutboxMessage))).all()
    assert [row.destination for row in queued] == ["UTESS"]
    assert "Cell biology (rec)" in str(queued[0].payload)
    assert works(canvas_sandbox, world.cipher.decrypt((await world.row(world.teacher)).access_token_enc))


async def test_a_stored_token_another_replica_refreshed_is_adopted(
    world: World, canvas_faults: FaultProxy, canvas_sandbox: Sandbox
) -> None:
    """Another replica refreshed (so this replica's token is dead at Canvas) and stored the new token:
    the 401 here adopts the stored one rather than refreshing again and killing the other's."""
    elsewhere = replace(world.teacher)
    async with CanvasOAuth(canvas_sandbox.url, CLIENT_ID, CLIENT_SECRET) as other_oauth:
        other = Credentials(world.sessions, world.cipher, other_oauth)
        theirs = await other.refresh(elsewhere)
    courses = Courses(world.client)
    assert [c.id for c in await world.credentials.call(world.teacher, courses)] == [world.course_id]
    assert courses.tokens == [world.teacher_grant["access_token"], theirs]
    assert canvas_faults.seen(TOKEN_PATH) == 0, "this replica asked the token endpoint nothing"
    assert works(canvas_sandbox, theirs)


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_two_replicas_meeting_a_401_at_once_refresh_once_and_nobody_relinks(
    world: World, canvas_faults: FaultProxy, canvas_sandbox: Sandbox
) -> None:
    """Fails before: each replica refreshed (its lock was per process), the second refresh killed the
    first one's new token at Canvas, and a 401 on the freshly refreshed token asked the user to relink
    (the chaos soak's wrongful unlink). The user's row is locked while one refreshes; the other adopts."""
    expire_at_canvas(canvas_sandbox)
    async with CanvasOAuth(canvas_faults.url, CLIENT_ID, CLIENT_SECRET, timeout=5.0) as other_oauth:
        replicas = [world.credentials, Credentials(world.sessions, world.cipher, other_oauth)]
        slow_token_endpoint = Fault("delay", path=f"^{TOKEN_PATH}$", method="POST", seconds=0.5)
        with canvas_faults.active(slow_token_endpoint):  # both are inside refresh() at the same time
            results = await asyncio.gather(
                *(replica.call(replace(world.teacher), Courses(world.client)) for replica in replicas)
            )
    assert [[c.id for c in courses] for courses in results] == [[world.course_id]] * 2
    assert canvas_faults.seen(TOKEN_PATH) == 1, "one refresh at Canvas for both replicas"
    assert not (await world.row(world.teacher)).needs_relink


async def test_a_freshly_refreshed_token_rejected_too_is_transient_not_a_relink(
    world: World, canvas_faults: FaultProxy, canvas_sandbox: Sandbox
) -> None:
    """Only the token endpoint can say a grant is dead: a 401 right after a refresh (another replica
    refreshed in between) backs off and tries again, and the next call works."""
    expire_at_canvas(canvas_sandbox)
    rejected = Fault(
        "respond",
        path="^/api/v1/courses",
        status=401,
        times=2,  # the expired token, then the one just refreshed
        body=b'{"errors":[{"message":"Invalid access token."}]}',
        headers={"WWW-Authenticate": 'Bearer realm="canvas-lms"', "Content-Type": "application/json"},
    )
    with canvas_faults.active(rejected), pytest.raises(Transient):
        await world.credentials.call(world.teacher, Courses(world.client))
    assert canvas_faults.seen(TOKEN_PATH) == 1
    assert not (await world.row(world.teacher)).needs_relink
    courses = await world.credentials.call(world.teacher, Courses(world.client))
    assert [c.id for c in courses] == [world.course_id]
