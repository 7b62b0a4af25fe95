"""Settings garbage is a configuration error (exit 2), every problem listed in one pass."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from config.errors import ConfigurationError
from config.settings import load_settings
from emulators.tls import TlsMaterial
from sync.cli.app import app


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("TEAMSYNC_") and key != "TEAMSYNC_TEST_DATABASE_URL":
            monkeypatch.delenv(key)


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("lock_lease_seconds", 10**30, "less than or equal"),
        ("lock_lease_seconds", "99999999999999999999999", "less than or equal"),
        ("connect_timeout_seconds", "inf", "less than or equal"),
        ("read_timeout_seconds", "nan", "less than or equal"),
        ("salesforce_api_budget", "nan", "less than or equal"),
        ("retry_max_wait_seconds", "-inf", "greater than or equal"),
        ("mass_change_min", 10**15, "too large"),
        ("mass_change_percent", "nan", "less than or equal"),
        ("lookback_seconds", 10**12, "less than or equal"),
        ("salesforce_bulk_threshold", 2**64, "too large"),
    ],
)
def test_garbage_numbers_are_configuration_errors(name: str, value: object, says: str) -> None:
    """Huge numbers, inf and NaN never reach a timedelta or a sleep: exit 2, named."""
    with pytest.raises(ConfigurationError) as info:
        load_settings(**{name: value})
    assert info.value.exit_code == 2
    assert any(p.startswith(f"TEAMSYNC_{name.upper()}:") and says in p for p in info.value.problems)


def test_ca_bundle_that_is_not_a_certificate(tmp_path: Path) -> None:
    """A CA bundle that is no PEM certificate (or a broken one) is refused without a traceback."""
    garbage = tmp_path / "ca.pem"
    garbage.write_text("hello, I am not a certificate\n")
    broken = tmp_path / "broken.pem"
    broken.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    for path, says in ((garbage, "is not a PEM certificate bundle"), (broken, "no certificate")):
        with pytest.raises(ConfigurationError) as info:
            load_settings(ca_bundle=path)
        assert any(says in p for p in info.value.problems), info.value.problems


def test_a_real_bundle_passes(tls: TlsMaterial) -> None:
    """The emulators' CA loads."""
    assert load_settings(ca_bundle=tls.ca_path).ca_bundle == tls.ca_path


def test_every_problem_in_one_pass(tmp_path: Path) -> None:
    """Missing files are listed together with the other problems, not after they are fixed."""
    with pytest.raises(ConfigurationError) as info:
        load_settings(
            mapping=tmp_path / "nope.toml",
            salesforce_private_key_file=tmp_path / "nokey.pem",
            ca_bundle=tmp_path / "noca.pem",
            lock_lease_seconds=10**30,
            read_timeout_seconds="inf",
        )
    text = "\n".join(info.value.problems)
    for name in ("MAPPING", "SALESFORCE_PRIVATE_KEY_FILE", "CA_BUNDLE", "LOCK_LEASE_SECONDS",
                 "READ_TIMEOUT_SECONDS"):  # fmt: skip
        assert f"TEAMSYNC_{name}:" in text, text


def test_cli_exit_2_one_message(tmp_path: Path) -> None:
    """`teamsync run` with garbage settings exits 2 listing them, no traceback."""
    result = CliRunner().invoke(
        app,
        ["run"],
        env={
            "TEAMSYNC_LOCK_LEASE_SECONDS": "1e400",
            "TEAMSYNC_CONNECT_TIMEOUT_SECONDS": "inf",
            "TEAMSYNC_CA_BUNDLE": str(tmp_path / "missing.pem"),
            "TEAMSYNC_DATABASE_URL": f"sqlite:///{tmp_path / 'ts.db'}",
        },
    )
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for name in ("LOCK_LEASE_SECONDS", "CONNECT_TIMEOUT_SECONDS", "CA_BUNDLE"):
        assert f"TEAMSYNC_{name}" in result.output
