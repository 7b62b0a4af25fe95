"""SQLAlchemy models of the state store (schema changes go through Alembic migrations).

Tables:

- ``raw_records``   raw snapshots of every pulled record (one row per system/object/id)
- ``watermarks``    one per stream, plus the position of a pull in flight (resumable)
- ``accounts``      the mapped account-team model, one row per Salesforce Account
- ``health_history`` score / band observations, appended when they change
- ``runs``          one row per run with its outcome and counts
- ``operations``    the last plans and the result of every write
- ``quarantine``    records that failed, with the reason; retried on later runs
- ``cta_links``     Gainsight CTAs teamsync opened or adopted
- ``locks``         the SQLite run lock (PostgreSQL uses an advisory lock)
- ``alert_outbox``  alerts recorded before they are sent (idempotency key)
- ``alert_state``   per-account alerting state (in red since, last reminder)
- ``preflight``     the last preflight report per kind (cheap / full) and what it depends on
- ``team_wipes``    accounts whose human-maintained team rows all vanished at once
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use timezone-aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {
        datetime: UtcDateTime(),
        date: Date(),
        dict[str, Any]: JSON(),
        list[Any]: JSON(),
    }


class RawRecord(Base):
    __tablename__ = "raw_records"

    system: Mapped[str] = mapped_column(String(16), primary_key=True)
    object: Mapped[str] = mapped_column(String(40), primary_key=True)
    record_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # The account the record belongs to (Opportunity / AccountTeamMember: AccountId; Company:
    # its linked Account as an 18-character Id) - lets mapping walk accounts in chunks.
    parent_id: Mapped[str | None] = mapped_column(String(64))
    # A secondary lookup key (users: lower-case e-mail).
    match_key: Mapped[str | None] = mapped_column(String(255))
    stamp: Mapped[datetime | None]
    is_deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    data: Mapped[dict[str, Any]]
    pulled_at: Mapped[datetime]

    __table_args__ = (
        Index("ix_raw_records_parent", "system", "object", "parent_id"),
        Index("ix_raw_records_match", "system", "object", "match_key"),
    )


class Watermark(Base):
    __tablename__ = "watermarks"

    stream: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[datetime | None]  # everything stamped before this has been pulled
    # A pull in flight: where it started and how far it got (resumed after interruption).
    pull_mode: Mapped[str | None] = mapped_column(String(16))
    pull_started_at: Mapped[datetime | None]
    pull_lower: Mapped[datetime | None]
    pull_upper: Mapped[datetime | None]
    cursor_stamp: Mapped[datetime | None]
    cursor_id: Mapped[str | None] = mapped_column(String(64))
    pulled_in_flight: Mapped[int] = mapped_column(Integer, default=0)
    last_count: Mapped[int | None] = mapped_column(Integer)  # last server-side count seen
    updated_at: Mapped[datetime]


class Account(Base):
    __tablename__ = "accounts"

    account_id: Mapped[str] = mapped_column(String(18), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    segment: Mapped[str] = mapped_column(String(80))
    segment_source: Mapped[str] = mapped_column(String(16))
    lifecycle: Mapped[str] = mapped_column(String(40))
    is_customer: Mapped[bool] = mapped_column(Boolean)
    first_won: Mapped[date | None]
    arr: Mapped[float | None] = mapped_column(Float)
    qualifying: Mapped[bool] = mapped_column(Boolean)
    renewal_opportunity_id: Mapped[str | None] = mapped_column(String(18))
    renewal_date: Mapped[date | None]
    days_to_renewal: Mapped[int | None] = mapped_column(Integer)
    in_renewal_window: Mapped[bool] = mapped_column(Boolean, default=False)
    company_gsid: Mapped[str | None] = mapped_column(String(64))
    health_score: Mapped[float | None] = mapped_column(Float)
    health_band: Mapped[str] = mapped_column(String(40))
    previous_score: Mapped[float | None] = mapped_column(Float)
    trend: Mapped[str | None] = mapped_column(String(16))
    team: Mapped[dict[str, Any]]
    missing_roles: Mapped[list[Any]]
    inactive_members: Mapped[list[Any]]
    flags: Mapped[list[Any]]
    notes: Mapped[list[Any]]
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    mapped_at: Mapped[datetime]
    mapped_run_id: Mapped[str | None] = mapped_column(String(36))


class HealthObservation(Base):
    __tablename__ = "health_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(String(18))
    observed_at: Mapped[datetime]  # first seen
    score: Mapped[float | None] = mapped_column(Float)
    band: Mapped[str] = mapped_column(String(40))
    last_seen_at: Mapped[datetime | None]  # last seen unchanged (a dated HEALTH_DROP baseline)

    __table_args__ = (
        Index("ix_health_history_account", "account_id", "observed_at"),
        Index("ix_health_history_observed", "observed_at"),  # retention
    )


class Run(Base):
    __tablename__ = "runs"

    run_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    command: Mapped[str] = mapped_column(String(16))  # run / plan / backfill / demo
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    full: Mapped[bool] = mapped_column(Boolean, default=False)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16))  # running/succeeded/partial/failed/refused
    exit_code: Mapped[int | None] = mapped_column(Integer)
    stats: Mapped[dict[str, Any]]
    error: Mapped[str | None] = mapped_column(Text)
    host: Mapped[str | None] = mapped_column(String(255))
    pid: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (Index("ix_runs_started", "started_at"),)


class Operation(Base):
    __tablename__ = "operations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(36))
    system: Mapped[str] = mapped_column(String(16))
    object: Mapped[str] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(16))  # create / update / delete / close / adopt
    target_id: Mapped[str | None] = mapped_column(String(64))
    account_id: Mapped[str | None] = mapped_column(String(18))
    payload: Mapped[dict[str, Any]]
    previous: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(Text)
    destructive: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="planned")
    error: Mapped[str | None] = mapped_column(Text)
    result_id: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (Index("ix_operations_run", "run_id", "system", "object", "action"),)


class QuarantinedRecord(Base):
    __tablename__ = "quarantine"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    system: Mapped[str] = mapped_column(String(16))
    object: Mapped[str] = mapped_column(String(40))
    record_id: Mapped[str] = mapped_column(String(64))
    stage: Mapped[str] = mapped_column(String(16))  # pull / map / push
    account_id: Mapped[str | None] = mapped_column(String(18))
    code: Mapped[str | None] = mapped_column(String(80))
    reason: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    resolved_at: Mapped[datetime | None]
    run_id: Mapped[str | None] = mapped_column(String(36))
    # `teamsync quarantine dismiss`: acknowledged; its operation is held back from later plans
    # until `teamsync quarantine retry` (map-stage records are only hidden from the open list).
    dismissed_at: Mapped[datetime | None]
    dismissed_note: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint("system", "object", "record_id", "stage", name="uq_quarantine_record"),
    )


class CtaLink(Base):
    __tablename__ = "cta_links"

    cta_gsid: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[str | None] = mapped_column(String(18))
    company_gsid: Mapped[str] = mapped_column(String(64))
    flag: Mapped[str] = mapped_column(String(40))
    # What the CTA is about beyond its flag: the opportunity of a Handoff CTA.
    subject_id: Mapped[str | None] = mapped_column(String(64))
    origin: Mapped[str] = mapped_column(String(16))  # opened / adopted
    status: Mapped[str] = mapped_column(String(16))  # open / closed
    opened_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    run_id: Mapped[str | None] = mapped_column(String(36))

    __table_args__ = (Index("ix_cta_links_company", "company_gsid", "flag", "status"),)


class Lock(Base):
    __tablename__ = "locks"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(255))
    acquired_at: Mapped[datetime]
    lease_until: Mapped[datetime]


class AlertOutbox(Base):
    __tablename__ = "alert_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    idempotency_key: Mapped[str] = mapped_column(String(200))
    sink: Mapped[str] = mapped_column(String(16))
    account_id: Mapped[str | None] = mapped_column(String(18))
    kind: Mapped[str] = mapped_column(String(24))  # entered_red / reminder / recovered / digest
    payload: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16))  # pending / sending / sent / failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    run_id: Mapped[str | None] = mapped_column(String(36))

    __table_args__ = (
        UniqueConstraint("idempotency_key", "sink", name="uq_alert_outbox_key_sink"),
        Index("ix_alert_outbox_status", "status", "next_attempt_at"),
    )


class AlertState(Base):
    __tablename__ = "alert_state"

    account_id: Mapped[str] = mapped_column(String(18), primary_key=True)
    band: Mapped[str] = mapped_column(String(40))
    score: Mapped[float | None] = mapped_column(Float)
    red_since: Mapped[datetime | None]
    last_alert_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]
    # The flags the alerter saw last (coverage alerts fire once per OVERDUE_<ROLE> transition).
    flags: Mapped[list[Any] | None] = mapped_column(JSON)


class PreflightReport(Base):
    """The last preflight report of a kind: ``cheap`` (what ``run`` checks) or ``full``."""

    __tablename__ = "preflight"

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(32))  # mapping + connection settings
    ok: Mapped[bool] = mapped_column(Boolean)
    report: Mapped[dict[str, Any]]
    checked_at: Mapped[datetime]


class TeamWipe(Base):
    """Every human-maintained team row of an account gone at once (an owner change through
    the API deletes the account team, S7): flagged TEAM_WIPED and alerted until resolved."""

    __tablename__ = "team_wipes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(String(18))
    detected_at: Mapped[datetime]
    run_id: Mapped[str | None] = mapped_column(String(36))
    # The rows lost: [{"row_id", "user_id", "role", "name", "email"}]
    lost: Mapped[list[Any]]
    alerted_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_team_wipes_account", "account_id", "resolved_at"),)
