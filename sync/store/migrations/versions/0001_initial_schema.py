"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23 19:31:54.794900
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("account_id", sa.String(length=18), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("segment", sa.String(length=80), nullable=False),
        sa.Column("segment_source", sa.String(length=16), nullable=False),
        sa.Column("lifecycle", sa.String(length=40), nullable=False),
        sa.Column("is_customer", sa.Boolean(), nullable=False),
        sa.Column("first_won", sa.Date(), nullable=True),
        sa.Column("arr", sa.Float(), nullable=True),
        sa.Column("qualifying", sa.Boolean(), nullable=False),
        sa.Column("renewal_opportunity_id", sa.String(length=18), nullable=True),
        sa.Column("renewal_date", sa.Date(), nullable=True),
        sa.Column("days_to_renewal", sa.Integer(), nullable=True),
        sa.Column("in_renewal_window", sa.Boolean(), nullable=False),
        sa.Column("company_gsid", sa.String(length=64), nullable=True),
        sa.Column("health_score", sa.Float(), nullable=True),
        sa.Column("health_band", sa.String(length=40), nullable=False),
        sa.Column("previous_score", sa.Float(), nullable=True),
        sa.Column("trend", sa.String(length=16), nullable=True),
        sa.Column("team", sa.JSON(), nullable=False),
        sa.Column("missing_roles", sa.JSON(), nullable=False),
        sa.Column("inactive_members", sa.JSON(), nullable=False),
        sa.Column("flags", sa.JSON(), nullable=False),
        sa.Column("notes", sa.JSON(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("mapped_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("mapped_run_id", sa.String(length=36), nullable=True),
        sa.PrimaryKeyConstraint("account_id"),
    )
    op.create_table(
        "alert_outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("sink", sa.String(length=16), nullable=False),
        sa.Column("account_id", sa.String(length=18), nullable=True),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("run_id", sa.String(length=36), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idempotency_key", "sink", name="uq_alert_outbox_key_sink"),
    )
    with op.batch_alter_table("alert_outbox", schema=None) as batch_op:
        batch_op.create_index("ix_alert_outbox_status", ["status", "next_attempt_at"], unique=False)

    op.create_table(
        "alert_state",
        sa.Column("account_id", sa.String(length=18), nullable=False),
        sa.Column("band", sa.String(length=40), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("red_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_alert_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account_id"),
    )
    op.create_table(
        "cta_links",
        sa.Column("cta_gsid", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=18), nullable=True),
        sa.Column("company_gsid", sa.String(length=64), nullable=False),
        sa.Column("flag", sa.String(length=40), nullable=False),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("run_id", sa.String(length=36), nullable=True),
        sa.PrimaryKeyConstraint("cta_gsid"),
    )
    with op.batch_alter_table("cta_links", schema=None) as batch_op:
        batch_op.create_index(
            "ix_cta_links_company", ["company_gsid", "flag", "status"], unique=False
        )

    op.create_table(
        "health_history",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.String(length=18), nullable=False),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("band", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("health_history", schema=None) as batch_op:
        batch_op.create_index(
            "ix_health_history_account", ["account_id", "observed_at"], unique=False
        )

    op.create_table(
        "locks",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=255), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "operations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("system", sa.String(length=16), nullable=False),
        sa.Column("object", sa.String(length=40), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("target_id", sa.String(length=64), nullable=True),
        sa.Column("account_id", sa.String(length=18), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("previous", sa.JSON(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("destructive", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("result_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("operations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_operations_run", ["run_id", "system", "object", "action"], unique=False
        )

    op.create_table(
        "quarantine",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("system", sa.String(length=16), nullable=False),
        sa.Column("object", sa.String(length=40), nullable=False),
        sa.Column("record_id", sa.String(length=64), nullable=False),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("account_id", sa.String(length=18), nullable=True),
        sa.Column("code", sa.String(length=80), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=True),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("run_id", sa.String(length=36), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("system", "object", "record_id", "stage", name="uq_quarantine_record"),
    )
    op.create_table(
        "raw_records",
        sa.Column("system", sa.String(length=16), nullable=False),
        sa.Column("object", sa.String(length=40), nullable=False),
        sa.Column("record_id", sa.String(length=64), nullable=False),
        sa.Column("parent_id", sa.String(length=64), nullable=True),
        sa.Column("match_key", sa.String(length=255), nullable=True),
        sa.Column("stamp", sa.DateTime(timezone=True), nullable=True),
        sa.Column("is_deleted", sa.Boolean(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("pulled_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("system", "object", "record_id"),
    )
    with op.batch_alter_table("raw_records", schema=None) as batch_op:
        batch_op.create_index(
            "ix_raw_records_match", ["system", "object", "match_key"], unique=False
        )
        batch_op.create_index(
            "ix_raw_records_parent", ["system", "object", "parent_id"], unique=False
        )

    op.create_table(
        "runs",
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("command", sa.String(length=16), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("full", sa.Boolean(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("stats", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("host", sa.String(length=255), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("run_id"),
    )
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.create_index("ix_runs_started", ["started_at"], unique=False)

    op.create_table(
        "watermarks",
        sa.Column("stream", sa.String(length=64), nullable=False),
        sa.Column("value", sa.DateTime(timezone=True), nullable=True),
        sa.Column("pull_mode", sa.String(length=16), nullable=True),
        sa.Column("pull_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("pull_lower", sa.DateTime(timezone=True), nullable=True),
        sa.Column("pull_upper", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cursor_stamp", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cursor_id", sa.String(length=64), nullable=True),
        sa.Column("pulled_in_flight", sa.Integer(), nullable=False),
        sa.Column("last_count", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("stream"),
    )


def downgrade() -> None:
    op.drop_table("watermarks")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index("ix_runs_started")

    op.drop_table("runs")
    with op.batch_alter_table("raw_records", schema=None) as batch_op:
        batch_op.drop_index("ix_raw_records_parent")
        batch_op.drop_index("ix_raw_records_match")

    op.drop_table("raw_records")
    op.drop_table("quarantine")
    with op.batch_alter_table("operations", schema=None) as batch_op:
        batch_op.drop_index("ix_operations_run")

    op.drop_table("operations")
    op.drop_table("locks")
    with op.batch_alter_table("health_history", schema=None) as batch_op:
        batch_op.drop_index("ix_health_history_account")

    op.drop_table("health_history")
    with op.batch_alter_table("cta_links", schema=None) as batch_op:
        batch_op.drop_index("ix_cta_links_company")

    op.drop_table("cta_links")
    op.drop_table("alert_state")
    with op.batch_alter_table("alert_outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_alert_outbox_status")

    op.drop_table("alert_outbox")
    op.drop_table("accounts")
