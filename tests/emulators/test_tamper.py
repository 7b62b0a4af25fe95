"""The emulators' hostile-answer rules (emulators.tamper), per endpoint and over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from connectors.tls import ssl_context
from emulators.runner import RunningEmulators, start_emulators
from emulators.tamper import Tamper, TamperRules
from emulators.tls import TlsMaterial

QUERY = "/services/data/v62.0/query"


@pytest.fixture(scope="module")
def emus(tls: TlsMaterial) -> Iterator[RunningEmulators]:
    with start_emulators(accounts=5, seed=2, tls=tls) as running:
        yield running


@pytest.fixture(autouse=True)
def _reset(emus: RunningEmulators) -> None:
    emus.salesforce.faults.reset()
    emus.gainsight.faults.reset()


@pytest.fixture
def sf_http(emus: RunningEmulators) -> Iterator[httpx.Client]:
    token = emus.salesforce.issue_token()
    with httpx.Client(
        base_url=emus.salesforce_url,
        verify=ssl_context(emus.ca_path),
        headers={"Authorization": f"Bearer {token}"},
    ) as client:
        yield client


@pytest.fixture
def gs_http(emus: RunningEmulators) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=emus.gainsight_url,
        verify=ssl_context(emus.ca_path),
        headers={"accesskey": emus.gainsight.access_key},
    ) as client:
        yield client


def soql(client: httpx.Client, text: str) -> httpx.Response:
    return client.get(QUERY, params={"q": text})


def gs_query(client: httpx.Client) -> httpx.Response:
    return client.post("/v1/data/objects/query/Company", json={"select": ["Gsid"], "limit": 10})


def test_redirect_answers_before_the_emulator_acts(
    emus: RunningEmulators, sf_http: httpx.Client
) -> None:
    """A redirect rule answers its status and Location once; the next call is normal."""
    emus.salesforce.faults.tamper("redirect", operation="query", status=307,
                                  location="http://elsewhere.example/q")  # fmt: skip
    first = soql(sf_http, "SELECT Id FROM Account")
    assert first.status_code == 307
    assert first.headers["Location"] == "http://elsewhere.example/q"
    assert soql(sf_http, "SELECT Id FROM Account").json()["totalSize"] == live_accounts(emus)


def live_accounts(emus: RunningEmulators) -> int:
    return sum(1 for _ in live_account_ids(emus))


def live_account_ids(emus: RunningEmulators) -> Iterator[str]:
    for rid in emus.salesforce.tables["Account"].rows:
        row = emus.salesforce.get("Account", rid)
        if row is not None and not row.get("IsDeleted"):
            yield rid


def test_rules_match_object_after_the_query_is_parsed(
    emus: RunningEmulators, sf_http: httpx.Client
) -> None:
    """An object filter on a query applies to that object only."""
    emus.salesforce.faults.tamper("empty_page", operation="query", object="AccountTeamMember")
    assert soql(sf_http, "SELECT Id FROM Account").json()["totalSize"] == live_accounts(emus)
    empty = soql(sf_http, "SELECT Id FROM AccountTeamMember").json()
    assert empty == {"totalSize": 0, "done": True, "records": []}


@pytest.mark.parametrize(
    ("kind", "extra", "check"),
    [
        ("html", {}, lambda r: r.status_code == 200 and r.text.startswith("<!DOCTYPE html>")),
        ("truncate", {}, lambda r: r.status_code == 200 and _not_json(r.content)),
        ("drop", {"path": "records"}, lambda r: "records" not in r.json()),
        ("set", {"path": "done", "value": "yes"}, lambda r: r.json()["done"] == "yes"),
        ("wrong_count", {}, lambda r: len(r.json()["records"]) == r.json()["totalSize"] - 1),
    ],
)
def test_salesforce_query_rewrites(
    emus: RunningEmulators, sf_http: httpx.Client, kind: str, extra: dict[str, Any], check: Any
) -> None:
    """Each ``after`` kind rewrites the real answer as documented."""
    emus.salesforce.faults.tamper(kind, operation="query", **extra)
    assert check(soql(sf_http, "SELECT Id FROM Account"))


def test_set_on_a_list_body_applies_to_every_item(
    emus: RunningEmulators, sf_http: httpx.Client
) -> None:
    """``set`` on a Collections answer changes each result; the write itself happened."""
    account = next(live_account_ids(emus))
    emus.salesforce.faults.tamper("set", operation="collections.update", path="success",
                                  value=None)  # fmt: skip
    body = {
        "allOrNone": False,
        "records": [{"attributes": {"type": "Account"}, "Id": account, "Name": "Tampered"}],
    }
    answer = sf_http.patch("/services/data/v62.0/composite/sobjects", json=body)  # fmt: skip
    assert [item["success"] for item in answer.json()] == [None]
    assert emus.salesforce.get("Account", account)["Name"] == "Tampered"  # type: ignore[index]


@pytest.mark.parametrize(
    ("kind", "extra", "expected"),
    [
        ("drop", {"path": "data"}, lambda b: "data" not in b and b["result"] is True),
        ("set", {"path": "data", "value": None}, lambda b: b["data"] is None),
        ("empty_page", {}, lambda b: b["data"] == [] and b["result"] is True),
        ("empty_page", {"value": "no_data"},
         lambda b: b["result"] is False and b["errorCode"] == "GSOBJ_1XXX"),
        ("wrong_count", {}, lambda b: len(b["data"]) == 5),
    ],
)  # fmt: skip
def test_gainsight_read_rewrites(
    emus: RunningEmulators,
    gs_http: httpx.Client,
    kind: str,
    extra: dict[str, Any],
    expected: Any,
) -> None:
    """Gainsight envelopes are rewritten per kind (the company read has 6 rows here)."""
    assert len(gs_query(gs_http).json()["data"]) == 6
    emus.gainsight.faults.tamper(kind, operation="company.query", **extra)
    assert expected(gs_query(gs_http).json())


def test_skip_and_times(emus: RunningEmulators, gs_http: httpx.Client) -> None:
    """``skip`` lets calls through first, ``times`` bounds the hits; ``hits`` counts them."""
    rule = emus.gainsight.faults.tamper("html", operation="company", skip=1, times=2)
    statuses = [gs_query(gs_http).headers["content-type"].split(";")[0] for _ in range(4)]
    assert statuses == ["application/json", "text/html", "text/html", "application/json"]
    assert rule.hits == 2


def test_rules_over_http_and_reset(emus: RunningEmulators, gs_http: httpx.Client) -> None:
    """PUT /__emulator/faults takes rules as JSON; a bad rule is a 400; reset clears them."""
    admin = gs_http
    bad = admin.put("/__emulator/faults", json={"tamper": [{"kind": "teleport"}]})
    assert bad.status_code == 400
    ok = admin.put(
        "/__emulator/faults",
        json={"tamper": [{"kind": "set", "operation": "company.query", "path": "data",
                          "value": None, "times": None}]},
    )  # fmt: skip
    assert ok.status_code == 200
    assert ok.json()["tamper"][0]["kind"] == "set"
    assert gs_query(gs_http).json()["data"] is None
    admin.put("/__emulator/faults", json={"reset": True})
    assert len(gs_query(gs_http).json()["data"]) == 6


def test_rule_validation() -> None:
    """Unknown kinds and incomplete rules are refused when added."""
    with pytest.raises(ValueError, match="unknown tamper kind"):
        Tamper("teleport")
    with pytest.raises(ValueError, match="needs a location"):
        Tamper("redirect")
    with pytest.raises(ValueError, match="needs a path"):
        Tamper("drop")
    rules = TamperRules()
    rules.add(Tamper("html", operation="query", times=1))
    assert rules.take("query_more", None, before=False) is None  # prefix only up to a dot
    assert rules.take("query", None, before=False) is not None
    assert rules.take("query", None, before=False) is None


def _not_json(content: bytes) -> bool:
    try:
        json.loads(content)
    except ValueError:
        return True
    return False
