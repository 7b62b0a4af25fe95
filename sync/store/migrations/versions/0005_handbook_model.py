"""handbook model: dated health observations, Handoff CTA subjects, flags seen by the alerter

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 18:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("health_history") as batch:
        batch.add_column(sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("cta_links") as batch:
        batch.add_column(sa.Column("subject_id", sa.String(length=64), nullable=True))
    with op.batch_alter_table("alert_state") as batch:
        batch.add_column(sa.Column("flags", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alert_state") as batch:
        batch.drop_column("flags")
    with op.batch_alter_table("cta_links") as batch:
        batch.drop_column("subject_id")
    with op.batch_alter_table("health_history") as batch:
        batch.drop_column("last_seen_at")
