"""bucket leases in use: the replicas table (a replica is counted before it holds a bucket, so the others
hand it a share), and the indexes of the poller's per-tick reads (poll requests; units linked or
subscribed since the last look)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "poll_replicas",
        sa.Column("replica", sa.String(length=64), nullable=False),
        sa.Column("seen_until", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("replica", name=op.f("pk_poll_replicas")),
    )
    op.create_index("ix_linked_users_poll_requested_at", "linked_users", ["poll_requested_at"])
    op.create_index("ix_linked_users_linked_at", "linked_users", ["linked_at"])
    op.create_index("ix_subscriptions_poll_requested_at", "subscriptions", ["poll_requested_at"])
    op.create_index("ix_subscriptions_created_at", "subscriptions", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_subscriptions_created_at", table_name="subscriptions")
    op.drop_index("ix_subscriptions_poll_requested_at", table_name="subscriptions")
    op.drop_index("ix_linked_users_linked_at", table_name="linked_users")
    op.drop_index("ix_linked_users_poll_requested_at", table_name="linked_users")
    op.drop_table("poll_replicas")
