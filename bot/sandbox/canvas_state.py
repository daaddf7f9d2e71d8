"""In-memory world of the sandbox Canvas: users, tokens, courses, groups, conferences, clock.

Everything a request needs is indexed up front (token -> user, user -> conference ids, user -> active
course ids) so a benchmark with 100k tokens costs dictionary look-ups, not scans.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from bot.sandbox.canvas_scopes import allows, not_granted

LIVE_WINDOW_SECONDS = 24 * 3600
AUTH_CODE_TTL_SECONDS = 600
OAUTH_TOKEN_TTL_SECONDS = 3600

ENROLLMENT_TYPES: dict[str, str] = {
    "StudentEnrollment": "student",
    "TeacherEnrollment": "teacher",
    "TaEnrollment": "ta",
    "DesignerEnrollment": "designer",
    "ObserverEnrollment": "observer",
}
# Roles that hold manage_content in Canvas and therefore see every conference of a course.
MANAGING_TYPES = frozenset({"TeacherEnrollment", "TaEnrollment", "DesignerEnrollment"})
FAULT_KINDS = frozenset({"error_500", "delay", "throttle", "timeout"})

ContextType = Literal["Course", "Group"]

LIVE_POLL_ROUTE = "GET /api/v1/conferences?state=live"
"""The route the bot polls each unit with (a user's live conferences)."""


class SandboxError(Exception):
    """A control-API request that cannot be honoured; `status` becomes the HTTP status."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def iso(ts: float | None) -> str | None:
    """Canvas renders times as second-precision UTC with a `Z` suffix."""
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def parse_iso(text: str) -> float:
    """Accept any ISO 8601 string; naive times are taken as UTC."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise SandboxError(f"not an ISO 8601 time: {text!r}") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def new_token() -> str:
    """Shaped like Canvas tokens (`<shard>~<random>`) so clients cannot rely on a simpler format."""
    return "1~" + secrets.token_hex(24)


class SandboxClock:
    """Real UTC time plus an offset that tests move forward instead of sleeping."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> float:
        self.offset += seconds
        return self.now()


@dataclass(slots=True)
class User:
    id: int
    name: str


@dataclass(slots=True)
class AccessToken:
    token: str
    user_id: int
    expires_at: float | None = None
    refresh_token: str | None = None
    client_id: str | None = None
    # The `scope` of the authorization that made it; only a key enforcing scopes checks them.
    scopes: list[str] | None = None


@dataclass(slots=True)
class Enrollment:
    id: int
    user_id: int
    course_id: int
    type: str
    state: str = "active"


@dataclass(slots=True)
class Course:
    id: int
    name: str
    course_code: str
    conferencing_disabled: bool = False
    enrollments: list[Enrollment] = field(default_factory=list)


@dataclass(slots=True)
class Group:
    id: int
    name: str
    course_id: int | None
    member_ids: set[int] = field(default_factory=set)


@dataclass(slots=True)
class Recording:
    recording_id: str
    title: str
    duration_minutes: int
    playback_url: str | None
    format_url: str
    created_at: float
    created_at_iso: bool = False


@dataclass(slots=True)
class Conference:
    id: int
    context_type: ContextType
    context_id: int
    title: str
    conference_type: str
    description: str | None
    duration: int | None
    long_running: bool
    created_at: float
    conference_key: str
    invitees: list[int]
    attendees: list[int] = field(default_factory=list)
    # Who created it: Canvas's "initiator" participant, in `users` but never an invitee or attendee
    # (WebConference#add_user keeps that type when they join). None: created by someone not modelled.
    initiator: int | None = None
    started_at: float | None = None
    ended_at: float | None = None
    # Scheduled times (newer Canvas): rendered with Canvas's `infer_conference_details` defaults.
    start_at: float | None = None
    end_at: float | None = None
    recordings: list[Recording] = field(default_factory=list)
    # Real Canvas always answers null; set, it plays a server that fills it (with any text it likes).
    join_url: str | None = None
    # Encoded API JSON, dropped on every change: big conferences then cost one string join per request.
    cached_json: str | None = None

    @property
    def sort_key(self) -> tuple[float, int]:
        return (self.created_at, self.id)

    def users(self) -> list[int]:
        initiator = [] if self.initiator is None else [self.initiator]
        return sorted({*self.invitees, *self.attendees, *initiator})

    def is_live(self, now: float) -> bool:
        """Canvas' `live` scope: started in the last 24 h and not ended yet."""
        if self.started_at is None or not now - LIVE_WINDOW_SECONDS <= self.started_at <= now:
            return False
        return self.ended_at is None or self.ended_at > now


@dataclass(slots=True)
class Fault:
    kind: str
    remaining: int
    seconds: float
    token: str | None
    path_prefix: str


@dataclass(slots=True)
class Settings:
    throttle_status: int = 403
    bucket_high_water: float = 600.0
    up_front_cost: float = 50.0
    request_cost: float = 1.0
    outflow_per_second: float = 10.0
    while1_prefix: bool = False


@dataclass(slots=True)
class Bucket:
    level: float
    updated: float


@dataclass(slots=True)
class DeveloperKey:
    client_id: str
    client_secret: str
    redirect_uri: str
    scopes: list[str] = field(default_factory=list)
    require_scopes: bool = False  # Canvas's "Enforce Scopes" switch


@dataclass(slots=True)
class AuthCode:
    code: str
    client_id: str
    redirect_uri: str
    user_id: int
    expires_at: float
    scope: str | None


class CanvasState:
    """The sandbox's whole world; `create_canvas_app` exposes it as `app.state.canvas`."""

    def __init__(self) -> None:
        self.clock = SandboxClock()
        self.settings = Settings()
        self.users: dict[int, User] = {}
        self.tokens: dict[str, AccessToken] = {}
        self.refresh_tokens: dict[str, AccessToken] = {}
        self.issued: list[str] = []  # every access/refresh token ever handed out (leak tests grep for them)
        self.courses: dict[int, Course] = {}
        self.groups: dict[int, Group] = {}
        self.conferences: dict[int, Conference] = {}
        self.faults: list[Fault] = []
        self.buckets: dict[str, Bucket] = {}
        self.developer_keys: dict[str, DeveloperKey] = {}
        self.auth_codes: dict[str, AuthCode] = {}
        self.logged_in_user_id: int | None = None
        self.request_counts: dict[str, int] = {}
        # Arrival time (time.time(), real seconds: unmoved by `clock.advance`) of every API request per
        # token, so a benchmark can tell how long each user went between two polls.
        self.request_times: dict[str, list[float]] = {}
        self.live_poll_times: dict[str, list[float]] = {}
        """Arrival times of the live poll's requests (LIVE_POLL_ROUTE) per token: a poll's period without
        the session scan's listings in between (bench.scale)."""
        self.request_total = 0
        self.requests_with_cookies = 0
        """API requests that sent a Cookie header: Canvas sets session and CSRF cookies on API answers, and
        a client serving many users must never hand one user's cookies to the next user's request."""
        self.route_totals: dict[str, int] = {}
        self.route_counts: dict[str, dict[str, int]] = {}
        self.error_report_seq = 9000
        # Indexes kept in step with every mutation.
        self.user_conference_ids: dict[int, list[int]] = {}
        self.user_active_courses: dict[int, set[int]] = {}
        self.user_groups: dict[int, set[int]] = {}
        self.context_conference_ids: dict[tuple[str, int], list[int]] = {}
        # Called with (conference, user id) for each user joining through `start_conference`, after the
        # join took effect: where the Live Events emitter hears of joins, as Canvas's does.
        self.join_listeners: list[Callable[[Conference, int], None]] = []
        self._next_id = 1000

    def _id(self) -> int:
        self._next_id += 1
        return self._next_id

    # --- lookups ------------------------------------------------------------------------------

    def user(self, user_id: int) -> User:
        found = self.users.get(user_id)
        if found is None:
            raise SandboxError(f"no user {user_id}", 404)
        return found

    def course(self, course_id: int) -> Course:
        found = self.courses.get(course_id)
        if found is None:
            raise SandboxError(f"no course {course_id}", 404)
        return found

    def group(self, group_id: int) -> Group:
        found = self.groups.get(group_id)
        if found is None:
            raise SandboxError(f"no group {group_id}", 404)
        return found

    def conference(self, conference_id: int) -> Conference:
        found = self.conferences.get(conference_id)
        if found is None:
            raise SandboxError(f"no conference {conference_id}", 404)
        return found

    def active_enrollments(self, course: Course, user_id: int) -> list[Enrollment]:
        return [e for e in course.enrollments if e.user_id == user_id and e.state == "active"]

    def manages(self, course: Course, user_id: int) -> bool:
        return any(e.type in MANAGING_TYPES for e in self.active_enrollments(course, user_id))

    # --- users and tokens ---------------------------------------------------------------------

    def add_user(self, name: str, token: str | None = None) -> tuple[User, str]:
        user = User(id=self._id(), name=name)
        self.users[user.id] = user
        return user, self.issue_token(user.id, token)

    def issue_token(
        self,
        user_id: int,
        token: str | None = None,
        *,
        ttl: float | None = None,
        client_id: str | None = None,
        refresh: bool = False,
        scopes: list[str] | None = None,
    ) -> str:
        self.user(user_id)
        token = token or new_token()
        if token in self.tokens:
            raise SandboxError("token already in use", 409)
        key = self.developer_keys.get(client_id or "")
        if scopes and key is not None and key.require_scopes and not_granted(scopes, key.scopes):
            # AccessToken#must_only_include_valid_scopes
            raise SandboxError(f"scopes not on the developer key: {not_granted(scopes, key.scopes)}")
        expires = None if ttl is None else self.clock.now() + ttl
        record = AccessToken(
            token=token, user_id=user_id, expires_at=expires, client_id=client_id, scopes=scopes
        )
        if refresh:
            record.refresh_token = new_token()
            self.refresh_tokens[record.refresh_token] = record
            self.issued.append(record.refresh_token)
        self.tokens[token] = record
        self.issued.append(token)
        return token

    def revoke_token(self, token: str) -> None:
        record = self.tokens.pop(token, None)
        if record is None:
            raise SandboxError("no such token", 404)
        if record.refresh_token:
            self.refresh_tokens.pop(record.refresh_token, None)

    def rotate_access_token(self, record: AccessToken) -> str:
        """Canvas' refresh regenerates the access token of the same row: the old string stops working."""
        self.tokens.pop(record.token, None)
        record.token = new_token()
        self.issued.append(record.token)
        record.expires_at = self.clock.now() + OAUTH_TOKEN_TTL_SECONDS
        self.tokens[record.token] = record
        return record.token

    def put_developer_key(self, key: DeveloperKey) -> None:
        """Create or replace a key; dropping any scope destroys every token issued under the key, as Canvas's
        DeveloperKey#invalidate_access_tokens_if_scopes_removed! does."""
        before = self.developer_keys.get(key.client_id)
        self.developer_keys[key.client_id] = key
        if before is not None and set(before.scopes) - set(key.scopes):
            for record in [r for r in self.tokens.values() if r.client_id == key.client_id]:
                self.revoke_token(record.token)

    def scope_refused(self, token: str, method: str, path: str) -> bool:
        """Whether a scope-enforcing developer key keeps this token from `method path`."""
        record = self.tokens.get(token)
        key = None if record is None else self.developer_keys.get(record.client_id or "")
        if record is None or key is None or not key.require_scopes:
            return False
        return not allows(record.scopes or (), method, path)

    def authenticate(self, token: str) -> User | str:
        """The user behind a token, or the Canvas error message explaining why not."""
        record = self.tokens.get(token)
        if record is None:
            return "Invalid access token."
        if record.expires_at is not None and record.expires_at <= self.clock.now():
            return "Expired access token."
        return self.users[record.user_id]

    # --- courses and groups -------------------------------------------------------------------

    def add_course(
        self, name: str, course_code: str | None = None, conferencing_disabled: bool = False
    ) -> Course:
        course_id = self._id()
        course = Course(
            id=course_id,
            name=name,
            course_code=course_code or f"C{course_id}",
            conferencing_disabled=conferencing_disabled,
        )
        self.courses[course.id] = course
        return course

    def enroll(self, course_id: int, user_id: int, kind: str, state: str = "active") -> Enrollment:
        course = self.course(course_id)
        self.user(user_id)
        if kind not in ENROLLMENT_TYPES:
            raise SandboxError(f"unknown enrollment type {kind!r}")
        enrollment = Enrollment(id=self._id(), user_id=user_id, course_id=course_id, type=kind, state=state)
        course.enrollments.append(enrollment)
        if state == "active":
            self.user_active_courses.setdefault(user_id, set()).add(course_id)
        return enrollment

    def add_group(self, name: str, course_id: int | None, user_ids: list[int]) -> Group:
        if course_id is not None:
            self.course(course_id)
        for user_id in user_ids:
            self.user(user_id)
        group = Group(id=self._id(), name=name, course_id=course_id, member_ids=set(user_ids))
        self.groups[group.id] = group
        for user_id in user_ids:
            self.user_groups.setdefault(user_id, set()).add(group.id)
        return group

    def context_course(self, conference: Conference) -> Course | None:
        if conference.context_type == "Course":
            return self.courses.get(conference.context_id)
        group = self.groups.get(conference.context_id)
        return None if group is None or group.course_id is None else self.courses.get(group.course_id)

    # --- conferences --------------------------------------------------------------------------

    def add_conference(
        self,
        *,
        context_type: ContextType,
        context_id: int,
        title: str,
        conference_type: str = "BigBlueButton",
        description: str | None = None,
        user_ids: list[int] | None = None,
        long_running: bool = False,
        duration: int | None = 60,
        join_url: str | None = None,
        initiator: int | None = None,
    ) -> Conference:
        if context_type == "Course":
            self.course(context_id)
        else:
            self.group(context_id)
        invitees = [u for u in dict.fromkeys(user_ids or []) if u != initiator]
        for user_id in [*invitees, *([] if initiator is None else [initiator])]:
            self.user(user_id)
        conference = Conference(
            id=self._id(),
            context_type=context_type,
            context_id=context_id,
            title=title,
            conference_type=conference_type,
            description=description,
            duration=None if long_running else duration,
            long_running=long_running,
            created_at=self.clock.now(),
            conference_key=secrets.token_hex(10),
            invitees=invitees,
            join_url=join_url,
            initiator=initiator,
        )
        self.conferences[conference.id] = conference
        self.context_conference_ids.setdefault((context_type, context_id), []).append(conference.id)
        for user_id in conference.users():
            self._index_participant(user_id, conference)
        return conference

    def _index_participant(self, user_id: int, conference: Conference) -> None:
        ids = self.user_conference_ids.setdefault(user_id, [])
        if conference.id in ids:
            return
        ids.append(conference.id)
        ids.sort(key=lambda cid: self.conferences[cid].sort_key, reverse=True)

    def start_conference(
        self, conference_id: int, at: float | None = None, attendee_ids: list[int] | None = None
    ) -> Conference:
        """A join, as Canvas does it: `started_at ||= now` (set once, never reset: `at` places that
        first start in the past), an ended conference restarted (`restart` only clears ended_at), and
        the joining invitees turned attendees."""
        conference = self.conference(conference_id)
        joining = conference.invitees if attendee_ids is None else attendee_ids
        for user_id in joining:
            self.user(user_id)
        if conference.started_at is None:
            conference.started_at = self.clock.now() if at is None else at
        conference.ended_at = None
        for user_id in joining:
            if user_id not in conference.attendees and user_id != conference.initiator:
                conference.attendees.append(user_id)
            self._index_participant(user_id, conference)
        conference.invitees = [u for u in conference.invitees if u not in conference.attendees]
        conference.cached_json = None
        for user_id in dict.fromkeys(joining):
            for listener in self.join_listeners:
                listener(conference, user_id)
        return conference

    def restart_conference(self, conference_id: int) -> Conference:
        """Canvas's `restart`: clears ended_at and nothing else (started_at keeps the first start)."""
        conference = self.conference(conference_id)
        conference.ended_at = None
        conference.cached_json = None
        return conference

    def schedule_conference(
        self, conference_id: int, start_at: float | None, end_at: float | None = None
    ) -> Conference:
        """Set (or move) a conference's scheduled start and end."""
        conference = self.conference(conference_id)
        conference.start_at, conference.end_at = start_at, end_at
        conference.cached_json = None
        return conference

    def delete_conference(self, conference_id: int) -> None:
        """A deleted conference disappears from every listing."""
        conference = self.conference(conference_id)
        del self.conferences[conference_id]
        self.context_conference_ids[(conference.context_type, conference.context_id)].remove(conference_id)
        for user_id in conference.users():
            ids = self.user_conference_ids.get(user_id, [])
            if conference_id in ids:
                ids.remove(conference_id)

    def end_conference(self, conference_id: int, at: float | None = None) -> Conference:
        conference = self.conference(conference_id)
        conference.ended_at = self.clock.now() if at is None else at
        conference.cached_json = None
        return conference

    def add_recording(
        self,
        conference_id: int,
        base_url: str,
        *,
        title: str | None = None,
        duration_minutes: int = 45,
        with_playback_url: bool = True,
        created_at_iso: bool = False,
        playback_url: str | None = None,
        format_url: str | None = None,
    ) -> Recording:
        """A published recording; `playback_url`/`format_url` replace the sandbox's own playback page
        (a server may put any text there)."""
        conference = self.conference(conference_id)
        now = self.clock.now()
        recording_id = f"{conference.conference_key}-{int(now * 1000)}{len(conference.recordings)}"
        url = f"{base_url}/_sandbox/playback/{recording_id}"
        recording = Recording(
            recording_id=recording_id,
            title=title or conference.title,
            duration_minutes=duration_minutes,
            playback_url=(playback_url or url) if with_playback_url else None,
            format_url=format_url or url,
            created_at=now,
            created_at_iso=created_at_iso,
        )
        conference.recordings.append(recording)
        conference.cached_json = None
        return recording

    def visible_to(self, conference: Conference, user_id: int) -> bool:
        """Whether the context still lets the user in (active enrollment or group membership)."""
        course = self.context_course(conference)
        if course is not None and course.conferencing_disabled:
            return False
        if conference.context_type == "Course":
            return conference.context_id in self.user_active_courses.get(user_id, ())
        return conference.context_id in self.user_groups.get(user_id, ())

    def conferences_for_user(self, user_id: int, live_only: bool) -> list[Conference]:
        """`GET /api/v1/conferences`: the user's own conferences, newest first."""
        now = self.clock.now()
        result = []
        for conference_id in self.user_conference_ids.get(user_id, ()):
            conference = self.conferences[conference_id]
            if live_only and not conference.is_live(now):
                continue
            if self.visible_to(conference, user_id):
                result.append(conference)
        return result

    def context_conferences(
        self, context_type: ContextType, context_id: int, user_id: int, see_all: bool
    ) -> list[Conference]:
        """Course/group index: everything for managers, otherwise only the user's own."""
        found = [
            c
            for c in map(
                self.conferences.__getitem__, self.context_conference_ids.get((context_type, context_id), ())
            )
            if see_all or user_id in c.invitees or user_id in c.attendees or user_id == c.initiator
        ]
        found.sort(key=lambda c: c.sort_key, reverse=True)
        return found

    # --- throttling and faults ----------------------------------------------------------------

    def reserve(self, token: str) -> tuple[Bucket, bool]:
        """Leak the token's bucket, charge the up-front cost, and tell whether it was already full."""
        now = self.clock.now()
        bucket = self.buckets.get(token)
        if bucket is None:
            bucket = self.buckets[token] = Bucket(level=0.0, updated=now)
        else:
            leaked = (now - bucket.updated) * self.settings.outflow_per_second
            bucket.level = max(0.0, bucket.level - max(0.0, leaked))
            bucket.updated = now
        bucket.level += self.settings.up_front_cost
        return bucket, bucket.level >= self.settings.bucket_high_water

    def settle(self, bucket: Bucket, cost: float) -> None:
        """Swap the up-front reservation for the request's real cost, as Canvas does afterwards."""
        bucket.level = max(0.0, bucket.level - self.settings.up_front_cost + cost)

    def remaining(self, bucket: Bucket) -> float:
        return max(0.0, self.settings.bucket_high_water - bucket.level)

    def take_fault(self, path: str, token: str | None) -> Fault | None:
        for fault in self.faults:
            if fault.remaining > 0 and path.startswith(fault.path_prefix):
                if fault.token is None or fault.token == token:
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def count_request(self, token: str | None, route: str = "") -> None:
        """Count a request; `route` ("GET /api/v1/conferences?state=live") is counted per token and in
        total, so a test or benchmark can tell the live poll's requests from the session scan's."""
        self.request_total += 1
        if route:
            self.route_totals[route] = self.route_totals.get(route, 0) + 1
            if token:
                per_token = self.route_counts.setdefault(token, {})
                per_token[route] = per_token.get(route, 0) + 1
        if token:
            self.request_counts[token] = self.request_counts.get(token, 0) + 1
            now = time.time()
            self.request_times.setdefault(token, []).append(now)
            if route == LIVE_POLL_ROUTE:
                self.live_poll_times.setdefault(token, []).append(now)

    def next_error_report_id(self) -> int:
        self.error_report_seq += 1
        return self.error_report_seq
