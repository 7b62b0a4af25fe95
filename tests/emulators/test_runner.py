"""start_emulators over HTTPS: env() works with the real clients, the admin layer, the CLI."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import requests
from simple_salesforce import Salesforce, format_soql
from simple_salesforce.exceptions import SalesforceGeneralError

from connectors.tls import requests_session, ssl_context
from emulators.runner import RunningEmulators, start_emulators
from emulators.serve import load_or_create_tls
from emulators.tls import TlsMaterial

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def upstream(
    tls: TlsMaterial, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningEmulators]:
    with start_emulators(
        accounts=40, seed=3, tls=tls, workdir=tmp_path_factory.mktemp("upstream"), profile="strict"
    ) as running:
        yield running


def _token(env: dict[str, str], session: requests.Session) -> str:
    response = session.post(
        f"{env['TEAMSYNC_SALESFORCE_INSTANCE_URL']}/services/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": env["TEAMSYNC_SALESFORCE_CLIENT_ID"],
            "client_secret": env["TEAMSYNC_SALESFORCE_CLIENT_SECRET"],
        },
        timeout=10,
    )
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    assert body["instance_url"] == env["TEAMSYNC_SALESFORCE_INSTANCE_URL"]
    return str(body["access_token"])


def _salesforce(upstream: RunningEmulators) -> Salesforce:
    env = upstream.env()
    session = requests_session(Path(env["TEAMSYNC_CA_BUNDLE"]))
    return Salesforce(
        instance_url=env["TEAMSYNC_SALESFORCE_INSTANCE_URL"],
        session_id=_token(env, session),
        version=env["TEAMSYNC_SALESFORCE_API_VERSION"],
        session=session,
    )


def _admin(upstream: RunningEmulators, base: str) -> httpx.Client:
    return httpx.Client(base_url=base, verify=ssl_context(upstream.ca_path), timeout=10)


# -- env() -------------------------------------------------------------------------------


def test_env_client_credentials_reaches_seeded_salesforce_data(upstream: RunningEmulators) -> None:
    """A client-credentials token and simple-salesforce read the seeded scenario account."""
    assert upstream.org is not None
    ref = upstream.org.scenarios["score_50"]
    sf = _salesforce(upstream)
    result = sf.query(
        "SELECT Id, Name, Sales_Segment__c FROM Account WHERE Name = 'Scenario: score 50'"
    )
    assert [r["Id"] for r in result["records"]] == [ref.account_id]
    live = sf.query("SELECT COUNT() FROM Account")["totalSize"]
    everything = sf.query_all("SELECT Id FROM Account", include_deleted=True)["totalSize"]
    assert everything == upstream.org.counts["Account"]
    assert 0 < everything - live < everything


def test_env_gainsight_key_reads_seeded_company(upstream: RunningEmulators) -> None:
    """httpx with the env's base URL, access key and CA reads the scenario company (strict
    profile: the score is read through the scoring scheme lookup)."""
    assert upstream.org is not None
    ref = upstream.org.scenarios["score_50"]
    env = upstream.env()
    with httpx.Client(verify=ssl_context(env["TEAMSYNC_CA_BUNDLE"]), timeout=10) as client:
        response = client.post(
            f"{env['TEAMSYNC_GAINSIGHT_BASE_URL']}/v1/data/objects/query/Company",
            headers={"accesskey": env["TEAMSYNC_GAINSIGHT_ACCESS_KEY"]},
            json={
                "select": ["Gsid", "Name", "SfdcAccountId", "CurrentScore__gr.Score"],
                "where": {
                    "conditions": [
                        {
                            "name": "SfdcAccountId",
                            "alias": "A",
                            "value": [ref.account_id],
                            "operator": "EQ",
                        }
                    ],
                    "expression": "A",
                },
                "limit": 10,
                "offset": 0,
            },
        )
    assert response.status_code == 200
    data = response.json()["data"]
    records = data["records"] if isinstance(data, dict) else data
    assert [(r["Gsid"], r["CurrentScore__gr.Score"]) for r in records] == [(ref.company_gsid, 50)]


def test_env_token_and_jwt_modes(upstream: RunningEmulators) -> None:
    """auth="token" gives a working session; auth="jwt" names a key that signs a valid grant."""
    token_env = upstream.env("token")
    assert "TEAMSYNC_SALESFORCE_CLIENT_SECRET" not in token_env
    session = requests_session(upstream.ca_path)
    sf = Salesforce(
        instance_url=token_env["TEAMSYNC_SALESFORCE_INSTANCE_URL"],
        session_id=token_env["TEAMSYNC_SALESFORCE_ACCESS_TOKEN"],
        version="62.0",
        session=session,
    )
    assert sf.query("SELECT Id FROM User LIMIT 1")["records"]

    jwt_env = upstream.env("jwt")
    key = Path(jwt_env["TEAMSYNC_SALESFORCE_PRIVATE_KEY_FILE"]).read_bytes()
    assertion = jwt.encode(
        {
            "iss": jwt_env["TEAMSYNC_SALESFORCE_CLIENT_ID"],
            "sub": jwt_env["TEAMSYNC_SALESFORCE_USERNAME"],
            "aud": "https://login.salesforce.com",
            "exp": int(time.time()) + 120,
        },
        key,
        algorithm="RS256",
    )
    response = session.post(
        f"{jwt_env['TEAMSYNC_SALESFORCE_INSTANCE_URL']}/services/oauth2/token",
        data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert response.json()["access_token"]
    with pytest.raises(ValueError, match="auth must be one of"):
        upstream.env("password")


def test_integration_user_row_matches_the_emulator_running_user(upstream: RunningEmulators) -> None:
    """CreatedById on seeded rows names a User row: the emulator's own integration user."""
    sf = _salesforce(upstream)
    account = sf.query("SELECT CreatedById FROM Account LIMIT 1")["records"][0]
    user = sf.query(format_soql("SELECT Username FROM User WHERE Id = {}", account["CreatedById"]))
    assert [r["Username"] for r in user["records"]] == [upstream.salesforce.credentials.username]


# -- admin layer ---------------------------------------------------------------------------


def test_requests_snapshot_and_reset(upstream: RunningEmulators) -> None:
    """GET /__emulator/requests shows API calls (not admin ones); DELETE empties the log."""
    sf = _salesforce(upstream)
    sf.query("SELECT Id FROM Account LIMIT 1")
    with _admin(upstream, upstream.salesforce_url) as admin:
        snapshot = admin.get("/__emulator/requests").json()
        assert snapshot["summary"]["salesforce"]
        assert all("__emulator" not in c["path"] for c in snapshot["recent"])
        assert admin.delete("/__emulator/requests").status_code == 204
        assert upstream.log.count() == 0
        again = admin.get("/__emulator/requests").json()
        assert admin.post("/__emulator/requests").status_code == 405
    assert again == {"summary": {}, "recent": []}


def test_faults_put_schedules_a_503(upstream: RunningEmulators) -> None:
    """PUT /__emulator/faults {"fail_next": [503]} makes exactly the next data call fail."""
    sf = _salesforce(upstream)
    with _admin(upstream, upstream.salesforce_url) as admin:
        put = admin.put("/__emulator/faults", json={"fail_next": [503], "retry_after_seconds": 2})
        assert put.status_code == 200
        assert put.json()["scheduled"] == [503]
        assert admin.get("/__emulator/faults").json()["retry_after_seconds"] == 2
        with pytest.raises(SalesforceGeneralError) as info:
            sf.query("SELECT Id FROM Account LIMIT 1")
        assert info.value.status == 503
        assert sf.query("SELECT Id FROM Account LIMIT 1")["records"]
        bad = admin.put("/__emulator/faults", json={"no_such_knob": 1})
        assert bad.status_code == 400
        assert admin.put("/__emulator/faults", json={"reset": True}).json()["retry_after_seconds"]
    assert upstream.salesforce.faults.settings.retry_after_seconds == 1
    assert upstream.gainsight.faults.as_dict()["scheduled"] == []


def test_gainsight_faults_are_its_own(upstream: RunningEmulators) -> None:
    """The Gainsight server's admin layer configures the Gainsight faults only."""
    with _admin(upstream, upstream.gainsight_url) as admin:
        admin.put("/__emulator/faults", json={"fail_next": [429]})
        response = admin.post(
            "/v1/data/objects/query/GsUser",
            headers={"accesskey": upstream.gainsight.access_key},
            json={"select": ["Gsid"], "limit": 1, "offset": 0},
        )
        assert response.status_code == 429
        assert upstream.salesforce.faults.as_dict()["scheduled"] == []
        ok = admin.post(
            "/v1/data/objects/query/GsUser",
            headers={"accesskey": upstream.gainsight.access_key},
            json={"select": ["Gsid"], "limit": 1, "offset": 0},
        )
        assert ok.status_code == 200


def test_org_endpoint(upstream: RunningEmulators) -> None:
    """GET /__emulator/org returns the seeded summary with every scenario's ids."""
    assert upstream.org is not None
    with _admin(upstream, upstream.gainsight_url) as admin:
        body = admin.get("/__emulator/org").json()
    assert body["counts"] == upstream.org.counts
    assert (
        body["scenarios"]["no_company"]["account_id"]
        == upstream.org.scenarios["no_company"].account_id
    )


def test_clock_advance_and_set(upstream: RunningEmulators) -> None:
    """POST /__emulator/clock moves the clock both emulators share."""
    with _admin(upstream, upstream.salesforce_url) as admin:
        before = upstream.clock.now_ms()
        moved = admin.post("/__emulator/clock", json={"advance_ms": 3_600_000}).json()["now_ms"]
        assert moved >= before + 3_600_000
        assert upstream.gainsight.clock.now_ms() >= before + 3_600_000
        assert admin.post("/__emulator/clock", json={"set_ms": 1_700_000_000_000}).json() == {
            "now_ms": 1_700_000_000_000
        }
        assert admin.post("/__emulator/clock", json={"advance_ms": "x"}).status_code == 400
        assert admin.post("/__emulator/clock", json={}).status_code == 400
    upstream.clock.release()


def test_without_accounts_nothing_is_seeded(tls: TlsMaterial) -> None:
    """accounts=0 serves empty emulators; /__emulator/org answers 404; stop() cleans up."""
    running = start_emulators(tls=tls)
    try:
        assert running.org is None
        assert running.private_key_path.exists()
        with _admin(running, running.salesforce_url) as admin:
            assert admin.get("/__emulator/org").status_code == 404
    finally:
        running.stop()
    assert not running.private_key_path.exists()
    running.stop()  # idempotent


def test_tls_dir_material_is_reused(tmp_path: Path) -> None:
    """A second start with the same --tls-dir keeps the CA, so clients stay configured."""
    first = load_or_create_tls(tmp_path)
    ca = first.ca_path.read_bytes()
    second = load_or_create_tls(tmp_path)
    assert second.ca_path == first.ca_path
    assert second.ca_path.read_bytes() == ca
    (tmp_path / "emulator-key.pem").write_text("not a key")  # broken: start over
    third = load_or_create_tls(tmp_path)
    assert third.ca_path.read_bytes() != ca


# -- the CLI -------------------------------------------------------------------------------


def _read_until(stream: Any, marker: str, timeout: float) -> str:
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for line in iter(stream.readline, ""):
            lines.put(line)
        lines.put(None)  # end of output: the process is gone

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            continue
        if line is None:
            break
        seen.append(line)
        if marker in line:
            return "".join(seen)
    raise AssertionError(f"{marker!r} not printed (waited up to {timeout}s):\n{''.join(seen)}")


def test_cli_emulate_prints_urls_and_stops_cleanly(tmp_path: Path) -> None:
    """`teamsync emulate` serves, prints URLs and exports, and exits 0 on SIGTERM."""
    env = {**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sync.cli",
            "emulate",
            "--accounts",
            "30",
            "--seed",
            "2",
            "--tls-dir",
            str(tmp_path),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output = _read_until(proc.stdout, "Ready", timeout=60)
        exports = dict(
            line.removeprefix("export ").split("=", 1)
            for line in output.splitlines()
            if line.startswith("export TEAMSYNC_")
        )
        url = exports["TEAMSYNC_SALESFORCE_INSTANCE_URL"]
        assert url.startswith("https://127.0.0.1:")
        assert exports["TEAMSYNC_GAINSIGHT_BASE_URL"].startswith("https://127.0.0.1:")
        assert Path(exports["TEAMSYNC_CA_BUNDLE"]) == tmp_path / "emulator-ca.pem"
        assert "Account" in output
        with httpx.Client(verify=ssl_context(tmp_path / "emulator-ca.pem"), timeout=10) as c:
            org = c.get(f"{url}/__emulator/org").json()
        assert org["counts"]["Account"] == 30
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
