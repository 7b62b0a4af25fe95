"""Command-line habits an operator expects: --version, -h, global options anywhere, warnings
for mistyped variables, postgres:// URLs, a named missing driver, read-only commands that never
create a store, logs on stderr only (JSON stays JSON), NO_COLOR, the durable-store refusal."""

from __future__ import annotations

import io
import json
import re
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from config.errors import ConfigurationError
from emulators.runner import RunningEmulators
from sync.cli.app import app, hoist_global_options
from sync.logging import configure_logging, effective_level
from sync.store import Store
from sync.version import VERSION
from tests.sync.cli.test_cli import cli_env

ANSI = re.compile(r"\x1b\[")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("TEAMSYNC_") and key != "TEAMSYNC_TEST_DATABASE_URL":
            monkeypatch.delenv(key)
    monkeypatch.delenv("NO_COLOR", raising=False)


def invoke(args: list[str], env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, args, env=env or {})
    return result.exit_code, result.stdout, result.stderr


def test_version_and_short_help() -> None:
    """`--version` prints the package version; `-h` works on the root and every subcommand."""
    code, stdout, _ = invoke(["--version"])
    assert code == 0
    assert stdout.strip() == f"teamsync {VERSION}"
    for args in (["-h"], ["run", "-h"], ["status", "-h"], ["db", "upgrade", "-h"], ["db", "-h"]):
        code, stdout, _ = invoke(args)
        assert code == 0, args
        assert "Usage:" in stdout, args


def test_global_options_are_hoisted_from_after_the_subcommand() -> None:
    """--config VALUE, --config=VALUE and -v / -vv / --verbose move in front; the rest keeps
    its order; nothing after `--` moves."""
    assert hoist_global_options(["run", "--dry-run", "--config", "a.toml", "-vv"]) == [
        "--config",
        "a.toml",
        "-vv",
        "run",
        "--dry-run",
    ]
    assert hoist_global_options(["db", "upgrade", "--config=b.toml", "--verbose"]) == [
        "--config=b.toml",
        "--verbose",
        "db",
        "upgrade",
    ]
    tail = ["audit", "-o", "x", "--", "-v"]
    assert hoist_global_options(tail) == tail


def test_config_after_the_subcommand_is_used(tmp_path: Path) -> None:
    """`teamsync status --config FILE` reads FILE (here: a store path that does not exist)."""
    missing = tmp_path / "from-the-file.db"
    cfg = tmp_path / "teamsync.toml"
    cfg.write_text(f'database_url = "sqlite:///{missing}"\n', encoding="utf-8")
    code, _, stderr = invoke(["status", "--config", str(cfg)], {"TEAMSYNC_LOG_FORMAT": "json"})
    assert code == 2
    assert "from-the-file.db" in stderr
    assert not missing.exists()


def test_unknown_variable_is_warned_with_the_closest_name(tmp_path: Path) -> None:
    """A mistyped TEAMSYNC_* variable is no longer silently ignored."""
    env = {
        "TEAMSYNC_DATABSE_URL": "sqlite:///x.db",
        "TEAMSYNC_DATABASE_URL": f"sqlite:///{tmp_path / 'none.db'}",
        "TEAMSYNC_LOG_FORMAT": "json",
    }
    _, _, stderr = invoke(["status"], env)
    warnings = [json.loads(x) for x in stderr.splitlines() if "unknown setting" in x]
    assert len(warnings) == 1
    assert warnings[0]["variable"] == "TEAMSYNC_DATABSE_URL"
    assert warnings[0]["did_you_mean"] == "TEAMSYNC_DATABASE_URL"
    assert warnings[0]["level"] == "warning"


@pytest.mark.parametrize("command", [["status"], ["status", "--check"], ["audit"]])
def test_read_only_commands_never_create_a_store(tmp_path: Path, command: list[str]) -> None:
    """status / audit on a wrong SQLite path: exit 2 naming the path; no file appears."""
    path = tmp_path / "typo" / "teamsync.db"
    (tmp_path / "typo").mkdir()
    code, _, stderr = invoke(command, {"TEAMSYNC_DATABASE_URL": f"sqlite:///{path}"})
    assert code == 2
    assert "no store at" in stderr
    assert str(path) in stderr
    assert not path.exists()
    assert list((tmp_path / "typo").iterdir()) == []


def test_read_only_commands_refuse_an_empty_store(tmp_path: Path) -> None:
    """An existing but empty database is not silently given tables by `status`."""
    path = tmp_path / "empty.db"
    path.touch()
    code, _, stderr = invoke(["status"], {"TEAMSYNC_DATABASE_URL": f"sqlite:///{path}"})
    assert code == 2
    assert "is empty" in stderr
    import sqlite3

    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT name FROM sqlite_master").fetchall() == []


def test_postgres_scheme_is_accepted(database_url: str) -> None:
    """A postgres:// (or postgresql://) URL opens the store through psycopg."""
    if not database_url.startswith("postgresql"):
        pytest.skip("needs TEAMSYNC_TEST_DATABASE_URL (PostgreSQL)")
    store = Store(database_url)
    store.upgrade()
    store.dispose()
    short = "postgres://" + database_url.split("://", 1)[1]
    code, stdout, stderr = invoke(["status", "--json"], {"TEAMSYNC_DATABASE_URL": short})
    assert code == 0, stderr
    assert json.loads(stdout)["runs"] == []


def test_missing_postgres_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without psycopg installed the error says which extra to install."""
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg -> ImportError
    with pytest.raises(ConfigurationError) as info:
        Store("postgres://ts:secret-pw@db.example/ts")
    message = str(info.value)
    assert "pip install 'teamsync[postgres]'" in message
    assert "secret-pw" not in message
    assert info.value.exit_code == 2


def test_logs_on_stderr_json_stays_json_and_version_is_logged(
    upstream: RunningEmulators, database_url: str
) -> None:
    """A run prints its summary on stdout and only JSON log lines on stderr; the first line
    carries the version."""
    env = cli_env(upstream, database_url, TEAMSYNC_LOG_LEVEL="INFO")
    code, stdout, stderr = invoke(["run", "--allow-mass-change", "--max-changes", "5000"], env)
    assert code == 0, stderr
    assert "succeeded" in stdout
    assert not any(line.lstrip().startswith("{") for line in stdout.splitlines())
    events = [json.loads(line) for line in stderr.splitlines() if line.strip()]
    started = [e for e in events if e["event"] == "run started"]
    assert started
    assert started[0]["version"] == VERSION
    code, stdout, _ = invoke(["status", "--json"], env)
    doc = json.loads(stdout)
    assert doc["version"] == VERSION
    assert doc["runs"][0]["version"] == VERSION


def test_a_failure_before_the_settings_is_json_in_a_json_stream() -> None:
    """An error raised before logging is configured still comes out as a JSON line."""
    code, stdout, stderr = invoke(
        ["status", "--config", "/nonexistent/teamsync.toml"], {"TEAMSYNC_LOG_FORMAT": "json"}
    )
    assert code == 2
    assert stdout == ""
    (line,) = stderr.splitlines()
    record = json.loads(line)
    assert record["event"] == "command failed"
    assert record["exit_code"] == 2


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_shows_warnings_unless_verbose() -> None:
    """On a terminal INFO lines are hidden unless -v; elsewhere INFO; a setting wins."""
    assert effective_level(None, tty=True) == "WARNING"
    assert effective_level(None, tty=True, verbosity=1) == "INFO"
    assert effective_level(None, tty=True, verbosity=2) == "DEBUG"
    assert effective_level(None, tty=False) == "INFO"
    assert effective_level("ERROR", tty=False) == "ERROR"
    assert effective_level("ERROR", tty=True, verbosity=1) == "INFO"
    import structlog

    stream = _Tty()
    configure_logging("console", None, stream=stream)
    try:
        structlog.get_logger().info("hidden on a terminal")
        structlog.get_logger().warning("shown on a terminal")
    finally:
        configure_logging("console", "WARNING")
    assert "hidden on a terminal" not in stream.getvalue()
    assert "shown on a terminal" in stream.getvalue()


def test_no_color_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    """Console log lines on a terminal are coloured, unless NO_COLOR is set."""
    import structlog

    def render() -> str:
        stream = _Tty()
        configure_logging("console", "WARNING", stream=stream)
        structlog.get_logger().warning("colour?", key="value")
        return stream.getvalue()

    try:
        assert ANSI.search(render())
        monkeypatch.setenv("NO_COLOR", "1")
        assert not ANSI.search(render())
    finally:
        configure_logging("console", "WARNING")


def test_no_color_reaches_the_human_output(tmp_path: Path) -> None:
    """The consoles are made per invocation, so NO_COLOR set at run time is seen."""
    from sync.cli import app as app_module

    invoke(["--version"], {"NO_COLOR": "1"})
    code, _, _ = invoke(["status", "-h"], {"NO_COLOR": "1"})
    assert code == 0
    assert app_module.out.no_color is True


def test_run_in_the_image_without_durable_store_is_refused(
    upstream: RunningEmulators, tmp_path: Path
) -> None:
    """TEAMSYNC_DATA_DIR (the image) with nothing mounted there and no database URL: `run`
    exits 2 with what to mount or set, before any API call or store file."""
    env = dict(upstream.env())
    env.update(TEAMSYNC_DATA_DIR=str(tmp_path), TEAMSYNC_LOG_FORMAT="json")
    calls = upstream.log.count()
    code, _, stderr = invoke(["run"], env)
    assert code == 2
    assert "nothing is mounted at" in stderr
    assert "TEAMSYNC_DATABASE_URL" in stderr
    assert upstream.log.count() == calls
    assert not (tmp_path / "teamsync.db").exists()
    env["TEAMSYNC_DATA_DIR_DURABLE"] = "true"  # a directory the operator vouches for
    code, _, stderr = invoke(["run", "--dry-run"], env)
    assert code == 0, stderr
    assert (tmp_path / "teamsync.db").exists()


@pytest.mark.parametrize("command", [["demo"], ["emulate"]])
def test_demo_and_emulate_name_the_extra_when_emulators_are_missing(
    monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    """In the production image (no emulators, no trustme) `demo` / `emulate` exit 2 naming the
    extra to install."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "trustme" else real(name)
    )
    code, _, stderr = invoke(command)
    assert code == 2
    assert "pip install 'teamsync[emulators]'" in stderr
