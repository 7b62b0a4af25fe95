"""Fixtures for engine tests: emulators with a synthetic org, a store on SQLite and on
PostgreSQL (when TEAMSYNC_TEST_DATABASE_URL is set), settings pointing at both."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from config.settings import Settings, load_settings
from emulators.runner import RunningEmulators, start_emulators
from emulators.tls import TlsMaterial
from sync.engine import Engine, RunOptions, RunResult
from sync.store import Store

PG_URL = os.environ.get("TEAMSYNC_TEST_DATABASE_URL", "")


def _backends() -> list[Any]:
    params: list[Any] = [pytest.param("sqlite", id="sqlite")]
    params.append(
        pytest.param(
            "postgresql",
            id="postgresql",
            marks=pytest.mark.skipif(
                not PG_URL.startswith("postgresql"),
                reason="TEAMSYNC_TEST_DATABASE_URL does not point at PostgreSQL",
            ),
        )
    )
    return params


@pytest.fixture(params=_backends())
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty store: a SQLite file, or a private schema on the test PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'teamsync.db'}"
        return
    schema = f"ts_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    s = Store(database_url)
    s.upgrade()
    yield s
    s.dispose()


ORG_ACCOUNTS = 60


@pytest.fixture
def upstream(tls: TlsMaterial, tmp_path: Path) -> Iterator[RunningEmulators]:
    """Both emulators over HTTPS with a 60-account synthetic org (scenarios included)."""
    with start_emulators(
        accounts=ORG_ACCOUNTS, seed=11, tls=tls, workdir=tmp_path / "upstream"
    ) as e:
        yield e


def make_settings(upstream: RunningEmulators, database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        k.removeprefix("TEAMSYNC_").lower(): v for k, v in upstream.env().items()
    }
    values.update(
        database_url=database_url,
        retry_max_attempts=3,
        retry_max_wait_seconds=2.0,
        log_level="WARNING",
        metrics_port=0,  # the daemon serves nothing unless a test asks (never a fixed port)
    )
    values.update(overrides)
    return load_settings(**values)


@pytest.fixture
def settings(upstream: RunningEmulators, database_url: str) -> Settings:
    return make_settings(upstream, database_url)


RunFn = Callable[..., RunResult]


@pytest.fixture
def run(settings: Settings, store: Store) -> RunFn:
    """Run the engine once with the given options (a fresh engine each time, as cron does)."""

    def go(settings_: Settings | None = None, **options: Any) -> RunResult:
        engine = Engine.from_settings(settings_ or settings, store=store)
        return engine.run(RunOptions(**options))

    return go
