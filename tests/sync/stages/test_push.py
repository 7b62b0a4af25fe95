"""The pusher against fake ports (no HTTP): batch sizes and the write-call floor, execution
order, outcomes recorded per record, quarantine and its resolution, CTA adoption, a stop
between batches.  The store is SQLite, and PostgreSQL when TEAMSYNC_TEST_DATABASE_URL is set."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import select

from mappings.schema import MappingFile
from sync.stages.plan import Op
from sync.stages.push import Pusher
from sync.store import Store
from sync.store.models import CtaLink, Operation, QuarantinedRecord
from sync.types import Action, OpStatus, System

RUN = "run-1"
SF, GS = System.SALESFORCE, System.GAINSIGHT


@dataclass(frozen=True)
class Outcome:
    index: int
    id: str | None
    success: bool
    code: str | None = None
    message: str | None = None


@dataclass
class FakePorts:
    """Both ports: every write call recorded; records whose id is in ``refuse`` fail."""

    calls: list[tuple[str, str, int]] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)
    open_ctas: list[dict[str, Any]] = field(default_factory=list)

    def _answer(self, kind: str, obj: str, records: Sequence[Mapping[str, Any]]) -> list[Outcome]:
        self.calls.append((kind, obj, len(records)))
        out = []
        for i, r in enumerate(records):
            rid = str(r.get("Id") or r.get("Gsid") or f"NEW{len(self.calls)}x{i}")
            if rid in self.refuse or r.get("UserId") in self.refuse:
                out.append(Outcome(i, None, False, "INVALID_CROSS_REFERENCE_KEY", "refused"))
            else:
                out.append(Outcome(i, rid, True))
        return out

    # SalesforcePort
    def query(self, soql: str, **kw: Any) -> Iterator[list[dict[str, Any]]]:
        yield []

    def count(self, soql: str, **kw: Any) -> int:
        return 0

    def create(self, obj: str, records: Sequence[Mapping[str, Any]]) -> list[Outcome]:
        return self._answer("sf.create", obj, records)

    def update(self, obj: str, records: Sequence[Mapping[str, Any]], **kw: Any) -> list[Outcome]:
        return self._answer("gs.update" if obj == "Company" else "sf.update", obj, records)

    def delete(self, obj: str, ids: Sequence[str]) -> list[Outcome]:
        return self._answer("sf.delete", obj, [{"Id": i} for i in ids])

    # GainsightPort (update above serves both)
    def cta_list(self, select: Sequence[str], **kw: Any) -> Iterator[list[dict[str, Any]]]:
        self.calls.append(("gs.cta_list", "CallToAction", 0))
        yield list(self.open_ctas)

    def cta_create(self, records: Sequence[Mapping[str, Any]]) -> list[Outcome]:
        return self._answer("gs.cta_create", "CallToAction", records)

    def cta_update(self, records: Sequence[Mapping[str, Any]]) -> list[Outcome]:
        return self._answer("gs.cta_update", "CallToAction", records)


def sf_id(prefix: str, n: int) -> str:
    """An 18-character Id: a 3-character key prefix, 12 digits, the (all-lower-case) suffix."""
    return f"{prefix[:3]}{n:012d}AAA"


def team_create(n: int) -> Op:
    account = sf_id("001Tm0", n)
    user = sf_id("005Tm0", n)
    return Op(SF, "AccountTeamMember", Action.CREATE, None, account,
              {"AccountId": account, "UserId": user, "TeamMemberRole": "Account Executive"},
              "no AE row")  # fmt: skip


def team_delete(n: int) -> Op:
    rid = sf_id("01MTm0", n)
    return Op(SF, "AccountTeamMember", Action.DELETE, rid, sf_id("001Tm0", n), {"Id": rid},
              "gone", destructive=True)  # fmt: skip


def account_update(n: int) -> Op:
    rid = sf_id("001Tm0", n)
    return Op(SF, "Account", Action.UPDATE, rid, rid, {"Id": rid, "Health_Score__c": 50}, "x")


def company_update(n: int) -> Op:
    gsid = f"1P02{n:032d}"
    return Op(GS, "Company", Action.UPDATE, gsid, sf_id("001Tm0", n),
              {"Gsid": gsid, "RiskFlags__gc": "NO_CSM"}, "x")  # fmt: skip


def cta_create(n: int) -> Op:
    gsid = f"1P02{n:032d}"
    return Op(GS, "CallToAction", Action.CREATE, None, sf_id("001Tm0", n),
              {"CompanyId": gsid, "reason": "Red Health", "type": "Risk"}, "red",
              previous={"flag": "RED_HEALTH"})  # fmt: skip


def store_ops(store: Store, ops: list[Op]) -> None:
    with store.session() as s:
        s.add_all(
            Operation(
                run_id=RUN,
                system=op.system,
                object=op.object,
                action=op.action,
                target_id=op.target_id,
                account_id=op.account_id,
                payload=op.payload,
                previous=op.previous,
                reason=op.reason,
                destructive=op.destructive,
                status=OpStatus.PLANNED,
            )
            for op in ops
        )


def push(store: Store, mapping: MappingFile, ports: FakePorts, **kw: Any) -> Any:
    return Pusher(store, ports, ports, mapping, run_id=RUN, **kw).push()  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("make", "n", "call", "batch"),
    [
        (team_create, 1, "sf.create", 200),
        (team_create, 200, "sf.create", 200),
        (team_create, 201, "sf.create", 200),
        (team_delete, 450, "sf.delete", 200),
        (account_update, 399, "sf.update", 200),
        (company_update, 50, "gs.update", 50),
        (company_update, 101, "gs.update", 50),
        (cta_create, 51, "gs.cta_create", 50),
    ],
)
def test_write_call_floor(
    store: Store, mapping: MappingFile, make: Any, n: int, call: str, batch: int
) -> None:
    """A kind with n operations costs ceil(n / batch) write calls, every one but the last full."""
    store_ops(store, [make(i) for i in range(n)])
    ports = FakePorts()
    stats = push(store, mapping, ports)
    sizes = [size for kind, _obj, size in ports.calls if kind == call]
    assert len(sizes) == math.ceil(n / batch)
    assert sizes[:-1] == [batch] * (len(sizes) - 1)
    assert sum(sizes) == n
    assert sum(stats.succeeded.values()) == n
    assert stats.failures == 0


def test_bulk_threshold_makes_one_large_call(store: Store, mapping: MappingFile) -> None:
    """Above the bulk threshold a kind goes in one call (Bulk 2.0 on the real client)."""
    store_ops(store, [account_update(i) for i in range(30)])
    ports = FakePorts()
    push(store, mapping, ports, bulk_threshold=10)
    assert [c for c in ports.calls if c[0] == "sf.update"] == [("sf.update", "Account", 30)]


def test_order_frees_team_slots_first(store: Store, mapping: MappingFile) -> None:
    """Deletes go before creates; Salesforce before Gainsight; CTA closes before opens."""
    store_ops(store, [cta_create(1), company_update(1), team_create(1), team_delete(1)])
    ports = FakePorts()
    push(store, mapping, ports)
    writes = [kind for kind, _obj, _n in ports.calls if kind != "gs.cta_list"]
    assert writes == ["sf.delete", "sf.create", "gs.update", "gs.cta_create"]


def test_outcomes_are_recorded_and_failures_quarantined(store: Store, mapping: MappingFile) -> None:
    """Each record's outcome lands on its operation; a refused one is quarantined with its
    reason, and resolved when a later push succeeds."""
    store_ops(store, [team_create(1), team_create(2)])
    refused_user = sf_id("005Tm0", 2)
    stats = push(store, mapping, FakePorts(refuse={refused_user}))
    assert stats.failures == 1
    with store.session() as s:
        statuses = sorted(op.status for op in s.scalars(select(Operation)))
        q = s.scalars(select(QuarantinedRecord)).one()
    assert statuses == ["done", "failed"]
    assert q.stage == "push"
    assert q.code == "INVALID_CROSS_REFERENCE_KEY"
    assert q.record_id.endswith(refused_user)
    assert q.resolved_at is None

    with store.session() as s:  # the next run plans it again and it goes through
        s.query(Operation).delete()
    store_ops(store, [team_create(2)])
    assert push(store, mapping, FakePorts()).failures == 0
    with store.session() as s:
        assert s.scalars(select(QuarantinedRecord)).one().resolved_at is not None


def test_open_cta_is_adopted_not_duplicated(store: Store, mapping: MappingFile) -> None:
    """A CTA create whose company already has an open CTA of that type and reason adopts it
    (one list call per batch, no create)."""
    store_ops(store, [cta_create(1), cta_create(2)])
    existing = {
        "Gsid": "CTA-EXISTING",
        "CompanyId": f"1P02{1:032d}",
        "TypeId__gr.Name": "Risk",
        "ReasonId__gr.Name": "Red Health",
        "IsClosed": False,
    }
    ports = FakePorts(open_ctas=[existing])
    stats = push(store, mapping, ports)
    assert stats.adopted == 1
    assert [c for c in ports.calls if c[0] == "gs.cta_create"] == [
        ("gs.cta_create", "CallToAction", 1)
    ]
    with store.session() as s:
        links = {link.cta_gsid: link.origin for link in s.scalars(select(CtaLink))}
    assert links["CTA-EXISTING"] == "adopted"
    assert "opened" in links.values()


def test_stop_between_batches(store: Store, mapping: MappingFile) -> None:
    """A stop request ends the push after the current batch; the rest stays planned."""
    store_ops(store, [team_create(i) for i in range(450)])
    ports = FakePorts()
    stats = push(store, mapping, ports, should_stop=lambda: len(ports.calls) >= 1)
    assert stats.interrupted
    assert ports.calls == [("sf.create", "AccountTeamMember", 200)]
    with store.session() as s:
        planned = s.scalars(select(Operation).where(Operation.status == "planned")).all()
    assert len(planned) == 250
