"""Database tables. Everything the bot knows lives here so a restart (or another replica) loses nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone, so we restore it on load)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON()}


class LinkedUser(Base):
    """A Slack user linked to a Canvas account; also the user's poll schedule (one poll unit)."""

    __tablename__ = "linked_users"
    __table_args__ = (
        UniqueConstraint("team_id", "slack_user_id", name="uq_linked_users_team_user"),
        Index("ix_linked_users_due", "needs_relink", "next_poll_at"),
        Index("ix_linked_users_poll_requested_at", "poll_requested_at"),
        Index("ix_linked_users_linked_at", "linked_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    team_id: Mapped[str] = mapped_column(String(32))
    slack_user_id: Mapped[str] = mapped_column(String(32))
    canvas_user_id: Mapped[int] = mapped_column(BigInteger)
    canvas_name: Mapped[str] = mapped_column(String(255))
    token_kind: Mapped[str] = mapped_column(String(8))  # "pat" | "oauth"
    access_token_enc: Mapped[bytes] = mapped_column(LargeBinary)
    refresh_token_enc: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    token_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    needs_relink: Mapped[bool] = mapped_column(Boolean, default=False)
    relink_reason: Mapped[str | None] = mapped_column(String(255), default=None)
    alerts_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    quiet_start: Mapped[str | None] = mapped_column(String(5), default=None)  # "HH:MM" local
    quiet_end: Mapped[str | None] = mapped_column(String(5), default=None)
    timezone: Mapped[str | None] = mapped_column(String(64), default=None)  # Slack users.info tz
    # Slack users.info `locale` ("es-ES"), and when it was last asked: messages to the user are rendered in
    # it. Stored (not only cached in memory) because another replica or the next process renders their DMs.
    locale: Mapped[str | None] = mapped_column(String(16), default=None)
    locale_checked_at: Mapped[datetime | None] = mapped_column(default=None)
    linked_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Written only for a back-off (the poll after an error), so it survives a restart or a takeover; the
    # regular schedule lives in the memory of the replica holding the user's bucket (issue 14).
    next_poll_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_poll_at: Mapped[datetime | None] = mapped_column(default=None)
    last_success_at: Mapped[datetime | None] = mapped_column(default=None)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(255), default=None)
    # The session scan's schedule (null: due now) and the user's reminder lead (null: the default, 0: off).
    next_scan_at: Mapped[datetime | None] = mapped_column(default=None)
    reminder_minutes: Mapped[int | None] = mapped_column(Integer, default=None)
    # A poll asked for now (a Live Event, a restart the scan saw, a new link): whichever replica holds the
    # user's bucket polls them at once. Null: nothing asked.
    poll_requested_at: Mapped[datetime | None] = mapped_column(default=None)
    # The daily agenda DM: local "HH:MM" in the user's Slack time zone (null: off) and its next run (UTC).
    agenda_at: Mapped[str | None] = mapped_column(String(5), default=None)
    agenda_next_at: Mapped[datetime | None] = mapped_column(default=None)
    # After the bell: the attendance report DM'd to a course's teachers when a session ends, and the
    # recording DM'd to invitees who never joined (`/conferences attendance|missed on|off`).
    attendance_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    missed_enabled: Mapped[bool] = mapped_column(Boolean, default=True)


class _KnownColumns:
    """What we remembered about one live conference of one poll source; the diff runs against it."""

    conference_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    started_at: Mapped[datetime]
    title: Mapped[str] = mapped_column(Text)
    context_type: Mapped[str] = mapped_column(String(16))
    context_id: Mapped[int] = mapped_column(BigInteger)
    missing_polls: Mapped[int] = mapped_column(Integer, default=0)
    # See domain.diff.Seen: Canvas's started_at when this is a later session; set when it ended.
    canvas_started_at: Mapped[datetime | None] = mapped_column(default=None)
    ended_at: Mapped[datetime | None] = mapped_column(default=None)


class KnownConference(_KnownColumns, Base):
    """Last live set seen for a linked user (their DMs)."""

    __tablename__ = "known_conferences"

    linked_user_id: Mapped[int] = mapped_column(
        ForeignKey("linked_users.id", ondelete="CASCADE"), primary_key=True
    )


class SubscriptionKnownConference(_KnownColumns, Base):
    """Last live set seen for a channel's course subscription."""

    __tablename__ = "subscription_known_conferences"

    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("subscriptions.id", ondelete="CASCADE"), primary_key=True
    )


class CanvasContext(Base):
    """Cached course/group names so alerts can name the course without a request per alert."""

    __tablename__ = "canvas_contexts"

    context_type: Mapped[str] = mapped_column(String(16), primary_key=True)
    context_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    fetched_at: Mapped[datetime] = mapped_column(default=utcnow)


class OutboxMessage(Base):
    """One Slack message to send or edit. `dedup_key` is unique: a start is alerted once per destination."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_pending", "status", "next_attempt_at"),
        Index("ix_outbox_alert", "team_id", "destination", "conference_id", "started_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dedup_key: Mapped[str] = mapped_column(String(255), unique=True)
    team_id: Mapped[str] = mapped_column(String(32))
    destination: Mapped[str] = mapped_column(String(32))  # Slack user id (DM) or channel id
    # An OutboxEvent value (bot/domain/outbox.py), read as str: a newer version may store one this one does
    # not know, and the dispatcher fails such a row with a reason instead of the load failing.
    event: Mapped[str] = mapped_column(String(24))
    conference_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)  # the event's payload model, stored (outbox.py)
    # An OutboxStatus value: pending | sent | failed | held | summarized.
    status: Mapped[str] = mapped_column(String(12), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    sending_since: Mapped[datetime | None] = mapped_column(default=None)  # a post may be in flight
    # Until when a replica's claim holds the row (claim_outbox): nothing else may make it due before then.
    leased_until: Mapped[datetime | None] = mapped_column(default=None)
    slack_channel: Mapped[str | None] = mapped_column(String(32), default=None)
    slack_ts: Mapped[str | None] = mapped_column(String(32), default=None)
    last_error: Mapped[str | None] = mapped_column(String(255), default=None)


class OAuthState(Base):
    """A Canvas OAuth `state` nonce: bound to one Slack user, expiring, consumed on first use (no replay)."""

    __tablename__ = "oauth_states"

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    slack_user_id: Mapped[str] = mapped_column(String(32))
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None] = mapped_column(default=None)


class Subscription(Base):
    """A channel follows a course: polled with the subscriber's token, alerts posted in the channel."""

    __tablename__ = "subscriptions"
    __table_args__ = (
        UniqueConstraint("team_id", "channel_id", "course_id", name="uq_subscriptions_channel_course"),
        Index("ix_subscriptions_due", "next_poll_at"),
        Index("ix_subscriptions_poll_requested_at", "poll_requested_at"),
        Index("ix_subscriptions_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    team_id: Mapped[str] = mapped_column(String(32))
    channel_id: Mapped[str] = mapped_column(String(32))
    course_id: Mapped[int] = mapped_column(BigInteger)
    course_name: Mapped[str] = mapped_column(Text)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("linked_users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    next_poll_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_poll_at: Mapped[datetime | None] = mapped_column(default=None)
    last_success_at: Mapped[datetime | None] = mapped_column(default=None)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(255), default=None)
    poll_requested_at: Mapped[datetime | None] = mapped_column(default=None)  # as LinkedUser's
    # Reminders before scheduled starts posted in the channel: minutes ahead (null: the default, 0: off).
    reminder_minutes: Mapped[int | None] = mapped_column(Integer, default=None)


class Digest(Base):
    """A channel's scheduled summary; next_run_at (UTC) is claimed like a poll unit: once per period."""

    __tablename__ = "digests"
    __table_args__ = (UniqueConstraint("team_id", "channel_id", name="uq_digests_channel"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    team_id: Mapped[str] = mapped_column(String(32))
    channel_id: Mapped[str] = mapped_column(String(32))
    frequency: Mapped[str] = mapped_column(String(8))  # daily | weekly
    weekday: Mapped[int | None] = mapped_column(Integer, default=None)  # 0 = Monday
    at_time: Mapped[str] = mapped_column(String(5))  # HH:MM local
    timezone: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(32))
    next_run_at: Mapped[datetime]
    last_run_at: Mapped[datetime | None] = mapped_column(default=None)


class MutedContext(Base):
    """A course a user wants no DMs about."""

    __tablename__ = "muted_contexts"

    linked_user_id: Mapped[int] = mapped_column(
        ForeignKey("linked_users.id", ondelete="CASCADE"), primary_key=True
    )
    context_type: Mapped[str] = mapped_column(String(16), primary_key=True)
    context_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(Text)


class RecordingWatch(Base):
    """An ended conference whose recordings have not appeared yet; checked until they do (or it expires)."""

    __tablename__ = "recording_watches"
    __table_args__ = (
        UniqueConstraint(
            "team_id", "destination", "conference_id", "started_at", name="uq_recording_watches_alert"
        ),
        Index("ix_recording_watches_due", "next_check_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    team_id: Mapped[str] = mapped_column(String(32))
    destination: Mapped[str] = mapped_column(String(32))
    conference_id: Mapped[int] = mapped_column(BigInteger)
    started_at: Mapped[datetime]
    context_type: Mapped[str] = mapped_column(String(16))
    context_id: Mapped[int] = mapped_column(BigInteger)
    linked_user_id: Mapped[int] = mapped_column(ForeignKey("linked_users.id", ondelete="CASCADE"))
    next_check_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class OpenedSession(Base):
    """A session Canvas's `state=live` cannot show (the conference first started over a day ago), opened
    by a Live Event or the session scan. One row per conference, shared by every poll unit, so every
    destination keys the session by the same `opened_at`; a later session replaces an expired row."""

    __tablename__ = "opened_sessions"

    conference_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    context_type: Mapped[str] = mapped_column(String(16))
    context_id: Mapped[int] = mapped_column(BigInteger)
    opened_at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(16))  # "event" | "scan"
    expires_at: Mapped[datetime]


class UserConference(Base):
    """What the session scan last saw of one of a user's conferences: schedules (reminders, nudges),
    Canvas's started_at/ended_at (restarts older than a day), and who is invited."""

    __tablename__ = "user_conferences"
    __table_args__ = (
        Index("ix_user_conferences_conference", "conference_id"),
        Index("ix_user_conferences_start", "start_at"),
    )

    linked_user_id: Mapped[int] = mapped_column(
        ForeignKey("linked_users.id", ondelete="CASCADE"), primary_key=True
    )
    conference_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    context_type: Mapped[str] = mapped_column(String(16))
    context_id: Mapped[int] = mapped_column(BigInteger)
    title: Mapped[str] = mapped_column(Text)
    start_at: Mapped[datetime | None] = mapped_column(default=None)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    ended_at: Mapped[datetime | None] = mapped_column(default=None)
    invited: Mapped[int] = mapped_column(Integer, default=0)
    teaches: Mapped[bool] = mapped_column(Boolean, default=False)


class ChannelSetting(Base):
    """A channel's own language (`/conferences language <code>`); without a row, the workspace default."""

    __tablename__ = "channel_settings"

    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    channel_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    locale: Mapped[str] = mapped_column(String(16))
    updated_by: Mapped[str] = mapped_column(String(32))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class PollBucket(Base):
    """One partition of the poll units (domain.buckets.bucket_of: a hash of kind and unit id). A replica
    polls the units of the buckets it leases, scheduling them in memory; `lease_until` is renewed by its
    heartbeat, and a bucket whose lease ran out (its replica died) is taken over by another."""

    __tablename__ = "poll_buckets"

    bucket: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    owner: Mapped[str | None] = mapped_column(String(64), default=None)
    lease_until: Mapped[datetime | None] = mapped_column(default=None)


class PollReplica(Base):
    """A live replica, renewed with its bucket leases: counted in the fair share before it holds any
    bucket, so the others hand some back for it to take."""

    __tablename__ = "poll_replicas"

    replica: Mapped[str] = mapped_column(String(64), primary_key=True)
    seen_until: Mapped[datetime]


class SessionAttendance(Base):
    """Who was invited to and who attended one session, as Canvas listed it when the session ended
    (domain.attendance.Snapshot): one row per session, shared by every destination, written by whichever
    poll saw the end first. Its report to the course's teachers is claimed like a poll unit."""

    __tablename__ = "session_attendance"
    __table_args__ = (Index("ix_session_attendance_due", "reported_at", "next_report_at"),)

    conference_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(primary_key=True)
    context_type: Mapped[str] = mapped_column(String(16))
    context_id: Mapped[int] = mapped_column(BigInteger)
    title: Mapped[str] = mapped_column(Text)
    ended_at: Mapped[datetime]
    participants: Mapped[list[int]] = mapped_column(JSON)
    invited: Mapped[list[int]] = mapped_column(JSON)
    attended: Mapped[list[int]] = mapped_column(JSON)
    again: Mapped[bool] = mapped_column(Boolean, default=False)
    taken_at: Mapped[datetime]
    next_report_at: Mapped[datetime]
    reported_at: Mapped[datetime | None] = mapped_column(default=None)  # the teachers' DMs are queued
    report_attempts: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[datetime]


class CourseRoster(Base):
    """A course's people by Canvas id (name and sortable name), read once per course and kept for a
    while: the attendance report names everyone without a request per report."""

    __tablename__ = "course_rosters"

    course_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    names: Mapped[dict[str, Any]] = mapped_column(JSON)  # {"<canvas id>": ["Name", "Sortable, Name"]}
    fetched_at: Mapped[datetime]
