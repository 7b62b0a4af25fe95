"""Settings: environment over TOML file, secrets only from the environment, errors listed."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.errors import ConfigurationError
from config.settings import load_settings, salesforce_auth, salesforce_credential_problems


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("TEAMSYNC_"):
            monkeypatch.delenv(key)


def test_defaults() -> None:
    """Defaults follow DESIGN.md: SQLite store, API 62.0, 5-minute lookback."""
    s = load_settings()
    assert s.database_url == "sqlite:///teamsync.db"
    assert s.salesforce_api_version == "62.0"
    assert s.lookback_seconds == 300
    assert s.mapping.name == "default.toml"
    assert s.effective_alert_sinks() == ["log"]


def test_environment_wins_over_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A value in the environment overrides the same value in the TOML file (sections flatten)."""
    cfg = tmp_path / "teamsync.toml"
    cfg.write_text(
        'chunk_size = 50\n[salesforce]\ninstance_url = "https://file.my.salesforce.com"\n'
        'api_version = "61.0"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("TEAMSYNC_SALESFORCE_API_VERSION", "v60.0")
    s = load_settings(cfg)
    assert s.salesforce_instance_url == "https://file.my.salesforce.com"
    assert s.salesforce_api_version == "60.0"
    assert s.chunk_size == 50


def test_unknown_setting_in_file_is_refused(tmp_path: Path) -> None:
    """A typo in the settings file is an error, not silently ignored."""
    cfg = tmp_path / "teamsync.toml"
    cfg.write_text("[salesforce]\nchunk_size = 5\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="unknown setting 'salesforce_chunk_size'"):
        load_settings(cfg)


def test_secret_in_file_is_refused(tmp_path: Path) -> None:
    """Secrets are never read from the settings file."""
    cfg = tmp_path / "teamsync.toml"
    cfg.write_text('[gainsight]\naccess_key = "abc123"\n', encoding="utf-8")
    with pytest.raises(ConfigurationError) as info:
        load_settings(cfg)
    assert "secret" in str(info.value)
    assert "abc123" not in str(info.value)


def test_secret_from_named_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """TEAMSYNC_<SECRET>_FILE reads the secret from a file and masks it."""
    path = tmp_path / "key"
    path.write_text("s3cr3t-access-key\n", encoding="utf-8")
    monkeypatch.setenv("TEAMSYNC_GAINSIGHT_ACCESS_KEY_FILE", str(path))
    s = load_settings()
    assert s.gainsight_access_key is not None
    assert s.gainsight_access_key.get_secret_value() == "s3cr3t-access-key"
    assert "s3cr3t" not in repr(s)


def test_all_errors_listed_without_secret_values(monkeypatch: pytest.MonkeyPatch) -> None:
    """Several bad values are reported at once, and no value is echoed back."""
    monkeypatch.setenv("TEAMSYNC_SALESFORCE_INSTANCE_URL", "http://plain-http.example")
    monkeypatch.setenv("TEAMSYNC_CHUNK_SIZE", "lots")
    monkeypatch.setenv("TEAMSYNC_DAEMON_CRON", "every minute")
    monkeypatch.setenv("TEAMSYNC_SALESFORCE_ACCESS_TOKEN", "tok-should-not-leak")
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    text = str(info.value)
    assert "TEAMSYNC_SALESFORCE_INSTANCE_URL" in text
    assert "TEAMSYNC_CHUNK_SIZE" in text
    assert "TEAMSYNC_DAEMON_CRON" in text
    assert "tok-should-not-leak" not in text


def test_require_lists_missing_credentials() -> None:
    """Commands that talk to the APIs list every missing setting."""
    s = load_settings()
    with pytest.raises(ConfigurationError) as info:
        s.require("salesforce", "gainsight")
    assert len(info.value.problems) == 4


def test_auth_mode_detection(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Static token, client credentials and JWT are told apart, in the connector's
    configuration read from the settings."""
    from connectors.salesforce import SalesforceConfig

    def mode() -> str:
        return SalesforceConfig.from_settings(load_settings()).auth_mode

    key = tmp_path / "key.pem"
    key.write_text("x", encoding="utf-8")
    monkeypatch.setenv("TEAMSYNC_SALESFORCE_INSTANCE_URL", "https://acme.my.salesforce.com")
    monkeypatch.setenv("TEAMSYNC_SALESFORCE_CLIENT_ID", "cid")
    monkeypatch.setenv("TEAMSYNC_SALESFORCE_CLIENT_SECRET", "secret")
    assert mode() == "client_credentials"
    monkeypatch.delenv("TEAMSYNC_SALESFORCE_CLIENT_SECRET")
    monkeypatch.setenv("TEAMSYNC_SALESFORCE_USERNAME", "u@example.com")
    monkeypatch.setenv("TEAMSYNC_SALESFORCE_PRIVATE_KEY_FILE", str(key))
    assert mode() == "jwt"
    monkeypatch.setenv("TEAMSYNC_SALESFORCE_ACCESS_TOKEN", "tok")
    assert mode() == "token"


def test_alert_sinks_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    """TEAMSYNC_ALERT_SINKS accepts a comma-separated list."""
    monkeypatch.setenv("TEAMSYNC_ALERT_SINKS", "log, webhook")
    assert load_settings().effective_alert_sinks() == ["log", "webhook"]


# --- operations settings (issue 9) -----------------------------------------------------------
@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@db:5432/ts", "postgresql+psycopg://u:p@db:5432/ts"),
        ("postgresql://u@db/ts", "postgresql+psycopg://u@db/ts"),
        ("postgresql+psycopg://u@db/ts", "postgresql+psycopg://u@db/ts"),
        ("sqlite:///x.db", "sqlite:///x.db"),
    ],
)
def test_postgres_urls_are_accepted(
    monkeypatch: pytest.MonkeyPatch, given: str, expected: str
) -> None:
    """postgres:// (Heroku, many PaaS) and postgresql:// mean psycopg 3."""
    monkeypatch.setenv("TEAMSYNC_DATABASE_URL", given)
    assert load_settings().database_url == expected


def test_database_url_from_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """TEAMSYNC_DATABASE_URL_FILE reads the URL (it carries the password) from a file."""
    secret = tmp_path / "database-url"
    secret.write_text("postgres://ts:pw@db/ts\n", encoding="utf-8")
    monkeypatch.setenv("TEAMSYNC_DATABASE_URL_FILE", str(secret))
    s = load_settings()
    assert s.database_url == "postgresql+psycopg://ts:pw@db/ts"
    assert s.database_url_chosen()


def test_data_dir_holds_the_default_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With TEAMSYNC_DATA_DIR (the image) the default store is the SQLite file there; a
    database URL that someone set still wins."""
    monkeypatch.setenv("TEAMSYNC_DATA_DIR", str(tmp_path))
    s = load_settings()
    assert s.database_url == f"sqlite:///{tmp_path / 'teamsync.db'}"
    assert not s.database_url_chosen()
    monkeypatch.setenv("TEAMSYNC_DATABASE_URL", "sqlite:///elsewhere.db")
    assert load_settings().database_url == "sqlite:///elsewhere.db"


def test_unknown_variables_get_the_closest_known_name() -> None:
    """A mistyped TEAMSYNC_* variable is reported with what was probably meant."""
    from config.settings import known_env_names, unknown_env_names

    env = {
        "TEAMSYNC_DATABSE_URL": "x",
        "TEAMSYNC_GAINSIGHT_ACCESS_KEY_FILE": "/run/secrets/gs",
        "TEAMSYNC_CONFIG": "a.toml",
        "TEAMSYNC_ZZZ": "1",
        "PATH": "/bin",
    }
    assert unknown_env_names(env) == [
        ("TEAMSYNC_DATABSE_URL", "TEAMSYNC_DATABASE_URL"),
        ("TEAMSYNC_ZZZ", None),
    ]
    known = known_env_names()
    assert {"TEAMSYNC_DATABASE_URL_FILE", "TEAMSYNC_HEARTBEAT_URL_FILE"} <= known
    assert "TEAMSYNC_LOG_FORMAT_FILE" not in known  # only secrets and the URL come from files


def test_command_line_config_wins_over_teamsync_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--config FILE beats TEAMSYNC_CONFIG (the command line is the more specific)."""
    env_file = tmp_path / "env.toml"
    env_file.write_text("chunk_size = 11\n", encoding="utf-8")
    cli_file = tmp_path / "cli.toml"
    cli_file.write_text("chunk_size = 22\n", encoding="utf-8")
    monkeypatch.setenv("TEAMSYNC_CONFIG", str(env_file))
    assert load_settings().chunk_size == 11
    assert load_settings(cli_file).chunk_size == 22


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("TEAMSYNC_DAEMON_TZ", "Mars/Olympus", "not a known time zone"),
        ("TEAMSYNC_HEARTBEAT_URL", "http://hc.example/ping/x", "https://"),
        ("TEAMSYNC_PUSHGATEWAY_URL", "ftp://pg.example", "http:// or https://"),
        ("TEAMSYNC_ALERT_FIRST_RUN", "everything", "TEAMSYNC_ALERT_FIRST_RUN"),
        ("TEAMSYNC_METRICS_PORT", "70000", "TEAMSYNC_METRICS_PORT"),
    ],
)
def test_operations_settings_are_validated(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    """Bad operations settings are refused at start-up, named by their variable."""
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=message):
        load_settings()


def test_daemon_tz_and_heartbeat_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """The daemon's cron is UTC unless TEAMSYNC_DAEMON_TZ says otherwise; the heartbeat URL
    is a secret."""
    assert load_settings().daemon_tz == "UTC"
    monkeypatch.setenv("TEAMSYNC_DAEMON_TZ", "Europe/Berlin")
    monkeypatch.setenv("TEAMSYNC_HEARTBEAT_URL", "https://hc.example/ping/abc-123")
    s = load_settings()
    assert s.daemon_tz == "Europe/Berlin"
    assert "abc-123" not in repr(s)


@pytest.mark.parametrize(
    ("given", "mode", "problem"),
    [
        ({"access_token": True}, "token", None),
        ({"access_token": True, "client_id": True, "client_secret": True}, "token", None),
        ({"client_id": True, "client_secret": True}, "client_credentials", None),
        ({"client_id": True, "username": True, "private_key_file": True}, "jwt", None),
        ({"username": True, "private_key_file": True}, "jwt", "JWT bearer flow also needs"),
        ({"client_id": True}, None, "no Salesforce credentials"),
        ({}, None, "no Salesforce credentials"),
    ],
)
def test_one_salesforce_credential_rule(
    given: dict[str, bool], mode: str | None, problem: str | None
) -> None:
    """Which credentials make which flow, and what is missing: one rule, used by the settings
    check and the connector's configuration alike."""
    flags = {
        k: given.get(k, False)
        for k in ("access_token", "client_id", "client_secret", "username", "private_key_file")
    }
    assert salesforce_auth(**flags) == mode
    problems = salesforce_credential_problems(**flags, name=str)
    if problem is None:
        assert problems == []
    else:
        assert len(problems) == 1
        assert problem in problems[0]
