"""Write-through: after each successful write teamsync records what it wrote in its own copy
of the record, so a partial pull (a backfill of some objects or of a past window) right after
a run plans nothing for writes already made (DESIGN.md section 5, issue 11 item 1).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from emulators.runner import RunningEmulators
from sync.clock import utcnow
from sync.store import Store
from sync.store.models import RawRecord

RunFn = Callable[..., Any]


def _backfill(run: RunFn, objects: list[str] | None, **options: Any) -> Any:
    since = options.pop("since", utcnow() - timedelta(days=3650))
    return run(command="backfill", backfill_since=since, streams=objects, **options)


def test_backfills_right_after_a_run_plan_nothing_then_a_real_change_is_written(
    upstream: RunningEmulators, run: RunFn, store: Store
) -> None:
    first = run(allow_mass_change=True)
    assert first.exit_code == 0, first.stats
    writes = upstream.log.count(kind="write")

    for objects in (
        ["salesforce.Account", "salesforce.Opportunity"],
        ["gainsight.Company"],
        None,  # every object
    ):
        result = _backfill(run, objects)
        assert result.exit_code == 0, (objects, result.stats)
        assert result.stats.plan == {}, objects
    # A past window (nothing in it was touched by the run), as a dry run and for real.
    now = utcnow()
    for dry_run in (True, False):
        past = _backfill(
            run,
            None,
            since=now - timedelta(days=400),
            backfill_until=now - timedelta(days=200),
            dry_run=dry_run,
        )
        assert past.stats.plan == {}
    assert upstream.log.count(kind="write") == writes

    # The store's copy holds what was written (from the API's answer).
    ref = upstream.org.scenarios["score_50"]  # type: ignore[union-attr]
    with store.session() as s:
        raw = s.get(RawRecord, ("salesforce", "Account", ref.account_id))
        assert raw is not None
        assert raw.data["Health_Status__c"] == "Red"
        created = list(
            s.scalars(
                select(RawRecord).where(
                    RawRecord.object == "AccountTeamMember",
                    RawRecord.parent_id == ref.account_id,
                    RawRecord.is_deleted.is_(False),
                )
            )
        )
    live = set(upstream.salesforce.tables["AccountTeamMember"].find("AccountId", ref.account_id))
    assert {r.record_id for r in created} == live

    # A real change picked up by a backfill is written.
    upstream.gainsight.update("company", ref.company_gsid, {"CurrentScore": 90})
    upstream.log.reset()
    changed = _backfill(run, ["gainsight.Company"], since=now - timedelta(days=1))
    assert changed.exit_code == 0
    assert changed.stats.plan.get("salesforce.Account.update") == 1
    assert upstream.salesforce.get("Account", ref.account_id)["Health_Status__c"] == "Green"
    assert run().stats.plan == {}
