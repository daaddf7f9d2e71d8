"""Pydantic views of the Canvas JSON the bot reads.

Canvas instances differ in version, plugins and conference providers, so every model is
tolerant: unknown fields are ignored, nulls become empty values where an empty value means
the same thing, and every timestamp becomes a UTC-aware datetime so comparisons never mix
naive and aware values.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)

LIVE_WINDOW = timedelta(hours=24)
"""Canvas' `live` scope only counts conferences started within this window (older ones are zombies)."""


def past_live_window(started_at: datetime, now: datetime) -> bool:
    """Started longer ago than Canvas' live scope reaches (`started_at BETWEEN now() - 1 day AND now()`,
    both ends included): a conference nobody ended is no longer live. The one place this rule lives."""
    return started_at < now - LIVE_WINDOW


_MANAGING_ENROLLMENTS = frozenset({"teacher", "ta", "designer"})
_TEACHING_ENROLLMENTS = frozenset({"teacher", "ta"})
# Above this an integer timestamp is epoch milliseconds (BigBlueButton recordings), below it seconds.
_EPOCH_MS_THRESHOLD = 100_000_000_000


def _epoch_to_datetime(value: Any) -> Any:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value / 1000 if abs(value) > _EPOCH_MS_THRESHOLD else value
        return datetime.fromtimestamp(seconds, tz=UTC)
    return value


def _as_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _null_to_empty_list(value: Any) -> Any:
    return [] if value is None else value


def _null_to_empty_str(value: Any) -> Any:
    return "" if value is None else value


def _null_to_false(value: Any) -> Any:
    return False if value is None else value


def _none_if_invalid(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """For decorative fields: a malformed value must not make the whole poll fail."""
    try:
        return handler(value)
    except ValidationError:
        return None


CanvasId = Annotated[int, Field(ge=0, lt=2**63)]
"""Canvas ids are 64-bit (shard * 10**13 + local id): anything outside fits no database column, and a
listing that carries one is refused here, as the unparseable answer it is, instead of failing the write."""

UtcDatetime = Annotated[datetime, BeforeValidator(_epoch_to_datetime), AfterValidator(_as_utc)]
NullableList = BeforeValidator(_null_to_empty_list)
NullableStr = Annotated[str, BeforeValidator(_null_to_empty_str)]


class _CanvasModel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class PlaybackFormat(_CanvasModel):
    type: str | None = None
    url: str | None = None
    length: str | int | None = None


class Recording(_CanvasModel):
    model_config = ConfigDict(coerce_numbers_to_str=True)

    recording_id: str
    title: str | None = None
    duration_minutes: Annotated[int | None, WrapValidator(_none_if_invalid)] = None
    playback_url: str | None = None
    playback_formats: Annotated[list[PlaybackFormat], NullableList] = []
    created_at: Annotated[UtcDatetime | None, WrapValidator(_none_if_invalid)] = None

    @property
    def best_url(self) -> str | None:
        """Where to watch it: the direct playback URL, else the first format that has one."""
        if self.playback_url:
            return self.playback_url
        return next((fmt.url for fmt in self.playback_formats if fmt.url), None)


class Conference(_CanvasModel):
    id: CanvasId
    title: NullableStr = ""
    conference_type: str | None = None
    description: str | None = None
    duration: int | None = None
    started_at: UtcDatetime | None = None
    ended_at: UtcDatetime | None = None
    # Scheduled times (newer Canvas only): decorative, so a malformed one never fails a poll.
    start_at: Annotated[UtcDatetime | None, WrapValidator(_none_if_invalid)] = None
    end_at: Annotated[UtcDatetime | None, WrapValidator(_none_if_invalid)] = None
    context_type: str
    context_id: CanvasId
    long_running: Annotated[bool, BeforeValidator(_null_to_false)] = False
    url: str | None = None
    join_url: str | None = None
    recordings: Annotated[list[Recording], NullableList] = []
    users: Annotated[list[CanvasId], NullableList] = []
    # Participation (newer Canvas): `invitees` are participants who never joined, `attendees` those who
    # joined at least once (Canvas turns an invitee into an attendee at their first join, for good: a
    # reused room's list accumulates across sessions); the creator is in `users` alone ("initiator").
    # None when Canvas does not send them (older versions): attendance is then unknown, not empty.
    invitees: list[CanvasId] | None = None
    attendees: list[CanvasId] | None = None

    def is_live(self, now: datetime) -> bool:
        """Canvas' own `live` rule: started within the last 24 h and not (yet) ended.

        Never-started conferences are not live, and neither are "zombies" started more than
        24 h ago that nobody ended. LTI providers (Zoom, Teams) may never set `started_at`,
        so they never count as live here.
        """
        if self.started_at is None:
            return False
        now = _as_utc(now)
        if self.started_at > now or past_live_window(self.started_at, now):
            return False
        return self.ended_at is None or self.ended_at > now


class ConferenceList(_CanvasModel):
    """The `{"conferences": [...]}` envelope every conferences index answers with."""

    conferences: Annotated[list[Conference], NullableList] = []


class CanvasUser(_CanvasModel):
    id: CanvasId
    name: NullableStr = ""
    short_name: str | None = None
    sortable_name: str | None = None  # "Lovelace, Ada": how Canvas sorts people in lists


class Enrollment(_CanvasModel):
    type: NullableStr = ""
    role: str | None = None
    enrollment_state: str | None = None

    @property
    def can_manage(self) -> bool:
        """Teacher, TA or designer, whichever spelling ("teacher" or "TeacherEnrollment") is used."""
        if self.enrollment_state not in (None, "active"):
            return False
        return self._kind in _MANAGING_ENROLLMENTS

    @property
    def teaches(self) -> bool:
        """Teacher or TA: who hosts the course's conferences (a designer builds the course, not lessons)."""
        return self.enrollment_state in (None, "active") and self._kind in _TEACHING_ENROLLMENTS

    @property
    def _kind(self) -> str:
        return self.type.lower().removesuffix("enrollment")


class Course(_CanvasModel):
    id: CanvasId
    name: NullableStr = ""
    course_code: str | None = None
    enrollments: Annotated[list[Enrollment], NullableList] = []

    @property
    def can_manage_conferences(self) -> bool:
        """Whether the token's user may subscribe a channel to this course's conferences."""
        return any(enrollment.can_manage for enrollment in self.enrollments)

    @property
    def taught(self) -> bool:
        """Whether the token's user teaches this course (teacher or TA)."""
        return any(enrollment.teaches for enrollment in self.enrollments)


class Group(_CanvasModel):
    id: CanvasId
    name: NullableStr = ""
    course_id: CanvasId | None = None


class TokenGrant(_CanvasModel):
    """An OAuth2 token response. Tokens are SecretStr so repr/str/logging never show them."""

    access_token: SecretStr
    token_type: NullableStr = "Bearer"
    refresh_token: SecretStr | None = None
    expires_in: int | None = None
    user: CanvasUser | None = None
