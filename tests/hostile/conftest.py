"""The hostile-upstream world: both emulators with a small synthetic org and one store per
database, converged once per module and shared by every case (each case leaves it converged;
a failed case makes the next one converge it again)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import structlog
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from emulators.runner import RunningEmulators, start_emulators
from emulators.tls import TlsMaterial
from sync.cli.app import app

PG_URL = os.environ.get("TEAMSYNC_TEST_DATABASE_URL", "")
ACCOUNTS = 32  # >= 30: the synthetic org's scenario accounts are there
ALL_CHANGES = ["--allow-mass-change", "--max-changes", "100000"]


@dataclass
class World:
    upstream: RunningEmulators
    database_url: str
    env: dict[str, str | None]
    dirty: bool = False
    notes: dict[str, Any] = field(default_factory=dict)

    def invoke(self, args: list[str], **extra: str) -> tuple[int, str]:
        env = dict(self.env)
        env.update(extra)
        saved = structlog.get_config()  # the CLI configures logging: leave no trace
        try:
            result = CliRunner().invoke(app, args, env=env)
        finally:
            structlog.configure(**saved)
        return result.exit_code, result.output

    def applied_writes(self) -> int:
        """Write calls the emulators answered with success (the request log)."""
        return sum(1 for c in self.upstream.log.calls(kind="write") if c.status < 300)

    def attempted_writes(self) -> int:
        return len(self.upstream.log.calls(kind="write"))

    def converge(self) -> None:
        """Bring store and org back to a converged state (after a failed case)."""
        for faults in (self.upstream.salesforce.faults, self.upstream.gainsight.faults):
            faults.reset()
        code, out = self.invoke(["run", "--full", *ALL_CHANGES])
        assert code in (0, 1), out
        code, out = self.invoke(["run"])
        assert code in (0, 1), out
        self.dirty = False


def _backends() -> list[Any]:
    return [
        pytest.param("sqlite", id="sqlite"),
        pytest.param(
            "postgresql",
            id="postgresql",
            marks=pytest.mark.skipif(
                not PG_URL.startswith("postgresql"),
                reason="TEAMSYNC_TEST_DATABASE_URL does not point at PostgreSQL",
            ),
        ),
    ]


@pytest.fixture(scope="module", params=_backends())
def world(
    request: pytest.FixtureRequest, tls: TlsMaterial, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    workdir = tmp_path_factory.mktemp("hostile")
    schema = None
    if request.param == "sqlite":
        database_url = f"sqlite:///{workdir / 'teamsync.db'}"
    else:
        schema = f"ts_{uuid.uuid4().hex[:12]}"
        admin = create_engine(PG_URL)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        admin.dispose()
        sep = "&" if "?" in PG_URL else "?"
        database_url = f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    upstream = start_emulators(
        accounts=ACCOUNTS, seed=21, tls=tls, workdir=Path(workdir) / "upstream"
    )
    # Many short runs in a row: neither rate limit may make the suite wait.
    upstream.gainsight.rate_limit_per_minute = 1_000_000
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("TEAMSYNC_")}
    env.update(upstream.env())
    env.update(
        TEAMSYNC_DATABASE_URL=database_url,
        TEAMSYNC_RETRY_MAX_ATTEMPTS="2",
        TEAMSYNC_RETRY_MAX_WAIT_SECONDS="0.2",
        TEAMSYNC_GAINSIGHT_RATE_LIMIT_PER_MINUTE="1000000",
        TEAMSYNC_LOG_LEVEL="ERROR",
        TEAMSYNC_LOG_FORMAT="json",
        TEAMSYNC_ALERT_SINKS="log",
        # A small org: the safeguard's floor scaled down with it (default 25).
        TEAMSYNC_MASS_CHANGE_MIN="10",
        # Incremental runs read only what changed (the emulator clock is real time).
        TEAMSYNC_LOOKBACK_SECONDS="1",
    )
    w = World(upstream, database_url, env)
    code, out = w.invoke(["run", *ALL_CHANGES])
    assert code in (0, 1), out
    code, out = w.invoke(["run"])
    assert code in (0, 1), out
    upstream.log.reset()
    code, out = w.invoke(["run"])
    assert code in (0, 1), out
    assert w.applied_writes() == 0, "the baseline does not converge"
    w.notes["baseline_exit"] = code
    try:
        yield w
    finally:
        upstream.stop()
        if schema is not None:
            admin = create_engine(PG_URL)
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
