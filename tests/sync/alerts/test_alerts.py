"""Red-health alerts, unit level: transitions, DCI routing, payload, Slack Block Kit, signature,
outbox delivery with backoff and digest, HTTP sinks (httpx mock transport, no network).

Outbox tests use the ``store`` fixture: SQLite, and PostgreSQL when TEAMSYNC_TEST_DATABASE_URL
is set.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from sqlalchemy import select

import mappings
from config.errors import ConfigurationError, TeamsyncError
from config.settings import load_settings
from connectors.errors import UpstreamUnavailable
from connectors.retry import RetryPolicy
from mappings.rules import MappedAccount, Member, Person, Renewal
from mappings.schema import MappingFile, load_mapping
from sync.alerts import (
    FIRST_BACKOFF,
    IDEMPOTENCY_HEADER,
    MAX_BACKOFF,
    SIGNATURE_HEADER,
    Alerter,
    DeliveryError,
    HttpSink,
    LogSink,
    Sink,
    backoff,
    build_alert,
    build_sinks,
    routing,
    sign,
    slack_message,
    transition,
    verify,
)
from sync.alerts.sinks import sample_alert
from sync.store import Store
from sync.store.models import AlertOutbox, AlertState

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SF_URL = "https://acme.my.salesforce.com"
GS_URL = "https://acme.gainsightcloud.com"


# --- a Block Kit validator ------------------------------------------------------------------
# Written from Slack's Block Kit reference (docs.slack.dev/reference/block-kit/blocks/* and
# .../block-elements/button-element, also api.slack.com/reference/block-kit/blocks):
# - a message holds at most 50 blocks; with blocks, top-level "text" is the notification
#   fallback and should be present;
# - header: "text" a plain_text object, at most 150 characters;
# - section: "text" (a text object, at most 3000 characters) and/or "fields" (at most 10 text
#   objects, each at most 2000 characters); one of the two is required;
# - divider: nothing else;
# - context: "elements", at most 10, each an image element or a text object;
# - actions: "elements", at most 25 interactive elements; a button has a plain_text "text" of
#   at most 75 characters, an optional "url" of at most 3000, an "action_id" of at most 255
#   that is unique within the block;
# - "block_id", when present, at most 255 characters and unique in the message;
# - a text object is {"type": "plain_text" | "mrkdwn", "text": non-empty string}.
MAX_BLOCKS = 50


def _text_problems(obj: Any, where: str, limit: int, plain_only: bool = False) -> list[str]:
    if not isinstance(obj, dict):
        return [f"{where}: not a text object"]
    allowed = {"plain_text"} if plain_only else {"plain_text", "mrkdwn"}
    out = []
    if obj.get("type") not in allowed:
        out.append(f"{where}: type {obj.get('type')!r} not in {sorted(allowed)}")
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        out.append(f"{where}: text must be a non-empty string")
    elif len(text) > limit:
        out.append(f"{where}: {len(text)} characters > {limit}")
    extra = set(obj) - {"type", "text", "emoji", "verbatim"}
    if extra:
        out.append(f"{where}: unknown keys {sorted(extra)}")
    return out


def block_kit_problems(message: Any) -> list[str]:
    """Every way ``message`` breaks Slack's documented Block Kit structure (empty: valid)."""
    if not isinstance(message, dict):
        return ["message: not an object"]
    out: list[str] = []
    if not isinstance(message.get("text"), str) or not message["text"]:
        out.append("message: no fallback text")
    blocks = message.get("blocks")
    if not isinstance(blocks, list) or not blocks:
        return [*out, "message: blocks must be a non-empty list"]
    if len(blocks) > MAX_BLOCKS:
        out.append(f"message: {len(blocks)} blocks > {MAX_BLOCKS}")
    block_ids: set[str] = set()
    for i, block in enumerate(blocks):
        where = f"blocks[{i}]"
        if not isinstance(block, dict):
            out.append(f"{where}: not an object")
            continue
        kind = block.get("type")
        if "block_id" in block:
            bid = block["block_id"]
            if not isinstance(bid, str) or not bid or len(bid) > 255:
                out.append(f"{where}: bad block_id")
            elif bid in block_ids:
                out.append(f"{where}: duplicate block_id {bid!r}")
            else:
                block_ids.add(bid)
        keys = set(block) - {"type", "block_id"}
        if kind == "header":
            out += _text_problems(block.get("text"), f"{where}.text", 150, plain_only=True)
            keys -= {"text"}
        elif kind == "section":
            if "text" not in block and "fields" not in block:
                out.append(f"{where}: section needs text or fields")
            if "text" in block:
                out += _text_problems(block["text"], f"{where}.text", 3000)
            if "fields" in block:
                fields = block["fields"]
                if not isinstance(fields, list) or not fields or len(fields) > 10:
                    out.append(f"{where}.fields: 1 to 10 items")
                else:
                    for j, f in enumerate(fields):
                        out += _text_problems(f, f"{where}.fields[{j}]", 2000)
            keys -= {"text", "fields"}
        elif kind == "divider":
            pass
        elif kind == "context":
            elements = block.get("elements")
            if not isinstance(elements, list) or not elements or len(elements) > 10:
                out.append(f"{where}.elements: 1 to 10 items")
            else:
                for j, el in enumerate(elements):
                    if isinstance(el, dict) and el.get("type") == "image":
                        if not el.get("image_url") or not el.get("alt_text"):
                            out.append(f"{where}.elements[{j}]: image needs image_url, alt_text")
                    else:
                        out += _text_problems(el, f"{where}.elements[{j}]", 3000)
            keys -= {"elements"}
        elif kind == "actions":
            elements = block.get("elements")
            if not isinstance(elements, list) or not elements or len(elements) > 25:
                out.append(f"{where}.elements: 1 to 25 items")
            else:
                action_ids: set[str] = set()
                for j, el in enumerate(elements):
                    ew = f"{where}.elements[{j}]"
                    if not isinstance(el, dict) or el.get("type") != "button":
                        out.append(f"{ew}: only buttons are checked here")
                        continue
                    out += _text_problems(el.get("text"), f"{ew}.text", 75, plain_only=True)
                    url = el.get("url")
                    if url is not None and (not isinstance(url, str) or len(url) > 3000):
                        out.append(f"{ew}.url: at most 3000 characters")
                    aid = el.get("action_id")
                    if aid is not None:
                        if not isinstance(aid, str) or not aid or len(aid) > 255:
                            out.append(f"{ew}.action_id: 1 to 255 characters")
                        elif aid in action_ids:
                            out.append(f"{ew}.action_id: duplicate {aid!r}")
                        else:
                            action_ids.add(aid)
                    extra = set(el) - {"type", "text", "url", "action_id", "value", "style"}
                    if extra:
                        out.append(f"{ew}: unknown keys {sorted(extra)}")
            keys -= {"elements"}
        else:
            out.append(f"{where}: unknown block type {kind!r}")
            keys = set()
        if keys:
            out.append(f"{where}: unknown keys {sorted(keys)}")
    return out


# --- fixtures and builders ------------------------------------------------------------------
@pytest.fixture(scope="module")
def mapping() -> MappingFile:
    return load_mapping(Path(mappings.__file__).parent / "default.toml")


def person(name: str, active: bool = True, email: str | None = None) -> Person:
    slug = name.lower().replace(" ", ".")
    return Person(
        name=name,
        email=email if email is not None else f"{slug}@example.com",
        sf_user_id=f"005{hashlib.sha256(name.encode()).hexdigest()[:15]}",
        sf_active=active,
        gs_user_id=f"1P01{slug}",
        gs_active=active,
    )


def member(role: str, name: str, source: str, active: bool = True) -> Member:
    return Member(role=role, person=person(name, active), source=source)


def account(**overrides: Any) -> MappedAccount:
    """A Mid-Market customer with AE, CSM, SA and Executive Sponsor; renewal outside the window."""
    values: dict[str, Any] = {
        "account_id": "001000000000001AAA",
        "name": "Acme Corp",
        "segment": "Mid-Market",
        "segment_source": "field",
        "lifecycle": "Customer",
        "is_customer": True,
        "first_won": date(2024, 1, 10),
        "arr": 120000.0,
        "qualifying": True,
        "renewal": Renewal("006000000000001AAA", date(2026, 9, 1), 183, False, None),
        "company_gsid": "1P02ACME",
        "health_score": 42.0,
        "health_band": "Red",
        "previous_score": 68.0,
        "trend": "Down",
        "team": {
            "AE": member("AE", "Ann Exec", "account_owner"),
            "CSM": member("CSM", "Cass Success", "gainsight_csm"),
            "SA": member("SA", "Sam Architect", "team_member"),
            "EXEC_SPONSOR": member("EXEC_SPONSOR", "Eve Sponsor", "team_member"),
        },
        "flags": ["HEALTH_DROP", "RED_HEALTH"],
    }
    values.update(overrides)
    return MappedAccount(**values)


def alert_for(
    mapped: MappedAccount, mapping: MappingFile, kind: str = "entered_red"
) -> dict[str, Any]:
    return build_alert(
        kind,
        mapped,
        previous_band="Yellow",
        previous_score=68.0,
        key=f"{mapped.account_id}:{kind}:2026-03-02",
        now=T0,
        mapping=mapping,
        salesforce_url=SF_URL,
        gainsight_url=GS_URL,
    )


class FakeClock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


class FakeSink(Sink):
    """Records what it is given; fails with the queued errors first."""

    def __init__(self, name: str = "webhook") -> None:
        self.name = name
        self.sent: list[dict[str, Any]] = []
        self.calls = 0
        self.errors: list[TeamsyncError] = []

    def send(self, alert: dict[str, Any]) -> None:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        self.sent.append(alert)


def chunk(*accounts: MappedAccount) -> SimpleNamespace:
    return SimpleNamespace(items=[SimpleNamespace(mapped=a) for a in accounts])


def seen_before(store: Store) -> None:
    """Make the store not "empty" for alerting: these tests are about transitions, and the
    first run on an empty store sends one digest instead (tested on its own)."""
    from datetime import UTC, datetime

    from sync.store.models import AlertState

    with store.session() as s:
        if s.get(AlertState, BASELINE_ACCOUNT) is None:
            s.add(
                AlertState(
                    account_id=BASELINE_ACCOUNT,
                    band="Green",
                    score=None,
                    red_since=None,
                    last_alert_at=None,
                    updated_at=datetime(2026, 1, 1, tzinfo=UTC),
                )
            )


BASELINE_ACCOUNT = "001000000000999ZZZ"


def make_alerter(
    store: Store, mapping: MappingFile, sinks: list[Sink], clock: FakeClock, **kwargs: Any
) -> Alerter:
    if "first_run" not in kwargs:
        seen_before(store)
    return Alerter(
        store,
        mapping,
        sinks,
        clock=clock,
        salesforce_url=SF_URL,
        gainsight_url=GS_URL,
        **kwargs,
    )


def outbox(store: Store) -> list[AlertOutbox]:
    with store.session() as s:
        return list(s.scalars(select(AlertOutbox).order_by(AlertOutbox.id)))


# --- transitions ----------------------------------------------------------------------------
def _state(band: str, alerted_days_ago: float | None) -> AlertState:
    return AlertState(
        account_id="001000000000001AAA",
        band=band,
        score=None,
        red_since=T0 - timedelta(days=30),
        last_alert_at=(None if alerted_days_ago is None else T0 - timedelta(days=alerted_days_ago)),
        updated_at=T0,
    )


NEVER = object()  # no alert state: the account was never observed


@pytest.mark.parametrize(
    ("before", "alerted_days_ago", "band", "options", "expected"),
    [
        # entering Red, from every band and from never seen / unknown
        (NEVER, None, "Red", {}, ("entered_red", None)),
        ("Green", None, "Red", {}, ("entered_red", "Green")),
        ("Yellow", None, "Red", {}, ("entered_red", "Yellow")),
        ("Unknown", None, "Red", {}, ("entered_red", "Unknown")),
        # Yellow -> Red only
        ("Yellow", None, "Red", {"yellow_to_red_only": True}, ("entered_red", "Yellow")),
        ("Green", None, "Red", {"yellow_to_red_only": True}, None),
        ("Unknown", None, "Red", {"yellow_to_red_only": True}, None),
        (NEVER, None, "Red", {"yellow_to_red_only": True}, None),
        # staying Red: a reminder every reminder_days after the last alert
        ("Red", 6.99, "Red", {}, None),
        ("Red", 7, "Red", {}, ("reminder", "Red")),
        ("Red", 30, "Red", {}, ("reminder", "Red")),
        ("Red", 9, "Red", {"reminder_days": 10}, None),
        ("Red", 10, "Red", {"reminder_days": 10}, ("reminder", "Red")),
        ("Red", None, "Red", {}, None),  # the entry was never alerted (Yellow -> Red only)
        # leaving Red: a recovery notice only after an alert for that episode
        ("Red", 1, "Yellow", {}, ("recovered", "Red")),
        ("Red", 1, "Green", {}, ("recovered", "Red")),
        ("Red", None, "Green", {}, None),
        # a missing score is no observation: neither a recovery nor an entry
        ("Red", 1, "Unknown", {}, None),
        ("Red", 8, "Unknown", {}, None),
        # nothing to say
        ("Green", None, "Yellow", {}, None),
        ("Yellow", None, "Green", {}, None),
        (NEVER, None, "Green", {}, None),
        (NEVER, None, "Unknown", {}, None),
    ],
)
def test_transition_table(
    before: Any,
    alerted_days_ago: float | None,
    band: str,
    options: dict[str, Any],
    expected: tuple[str, str | None] | None,
) -> None:
    """Each (stored state, observed band, options) pair calls for exactly the documented alert."""
    args: dict[str, Any] = {
        "yellow_to_red_only": False,
        "reminder_days": 7,
        **options,
    }
    state = None if before is NEVER else _state(before, alerted_days_ago)
    t = transition(
        band=band,
        state=state,
        now=T0,
        red="Red",
        yellow="Yellow",
        unknown="Unknown",
        **args,
    )
    assert (None if t is None else (t.kind, t.previous_band)) == expected


# --- the state machine over several runs (outbox) -------------------------------------------
def test_one_alert_per_transition_whatever_the_number_of_runs(
    store: Store, mapping: MappingFile
) -> None:
    """Entering Red, staying Red, reminders at 7 and 14 days, recovery: one row each."""
    clock = FakeClock()
    sink = FakeSink()
    alerter = make_alerter(store, mapping, [sink], clock)
    red, green = account(), account(health_score=88.0, health_band="Green")

    def observe_runs(acc: MappedAccount, runs: int, every: timedelta) -> None:
        for _ in range(runs):
            alerter.observe(chunk(acc), "run")
            clock.now += every

    observe_runs(red, 4, timedelta(hours=6))  # four runs in one day
    assert [r.kind for r in outbox(store)] == ["entered_red"]
    clock.now = T0 + timedelta(days=6, hours=23)
    alerter.observe(chunk(red), "run")
    assert len(outbox(store)) == 1  # no reminder before 7 days
    clock.now = T0 + timedelta(days=7)
    observe_runs(red, 3, timedelta(hours=1))
    clock.now = T0 + timedelta(days=13, hours=23)
    alerter.observe(chunk(red), "run")
    clock.now = T0 + timedelta(days=14)
    alerter.observe(chunk(red), "run")
    observe_runs(green, 3, timedelta(hours=1))
    rows = outbox(store)
    assert [(r.kind, r.idempotency_key) for r in rows] == [
        ("entered_red", "001000000000001AAA:entered_red:2026-03-02"),
        ("reminder", "001000000000001AAA:reminder:2026-03-09"),
        ("reminder", "001000000000001AAA:reminder:2026-03-16"),
        ("recovered", "001000000000001AAA:recovered:2026-03-16"),
    ]
    assert {r.status for r in rows} == {"pending"}
    assert sink.calls == 0  # observe records, deliver sends
    recovered = rows[-1].payload
    assert recovered["health"]["previous_band"] == "Red"
    assert recovered["health"]["previous_score"] == 42.0
    assert recovered["title"] == "Acme Corp left Red (Green) — health 88"
    with store.session() as s:
        st = s.get(AlertState, red.account_id)
        assert st is not None
        assert (st.band, st.red_since, st.last_alert_at) == ("Green", None, None)


def test_missing_score_neither_recovers_nor_re_enters(store: Store, mapping: MappingFile) -> None:
    """Red, then no score for a while, then Red again: no recovery, no second entry."""
    clock = FakeClock()
    alerter = make_alerter(store, mapping, [FakeSink()], clock)
    alerter.observe(chunk(account()), "run")
    clock.advance(days=2)
    unknown = account(health_score=None, health_band="Unknown")
    alerter.observe(chunk(unknown), "run")
    clock.advance(days=2)
    alerter.observe(chunk(account()), "run")
    assert [r.kind for r in outbox(store)] == ["entered_red"]
    # The episode goes on: the reminder is due 7 days after the entry alert.
    clock.now = T0 + timedelta(days=7)
    alerter.observe(chunk(account()), "run")
    assert [r.kind for r in outbox(store)] == ["entered_red", "reminder"]


def test_same_day_flap_gets_distinct_keys(store: Store, mapping: MappingFile) -> None:
    """Red, back to Yellow, Red again the same day: three alerts, no key reused."""
    clock = FakeClock()
    alerter = make_alerter(store, mapping, [FakeSink("webhook"), FakeSink("slack")], clock)
    yellow = account(health_score=60.0, health_band="Yellow")
    for acc in (account(), yellow, account(), yellow):
        alerter.observe(chunk(acc), "run")
        clock.advance(hours=1)
    keys = [(r.sink, r.idempotency_key) for r in outbox(store)]
    base = "001000000000001AAA"
    assert [k for s, k in keys if s == "webhook"] == [
        f"{base}:entered_red:2026-03-02",
        f"{base}:recovered:2026-03-02",
        f"{base}:entered_red:2026-03-02:2",
        f"{base}:recovered:2026-03-02:2",
    ]
    assert [k for s, k in keys if s == "slack"] == [k for s, k in keys if s == "webhook"]


def test_yellow_to_red_only_skips_other_entries_and_their_episode(
    store: Store, mapping: MappingFile
) -> None:
    """With yellow_to_red_only, Green -> Red sends nothing (no reminder, no recovery later)."""
    clock = FakeClock()
    alerter = make_alerter(store, mapping, [FakeSink()], clock, yellow_to_red_only=True)
    a = account(account_id="001000000000001AAA", health_score=90.0, health_band="Green")
    b = account(account_id="001000000000002AAA", health_score=60.0, health_band="Yellow")
    a_red, b_red = (replace(x, health_score=30.0, health_band="Red") for x in (a, b))
    for accounts, wait in (((a, b), 1), ((a_red, b_red), 24 * 8), ((a_red, b_red), 1), ((a, b), 1)):
        alerter.observe(chunk(*accounts), "run")
        clock.advance(hours=wait)
    rows = [(r.account_id, r.kind) for r in outbox(store)]
    assert rows == [
        ("001000000000002AAA", "entered_red"),
        ("001000000000002AAA", "reminder"),
        ("001000000000002AAA", "recovered"),
    ]


def test_first_observation_of_a_red_account_alerts(store: Store, mapping: MappingFile) -> None:
    """An account never seen before that is Red counts as entering Red from unknown."""
    alerter = make_alerter(store, mapping, [FakeSink()], FakeClock())
    assert alerter.observe(chunk(account()), "run") == 1
    (row,) = outbox(store)
    assert row.payload["health"]["previous_band"] is None
    # Before: Gainsight's PreviousScore when teamsync has no earlier observation.
    assert row.payload["health"]["previous_score"] == 68.0


# --- routing (DCI) --------------------------------------------------------------------------
def test_routing_follows_the_dci_matrix(mapping: MappingFile) -> None:
    """CSM is the DRI; the segment's account executive, SA and sponsor are consulted."""
    team = routing(account(), mapping)
    assert team["activity"] == "Risk and Escalation Management"
    assert team["dri"]["role"] == "CSM"
    assert (team["dri"]["name"], team["dri"]["email"]) == (
        "Cass Success",
        "cass.success@example.com",
    )
    assert [p["role"] for p in team["consulted"]] == ["AE", "SA", "EXEC_SPONSOR"]
    assert all(not p["missing"] for p in team["consulted"])
    assert team["informed"] == []
    assert team["missing"] == []


def test_routing_names_the_sae_for_enterprise_and_the_rm_in_the_renewal_window(
    mapping: MappingFile,
) -> None:
    """Enterprise: SAE (not AE); a renewal inside the window brings in its Renewal Manager; the
    required SA is listed as missing, the unrequired, empty Executive Sponsor not at all."""
    rm = member("RM", "Rita Renewal", "renewal_owner")
    acc = account(
        segment="Enterprise",
        missing_roles=["SA"],
        renewal=Renewal("006000000000001AAA", date(2026, 5, 1), 60, True, rm.person),
        team={
            "SAE": member("SAE", "Stan Strategic", "account_owner"),
            "CSM": member("CSM", "Cass Success", "gainsight_csm"),
            "RM": rm,
        },
    )
    team = routing(acc, mapping)
    consulted = {p["role"]: p for p in team["consulted"]}
    assert list(consulted) == ["SAE", "RM", "SA"]
    assert consulted["RM"]["email"] == "rita.renewal@example.com"
    assert consulted["SAE"]["name"] == "Stan Strategic"
    assert consulted["SA"]["missing"] is True
    assert team["missing"] == ["Solutions Architect"]


def test_routing_says_who_is_missing(mapping: MappingFile) -> None:
    """The missing line comes from the segment's required roles (required_roles): no CSM and
    an inactive AE are named; the unowned renewal's RM and the Executive Sponsor, which
    Mid-Market does not require, are not."""
    acc = account(
        missing_roles=["AE", "CSM"],
        renewal=Renewal("006000000000001AAA", date(2026, 4, 1), 30, True, None),
        team={
            "AE": member("AE", "Gone Exec", "account_owner", active=False),
            "SA": member("SA", "Sam Architect", "team_member"),
        },
    )
    team = routing(acc, mapping)
    assert team["dri"]["missing"] is True
    assert team["dri"]["name"] is None
    ae = next(p for p in team["consulted"] if p["role"] == "AE")
    assert (ae["missing"], ae["inactive"], ae["email"]) == (True, True, None)
    assert team["missing"] == ["Account Executive", "Customer Success Manager"]
    assert [p["role"] for p in team["consulted"]] == ["AE", "SA"]
    alert = alert_for(acc, mapping)
    assert alert["missing"] == [
        "no Account Executive assigned",
        "no Customer Success Manager assigned",
    ]
    # Mid-Market requires no SA: an account without one never reads "no Solutions Architect".
    no_sa = replace(acc, team={"AE": member("AE", "Ann Exec", "account_owner")})
    assert "no Solutions Architect assigned" not in alert_for(no_sa, mapping)["missing"]
    assert "SA" not in [p["role"] for p in routing(no_sa, mapping)["consulted"]]


def test_routing_reads_the_matrix_from_the_mapping(mapping: MappingFile) -> None:
    """Changing the DCI row in the mapping changes who is consulted or informed."""
    row = {"CSM": "D", "AE": "C", "SAE": "C", "EXEC_SPONSOR": "I"}
    custom = mapping.model_copy(update={"dci": {"Risk and Escalation Management": row}})
    team = routing(account(), custom)
    assert [p["role"] for p in team["consulted"]] == ["AE"]
    assert [p["role"] for p in team["informed"]] == ["EXEC_SPONSOR"]


# --- payload --------------------------------------------------------------------------------
def test_alert_payload_carries_everything_the_team_needs(mapping: MappingFile) -> None:
    """Name, links, segment, ARR, score now and before, trend, renewal, flags, team, key."""
    alert = alert_for(account(), mapping)
    acc = alert["account"]
    assert alert["idempotency_key"] == "001000000000001AAA:entered_red:2026-03-02"
    assert alert["kind"] == "entered_red"
    assert alert["title"] == "Acme Corp turned Red — health 42"
    assert acc["name"] == "Acme Corp"
    assert acc["salesforce_url"] == f"{SF_URL}/lightning/r/Account/001000000000001AAA/view"
    assert acc["gainsight_url"] == f"{GS_URL}/v1/ui/customersuccess360?cid=1P02ACME"
    assert (acc["segment"], acc["arr"], acc["days_to_renewal"]) == ("Mid-Market", 120000.0, 183)
    assert acc["renewal_date"] == "2026-09-01"
    assert alert["health"] == {
        "score": 42.0,
        "band": "Red",
        "previous_score": 68.0,
        "previous_band": "Yellow",
        "trend": "Down",
    }
    assert alert["flags"] == ["HEALTH_DROP", "RED_HEALTH"]
    assert alert["team"]["dri"]["email"] == "cass.success@example.com"
    assert alert["occurred_at"] == T0.isoformat()
    json.dumps(alert)  # the webhook body: plain JSON


def test_alert_payload_without_links_or_renewal(mapping: MappingFile) -> None:
    """No Gainsight company, no renewal, no score: the fields are null, not invented."""
    acc = account(company_gsid=None, renewal=None, health_score=None)
    alert = build_alert(
        "entered_red",
        acc,
        previous_band=None,
        previous_score=None,
        key="k",
        now=T0,
        mapping=mapping,
        salesforce_url=None,
        gainsight_url=GS_URL,
    )
    assert alert["account"]["salesforce_url"] is None
    assert alert["account"]["gainsight_url"] is None
    assert alert["account"]["days_to_renewal"] is None
    assert alert["title"] == "Acme Corp turned Red"
    assert not block_kit_problems(slack_message(alert))


# --- Slack Block Kit ------------------------------------------------------------------------
def _bad(**block: Any) -> dict[str, Any]:
    return {"text": "x", "blocks": [block]}


@pytest.mark.parametrize(
    "message",
    [
        {"blocks": [{"type": "divider"}]},  # no fallback text
        {"text": "x", "blocks": [{"type": "divider"}] * 51},
        _bad(type="header", text={"type": "plain_text", "text": "h" * 151}),
        _bad(type="header", text={"type": "mrkdwn", "text": "h"}),
        _bad(type="section"),
        _bad(type="section", text={"type": "mrkdwn", "text": ""}),
        _bad(type="section", text={"type": "mrkdwn", "text": "s" * 3001}),
        _bad(type="section", fields=[{"type": "mrkdwn", "text": "f"}] * 11),
        _bad(type="section", fields=[{"type": "mrkdwn", "text": "f" * 2001}]),
        _bad(type="context", elements=[{"type": "mrkdwn", "text": "c"}] * 11),
        _bad(
            type="actions",
            elements=[{"type": "button", "text": {"type": "plain_text", "text": "b" * 76}}],
        ),
        _bad(
            type="actions",
            elements=[
                {"type": "button", "text": {"type": "plain_text", "text": "a"}, "action_id": "x"},
                {"type": "button", "text": {"type": "plain_text", "text": "b"}, "action_id": "x"},
            ],
        ),
        _bad(
            type="actions",
            elements=[
                {"type": "button", "text": {"type": "plain_text", "text": "a"}, "url": "u" * 3001}
            ],
        ),
        _bad(type="divider", block_id="b" * 256),
        _bad(type="markdown_table"),
        _bad(type="section", text={"type": "mrkdwn", "text": "s"}, colour="red"),
    ],
)
def test_block_kit_validator_rejects_what_slack_rejects(message: dict[str, Any]) -> None:
    """The validator used below is able to fail: each documented limit is enforced."""
    assert block_kit_problems(message)


@pytest.mark.parametrize("kind", ["entered_red", "reminder", "recovered"])
def test_slack_message_is_valid_block_kit(mapping: MappingFile, kind: str) -> None:
    """Every alert kind renders to valid Block Kit with the team, links and key."""
    message = slack_message(alert_for(account(), mapping, kind))
    assert block_kit_problems(message) == []
    blob = json.dumps(message)
    assert "Cass Success" in blob
    assert "mailto:cass.success@example.com" in blob
    assert "*DRI* Customer Success Manager" in blob
    buttons = next(b for b in message["blocks"] if b["type"] == "actions")["elements"]
    assert [b["url"] for b in buttons] == [
        f"{SF_URL}/lightning/r/Account/001000000000001AAA/view",
        f"{GS_URL}/v1/ui/customersuccess360?cid=1P02ACME",
    ]
    assert f"001000000000001AAA:{kind}:2026-03-02" in blob


def test_slack_message_stays_valid_with_extreme_content(mapping: MappingFile) -> None:
    """A 255-character name, dozens of flags, nobody on the team: still within every limit."""
    acc = account(
        name="Ω" * 255,
        flags=[f"MISSING_ROLE_{i}" for i in range(300)],
        team={},
        missing_roles=["AE", "CSM"],
        renewal=Renewal("006000000000001AAA", date(2026, 4, 1), 30, True, None),
    )
    message = slack_message(alert_for(acc, mapping))
    assert block_kit_problems(message) == []
    context = message["blocks"][-1]["elements"][0]["text"]
    assert "no Customer Success Manager assigned" in context


def test_slack_mrkdwn_is_escaped(mapping: MappingFile) -> None:
    """&, < and > in names reach Slack as entities, so they cannot forge links or mentions."""
    acc = account(
        name="Fish & Chips <Ltd>",
        team={"CSM": member("CSM", "Bob <!channel>", "gainsight_csm")},
    )
    alert = alert_for(acc, mapping)
    message = slack_message(alert)
    assert block_kit_problems(message) == []
    team_text = message["blocks"][2]["text"]["text"]
    assert "Bob &lt;!channel&gt;" in team_text
    assert "<!channel>" not in json.dumps(message)
    assert message["text"].startswith("Fish &amp; Chips &lt;Ltd&gt; turned Red")
    # The header is plain_text: shown as is.
    assert message["blocks"][0]["text"]["text"].startswith("Fish & Chips <Ltd>")
    digest = slack_message(
        {"kind": "digest", "title": "t", "idempotency_key": "d", "alerts": [alert]}
    )
    assert "Fish &amp; Chips &lt;Ltd&gt;" in digest["blocks"][1]["text"]["text"]


@pytest.mark.parametrize("count", [3, 200, 5000])
def test_slack_digest_is_valid_and_accounts_for_every_alert(
    mapping: MappingFile, count: int
) -> None:
    """A digest of any size fits Slack's limits and lists or counts every alert."""
    alerts = [
        alert_for(account(account_id=f"001{i:015d}", name=f"Customer number {i}"), mapping)
        for i in range(count)
    ]
    digest = {
        "kind": "digest",
        "title": f"teamsync: {count} health alerts ({count} entered red)",
        "idempotency_key": "digest:abc",
        "count": count,
        "alerts": alerts,
    }
    message = slack_message(digest)
    assert block_kit_problems(message) == []
    sections = [b["text"]["text"] for b in message["blocks"] if b["type"] == "section"]
    listed = sum(text.count("• ") for text in sections)
    more = [t for t in sections if t.startswith("… and ")]
    shown_more = int(more[0].split()[2]) if more else 0
    assert listed + shown_more == count
    assert "Customer number 0" in sections[0]
    assert (shown_more > 0) == (count == 5000)


# --- signature ------------------------------------------------------------------------------
def test_signature_is_hmac_sha256_of_the_body() -> None:
    """sign() matches the published HMAC-SHA256 test vector and verify() checks it."""
    body = b"The quick brown fox jumps over the lazy dog"
    expected = "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    assert sign(body, "key") == f"sha256={expected}"
    assert verify(body, "key", f"sha256={expected}")


@pytest.mark.parametrize(
    ("body", "secret", "header"),
    [
        (b'{"a":2}', "s3cret-value", None),  # tampered body
        (b'{"a":1}', "another-secret", None),  # wrong secret
        (b'{"a":1}', "s3cret-value", "sha256=" + "0" * 64),
        (b'{"a":1}', "s3cret-value", "sha256=é"),  # non-ASCII: False, not an exception
        (b'{"a":1}', "s3cret-value", ""),
    ],
)
def test_signature_rejects_anything_else(body: bytes, secret: str, header: str | None) -> None:
    """A changed body, another secret, a forged or garbled header: verify() says no."""
    signed = sign(b'{"a":1}', "s3cret-value")
    assert verify(b'{"a":1}', "s3cret-value", signed)
    assert not verify(body, secret, header if header is not None else signed)


# --- HTTP sinks (httpx mock transport) ------------------------------------------------------
class MockReceiver:
    """Answers the queued statuses (``(status, headers)`` or a bare status), then 200."""

    def __init__(self, *answers: int | tuple[int, dict[str, str]]) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if self.answers else 200
        status, headers = answer if isinstance(answer, tuple) else (answer, {})
        return httpx.Response(status, headers=headers, text="ok")


def http_sink(
    name: str, receiver: Callable[[httpx.Request], httpx.Response], sleeps: list[float]
) -> HttpSink:
    return HttpSink(
        name,
        "https://hooks.example.com/services/T000/B000/SECRETPATH",
        client=httpx.Client(transport=httpx.MockTransport(receiver)),
        policy=RetryPolicy(max_attempts=3, max_total_wait=10.0, initial_backoff=0.5, jitter=0),
        secret="s3cret-value" if name == "webhook" else None,
        sleep=sleeps.append,
    )


def test_webhook_sink_posts_signed_json_with_the_idempotency_key(mapping: MappingFile) -> None:
    """The generic webhook gets the alert as JSON, signed over the exact body, keyed."""
    receiver, sleeps = MockReceiver(), list[float]()
    alert = alert_for(account(), mapping)
    http_sink("webhook", receiver, sleeps).send(alert)
    (req,) = receiver.requests
    assert req.method == "POST"
    assert req.headers["content-type"] == "application/json"
    assert req.headers[IDEMPOTENCY_HEADER] == alert["idempotency_key"]
    assert verify(req.content, "s3cret-value", req.headers[SIGNATURE_HEADER])
    assert json.loads(req.content) == json.loads(json.dumps(alert))


def test_slack_sink_posts_block_kit_unsigned(mapping: MappingFile) -> None:
    """The Slack sink posts the Block Kit rendering, not the raw alert, without a signature."""
    receiver, sleeps = MockReceiver(), list[float]()
    http_sink("slack", receiver, sleeps).send(alert_for(account(), mapping))
    (req,) = receiver.requests
    body = json.loads(req.content)
    assert set(body) == {"text", "blocks"}
    assert block_kit_problems(body) == []
    assert SIGNATURE_HEADER not in req.headers


def test_http_sink_retries_transient_failures_with_the_shared_policy(mapping: MappingFile) -> None:
    """500 then 429 (Retry-After 3) then 200: three posts, waits from the policy, no error."""
    receiver, sleeps = MockReceiver(500, (429, {"Retry-After": "3"})), list[float]()
    http_sink("webhook", receiver, sleeps).send(alert_for(account(), mapping))
    assert len(receiver.requests) == 3
    assert sleeps == [0.5, 3.0]
    keys = {r.headers[IDEMPOTENCY_HEADER] for r in receiver.requests}
    assert len(keys) == 1


def test_http_sink_gives_up_without_leaking_the_url(mapping: MappingFile) -> None:
    """503 on every attempt: UpstreamUnavailable after the policy, the secret URL unnamed."""
    receiver, sleeps = MockReceiver(503, 503, 503, 503), list[float]()
    with pytest.raises(UpstreamUnavailable) as info:
        http_sink("slack", receiver, sleeps).send(alert_for(account(), mapping))
    assert len(receiver.requests) == 3
    assert "SECRETPATH" not in str(info.value)


def test_http_sink_connection_errors_are_retried_and_url_free(mapping: MappingFile) -> None:
    """A refused connection is transient; the message names the error type, not the URL."""
    calls: list[int] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        raise httpx.ConnectError(f"cannot reach {request.url}")

    with pytest.raises(UpstreamUnavailable) as info:
        http_sink("slack", refuse, []).send(alert_for(account(), mapping))
    assert len(calls) == 3
    assert "SECRETPATH" not in str(info.value)
    assert "ConnectError" in str(info.value)


def test_http_sink_refusal_is_not_retried(mapping: MappingFile) -> None:
    """A 4xx (e.g. Slack's 400 invalid_blocks) fails at once as DeliveryError."""
    receiver, sleeps = MockReceiver(400), list[float]()
    with pytest.raises(DeliveryError):
        http_sink("slack", receiver, sleeps).send(alert_for(account(), mapping))
    assert len(receiver.requests) == 1
    assert sleeps == []


def test_alert_sinks_retry_by_their_named_settings(tls: Any, tmp_path: Path) -> None:
    """build_sinks takes one delivery's policy from TEAMSYNC_ALERT_RETRY_MAX_ATTEMPTS /
    _MAX_WAIT_SECONDS (defaults 3 attempts, 10 s) through the shared RetryPolicy, and its waits
    go to the injected sleep (none is slept here)."""
    from emulators.http import EmulatorServer, Request, Response

    assert RetryPolicy.for_alert_sinks(load_settings()) == RetryPolicy(
        max_attempts=3, max_total_wait=10.0
    )
    hits: list[str] = []

    def unavailable(request: Request) -> Response:
        hits.append(request.path)
        return Response.empty(503)

    with EmulatorServer(unavailable, ssl_context=tls.server_context) as server:

        def attempts(**overrides: Any) -> tuple[int, list[float]]:
            hits.clear()
            sleeps: list[float] = []
            settings = load_settings(
                database_url=f"sqlite:///{tmp_path / 'x.db'}",
                alert_sinks="webhook",
                alert_webhook_url=f"{server.url}/hook",
                alert_webhook_secret="s3cret-value",
                ca_bundle=tls.ca_path,
                **overrides,
            )
            (sink,) = build_sinks(settings, sleep=sleeps.append)
            with pytest.raises(UpstreamUnavailable):
                sink.send({"idempotency_key": "k1", "kind": "entered_red", "title": "t"})
            return len(hits), sleeps

        count, sleeps = attempts()
        assert count == 3
        # 0.5 s then 1 s, each with up to 25 % jitter.
        assert len(sleeps) == 2
        assert 0.5 <= sleeps[0] <= 0.625
        assert 1.0 <= sleeps[1] <= 1.25
        assert attempts(alert_retry_max_attempts=5)[0] == 5
        assert attempts(alert_retry_max_attempts=1) == (1, [])
        assert attempts(alert_retry_max_wait_seconds=0) == (1, [])  # no wait fits the budget


def test_alerts_test_sample_is_a_real_alert(mapping: MappingFile) -> None:
    """`teamsync alerts test` sends what build_alert makes (every field a real alert has, the
    DRI from the mapping's risk row, missing roles from the segment), titled as a test."""
    sample = sample_alert(mapping, T0)
    real = alert_for(account(), mapping)
    assert set(sample) == set(real)
    assert set(sample["account"]) == set(real["account"])
    assert set(sample["health"]) == set(real["health"])
    assert sample["kind"] == "test"
    assert sample["idempotency_key"] == "test:2026-03-02T09:00:00+00:00"
    assert sample["title"] == "teamsync test alert — Example Corp turned Red — health 42"
    assert sample["team"]["activity"] == mapping.alerts.routing_activity
    assert sample["team"]["dri"]["role"] == "CSM"
    assert sample["team"]["dri"]["email"] == "csm@example.com"
    assert sample["account"]["days_to_renewal"] == 45
    assert block_kit_problems(slack_message(sample)) == []
    # Routing follows the mapping: another DRI for the risk row, another sample DRI.
    row = dict(mapping.dci[mapping.alerts.routing_activity])
    row.update({"CSM": "C", "SA": "D"})
    moved = mapping.model_copy(
        update={"dci": {**mapping.dci, mapping.alerts.routing_activity: row}}
    )
    assert sample_alert(moved, T0)["team"]["dri"]["role"] == "SA"


# --- delivery: outbox, backoff, digest ------------------------------------------------------
def test_backoff_doubles_from_a_minute_up_to_six_hours() -> None:
    """1, 2, 4, 8 ... minutes, never more than 6 hours, whatever the attempt count."""
    assert [backoff(n) for n in range(1, 6)] == [timedelta(minutes=m) for m in (1, 2, 4, 8, 16)]
    assert backoff(1) == FIRST_BACKOFF
    assert backoff(9) == timedelta(minutes=256)
    assert backoff(10) == MAX_BACKOFF == timedelta(hours=6)
    assert backoff(10_000) == MAX_BACKOFF


def test_failed_delivery_is_retried_on_later_runs_with_backoff(
    store: Store, mapping: MappingFile
) -> None:
    """Failures wait 1, 2, 4 minutes; after max attempts the row shows failed but still goes."""
    clock = FakeClock()
    sink = FakeSink()
    alerter = make_alerter(store, mapping, [sink], clock, max_attempts=3)
    alerter.observe(chunk(account()), "run")
    sink.errors = [UpstreamUnavailable("webhook: HTTP 500", api="webhook")] * 4

    assert alerter.deliver("r1") == {"webhook": {"sent": 0, "failed": 1, "deferred": 0}}
    (row,) = outbox(store)
    assert (row.status, row.attempts, row.next_attempt_at) == ("pending", 1, T0 + backoff(1))
    assert "HTTP 500" in (row.last_error or "")
    # Not due yet: nothing is tried.
    clock.advance(seconds=59)
    assert alerter.deliver("r2") == {}
    assert sink.calls == 1
    for attempt in (2, 3, 4):
        clock.now = outbox(store)[0].next_attempt_at or clock.now
        alerter.deliver(f"r{attempt + 1}")
        (row,) = outbox(store)
        assert row.attempts == attempt
        assert row.status == ("failed" if attempt >= 3 else "pending")
    assert outbox(store)[0].next_attempt_at == clock.now + backoff(4)
    # Failed is a label for operators, not a dead end: the alert still goes out.
    clock.now += backoff(4)
    alerter.deliver("r6")
    (row,) = outbox(store)
    assert (row.status, row.attempts, row.last_error) == ("sent", 5, None)
    assert [a["idempotency_key"] for a in sink.sent] == [row.idempotency_key]


def test_unreachable_sink_defers_the_rest_and_refusal_does_not(
    store: Store, mapping: MappingFile
) -> None:
    """An exhausted retry policy stops that sink for this run; a 4xx only fails that alert."""
    clock = FakeClock()
    hook, log_sink = FakeSink("webhook"), FakeSink("log")
    alerter = make_alerter(store, mapping, [hook, log_sink], clock)
    accounts = [account(account_id=f"001{i:015d}") for i in range(4)]
    alerter.observe(chunk(*accounts), "run")
    hook.errors = [UpstreamUnavailable("webhook: HTTP 503", api="webhook")]
    summary = alerter.deliver("r1")
    assert summary["webhook"] == {"sent": 0, "failed": 1, "deferred": 3}
    assert summary["log"] == {"sent": 4, "failed": 0, "deferred": 0}
    assert hook.calls == 1
    hooks = [r for r in outbox(store) if r.sink == "webhook"]
    assert [r.attempts for r in hooks] == [1, 0, 0, 0]
    # The deferred ones are still due: the next run sends them (the failed one waits).
    hook.errors = [DeliveryError("webhook: refused with HTTP 400")]
    summary = alerter.deliver("r2")
    assert summary["webhook"] == {"sent": 2, "failed": 1, "deferred": 0}
    clock.advance(minutes=5)
    alerter.deliver("r3")
    assert {r.status for r in outbox(store)} == {"sent"}
    assert sorted(a["account"]["id"] for a in hook.sent) == sorted(a.account_id for a in accounts)


def test_digest_above_the_threshold(store: Store, mapping: MappingFile) -> None:
    """More alerts than the threshold: one digest per sink listing them all; at it: one each."""
    clock = FakeClock()
    hook = FakeSink("webhook")
    alerter = make_alerter(store, mapping, [hook], clock, digest_threshold=3)
    accounts = [account(account_id=f"001{i:015d}", name=f"Customer {i}") for i in range(4)]
    alerter.observe(chunk(*accounts[:3]), "obs1")
    alerter.deliver("r1")
    assert [a["kind"] for a in hook.sent] == ["entered_red"] * 3  # 3 is not above 3
    recovered = [replace(a, health_band="Green", health_score=90.0) for a in accounts[:3]]
    clock.advance(hours=1)
    alerter.observe(chunk(*recovered, accounts[3]), "obs2")
    summary = alerter.deliver("r2")
    assert summary["webhook"] == {"digest": 1, "alerts": 4, "sent": 4, "failed": 0}
    digest = hook.sent[-1]
    assert digest["kind"] == "digest"
    assert digest["count"] == 4
    assert digest["title"] == "teamsync: 4 health alerts (1 entered red, 3 recovered)"
    assert digest["idempotency_key"].startswith("digest:")
    assert sorted(a["idempotency_key"] for a in digest["alerts"]) == sorted(
        r.idempotency_key for r in outbox(store) if r.run_id == "obs2"
    )
    assert len(hook.sent) == 4  # three single alerts, then one digest
    assert {r.status for r in outbox(store)} == {"sent"}
    assert block_kit_problems(slack_message(digest)) == []


def test_digest_key_is_stable_for_the_same_alerts(store: Store, mapping: MappingFile) -> None:
    """A digest re-sent after a failure carries the same key, so receivers can drop a repeat."""
    clock = FakeClock()
    hook = FakeSink("webhook")
    alerter = make_alerter(store, mapping, [hook], clock, digest_threshold=1)
    alerter.observe(chunk(*[account(account_id=f"001{i:015d}") for i in range(3)]), "run")
    hook.errors = [UpstreamUnavailable("webhook: HTTP 502", api="webhook")]
    alerter.deliver("r1")
    assert {r.attempts for r in outbox(store)} == {1}
    clock.advance(minutes=1)
    alerter.deliver("r2")
    assert hook.calls == 2
    (digest,) = hook.sent
    alerter_keys = sorted(r.idempotency_key for r in outbox(store))
    expected = hashlib.sha256("\n".join(alerter_keys).encode()).hexdigest()[:20]
    assert digest["idempotency_key"] == f"digest:{expected}"


def test_log_sink_writes_one_line_per_alert(store: Store, mapping: MappingFile) -> None:
    """The log sink logs each alert with its kind, title and key (no network needed)."""
    import structlog.testing

    alerter = make_alerter(store, mapping, [LogSink()], FakeClock())
    alerter.observe(chunk(account()), "run")
    # Whatever level an earlier test left configured, warnings must get through here.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))
    with structlog.testing.capture_logs() as logs:
        alerter.deliver("r1")
    lines = [entry for entry in logs if entry["event"] == "alert"]
    assert lines == [
        {
            "event": "alert",
            "log_level": "warning",
            "kind": "entered_red",
            "title": "Acme Corp turned Red — health 42",
            "key": "001000000000001AAA:entered_red:2026-03-02",
            "account": "001000000000001AAA",
            "count": None,
        }
    ]
    assert outbox(store)[0].status == "sent"


def test_log_sink_digest_lists_every_alert(mapping: MappingFile) -> None:
    """A digest on the log sink is one warning plus one line per alert it lists."""
    import structlog
    import structlog.testing

    alerts = [alert_for(account(account_id=f"001{i:015d}"), mapping) for i in range(3)]
    digest = {"kind": "digest", "title": "t", "idempotency_key": "digest:x", "count": 3}
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))
    try:
        with structlog.testing.capture_logs() as logs:
            LogSink().send({**digest, "alerts": alerts})
    finally:
        structlog.configure(**saved)
    assert [(e["event"], e["log_level"]) for e in logs] == [("alert", "warning")] + [
        ("alert in digest", "info")
    ] * 3
    assert [e["key"] for e in logs[1:]] == [a["idempotency_key"] for a in alerts]
    assert {e["digest"] for e in logs[1:]} == {"digest:x"}


# --- sinks chosen by settings ---------------------------------------------------------------
def test_sinks_are_chosen_by_settings(tmp_path: Path) -> None:
    """Default: log plus every configured URL; an explicit list wins; bad combinations refused."""
    base = {"database_url": f"sqlite:///{tmp_path / 'x.db'}"}
    assert [s.name for s in build_sinks(load_settings(**base))] == ["log"]
    both = load_settings(
        **base,
        alert_webhook_url="https://hooks.example.com/x",
        alert_webhook_secret="s3cret-value",
        alert_slack_webhook_url="https://hooks.slack.com/services/T/B/X",
    )
    assert [s.name for s in build_sinks(both)] == ["log", "slack", "webhook"]
    only = load_settings(**base, alert_sinks="slack", alert_slack_webhook_url="https://h.example")
    assert [s.name for s in build_sinks(only)] == ["slack"]
    with pytest.raises(ConfigurationError, match="SECRET"):
        build_sinks(load_settings(**base, alert_webhook_url="https://hooks.example.com/x"))
    with pytest.raises(ConfigurationError, match="SLACK_WEBHOOK_URL"):
        build_sinks(load_settings(**base, alert_sinks=["slack"]))
