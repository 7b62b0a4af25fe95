"""health_history: an index on observed_at, so retention prunes in bounded batches

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 18:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_health_history_observed", "health_history", ["observed_at"])


def downgrade() -> None:
    op.drop_index("ix_health_history_observed", table_name="health_history")
