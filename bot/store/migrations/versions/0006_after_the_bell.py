"""after the bell: attendance snapshots of ended sessions, cached course rosters, and each linked user's
attendance-report and missed-recording switches

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-19
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("linked_users", schema=None) as batch_op:
        # Existing links get both on, as new links do.
        batch_op.add_column(
            sa.Column("attendance_enabled", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch_op.add_column(
            sa.Column("missed_enabled", sa.Boolean(), nullable=False, server_default=sa.true())
        )
    op.create_table(
        "session_attendance",
        sa.Column("conference_id", sa.BigInteger(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("context_type", sa.String(length=16), nullable=False),
        sa.Column("context_id", sa.BigInteger(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("participants", sa.JSON(), nullable=False),
        sa.Column("invited", sa.JSON(), nullable=False),
        sa.Column("attended", sa.JSON(), nullable=False),
        sa.Column("again", sa.Boolean(), nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_report_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("report_attempts", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("conference_id", "started_at", name=op.f("pk_session_attendance")),
    )
    op.create_index(
        "ix_session_attendance_due", "session_attendance", ["reported_at", "next_report_at"], unique=False
    )
    op.create_table(
        "course_rosters",
        sa.Column("course_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("names", sa.JSON(), nullable=False),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("course_id", name=op.f("pk_course_rosters")),
    )


def downgrade() -> None:
    op.drop_table("course_rosters")
    op.drop_index("ix_session_attendance_due", table_name="session_attendance")
    op.drop_table("session_attendance")
    with op.batch_alter_table("linked_users", schema=None) as batch_op:
        batch_op.drop_column("missed_enabled")
        batch_op.drop_column("attendance_enabled")
