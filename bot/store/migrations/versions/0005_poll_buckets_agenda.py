"""poll buckets (replicas lease partitions of the users instead of claiming rows), poll requests (a Live
Event or a scan asks for a user's or a subscription's poll now), the daily agenda, and channel reminders

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "poll_buckets",
        sa.Column("bucket", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("bucket", name=op.f("pk_poll_buckets")),
    )
    with op.batch_alter_table("linked_users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("poll_requested_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("agenda_at", sa.String(length=5), nullable=True))
        batch_op.add_column(sa.Column("agenda_next_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("poll_requested_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("reminder_minutes", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.drop_column("reminder_minutes")
        batch_op.drop_column("poll_requested_at")
    with op.batch_alter_table("linked_users", schema=None) as batch_op:
        batch_op.drop_column("agenda_next_at")
        batch_op.drop_column("agenda_at")
        batch_op.drop_column("poll_requested_at")
    op.drop_table("poll_buckets")
