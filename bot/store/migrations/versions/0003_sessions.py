"""sessions: ended sessions remembered, sessions opened beyond Canvas's live scope, the session scan's
catalog of each user's conferences, and reminder settings

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

KNOWN_TABLES = ("known_conferences", "subscription_known_conferences")


def upgrade() -> None:
    for table in KNOWN_TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("canvas_started_at", sa.DateTime(timezone=True), nullable=True))
            batch_op.add_column(sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("linked_users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("next_scan_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("reminder_minutes", sa.Integer(), nullable=True))
    op.create_table(
        "opened_sessions",
        sa.Column("conference_id", sa.BigInteger(), nullable=False),
        sa.Column("context_type", sa.String(length=16), nullable=False),
        sa.Column("context_id", sa.BigInteger(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("conference_id", name=op.f("pk_opened_sessions")),
    )
    op.create_table(
        "user_conferences",
        sa.Column("linked_user_id", sa.Integer(), nullable=False),
        sa.Column("conference_id", sa.BigInteger(), nullable=False),
        sa.Column("context_type", sa.String(length=16), nullable=False),
        sa.Column("context_id", sa.BigInteger(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("invited", sa.Integer(), nullable=False),
        sa.Column("teaches", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["linked_user_id"],
            ["linked_users.id"],
            name=op.f("fk_user_conferences_linked_user_id_linked_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("linked_user_id", "conference_id", name=op.f("pk_user_conferences")),
    )
    op.create_index("ix_user_conferences_conference", "user_conferences", ["conference_id"])
    op.create_index("ix_user_conferences_start", "user_conferences", ["start_at"])


def downgrade() -> None:
    op.drop_index("ix_user_conferences_start", table_name="user_conferences")
    op.drop_index("ix_user_conferences_conference", table_name="user_conferences")
    op.drop_table("user_conferences")
    op.drop_table("opened_sessions")
    with op.batch_alter_table("linked_users", schema=None) as batch_op:
        batch_op.drop_column("reminder_minutes")
        batch_op.drop_column("next_scan_at")
    for table in KNOWN_TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("ended_at")
            batch_op.drop_column("canvas_started_at")
