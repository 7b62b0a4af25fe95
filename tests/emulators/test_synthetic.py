"""The synthetic org: deterministic, complete in every category, with the scenario accounts."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connectors.sfid import to18
from emulators.synthetic import (
    BOUNDARY_SCORES,
    SCENARIO_KEYS,
    SyntheticOrg,
    generate,
)

NOW = 1_760_000_000_000  # 2025-10-09T08:53:20Z
TODAY = datetime.fromtimestamp(NOW / 1000, tz=UTC).date()
Rows = dict[str, list[dict[str, Any]]]
ROLES = (
    "Strategic Account Executive",
    "Account Executive",
    "Solutions Architect",
    "Customer Success Manager",
    "Renewal Manager",
    "Executive Sponsor",
    "Sales Manager",
)


@pytest.fixture(scope="module")
def small() -> tuple[SyntheticOrg, Rows]:
    org = generate(50, 7, NOW)
    return org, org.collect()


@pytest.fixture(scope="module")
def medium() -> tuple[SyntheticOrg, Rows]:
    org = generate(500, 11, NOW)
    return org, org.collect()


def _by_id(rows: list[dict[str, Any]], key: str = "Id") -> dict[str, dict[str, Any]]:
    return {r[key]: r for r in rows}


def _days(close: str) -> int:
    return (datetime.strptime(close, "%Y-%m-%d").date() - TODAY).days


def _next_renewal(rows: Rows, account_id: str) -> dict[str, Any] | None:
    renewals = [
        o
        for o in rows["Opportunity"]
        if o["AccountId"] == account_id
        and o["Type"] == "Renewal"
        and not o["IsClosed"]
        and not o["IsDeleted"]
    ]
    return min(renewals, key=lambda o: o["CloseDate"], default=None)


# -- determinism ---------------------------------------------------------------------------


def test_same_seed_gives_identical_rows() -> None:
    """Two generations with the same accounts, seed and now are row-for-row identical."""
    assert generate(60, 3, NOW).collect() == generate(60, 3, NOW).collect()


def test_different_seed_gives_different_rows() -> None:
    """Another seed changes the data (names, owners, scores), not just the Ids."""
    a = generate(60, 3, NOW).collect()
    b = generate(60, 4, NOW).collect()
    assert [r["Name"] for r in a["Account"]] != [r["Name"] for r in b["Account"]]
    assert [r["CurrentScore"] for r in a["company"]] != [r["CurrentScore"] for r in b["company"]]


def test_chunk_size_does_not_change_the_rows() -> None:
    """Rows depend only on (accounts, seed, now), not on how many accounts a chunk holds."""
    a = SyntheticOrg(90, 5, NOW, chunk_size=7).collect()
    b = SyntheticOrg(90, 5, NOW, chunk_size=1000).collect()
    assert a == b


def test_batches_are_lazy_and_in_load_order() -> None:
    """Users come first, then per chunk Account, Opportunity, ATM, company, CTA."""
    org = SyntheticOrg(25, 1, NOW, chunk_size=10)
    order = [(system, name) for system, name, _rows in org.batches()]
    assert order[:2] == [("salesforce", "User"), ("gainsight", "gsuser")]
    chunk = [
        ("salesforce", "Account"),
        ("salesforce", "Opportunity"),
        ("salesforce", "AccountTeamMember"),
        ("gainsight", "company"),
        ("gainsight", "calltoaction"),
    ]
    assert order[2:] == chunk * 3


def test_summary_counts_match_rows(small: tuple[SyntheticOrg, Rows]) -> None:
    """OrgSummary counts every object as produced and carries now_ms."""
    org, rows = small
    names = {"gsuser": "GsUser", "company": "Company", "calltoaction": "CallToAction"}
    assert org.summary.now_ms == NOW
    assert org.summary.counts == {names.get(k, k): len(v) for k, v in rows.items()}
    assert org.summary.counts["Account"] == 50


# -- users --------------------------------------------------------------------------------


def test_users_cover_every_role_active_and_inactive(small: tuple[SyntheticOrg, Rows]) -> None:
    """Each role has active users and at least one inactive; e-mails are lower case."""
    _org, rows = small
    users = rows["User"]
    for role in ROLES:
        of_role = [u for u in users if u["Title"] == role]
        assert any(u["IsActive"] for u in of_role), role
        assert any(not u["IsActive"] for u in of_role), role
    assert sum(u["Title"] == "Integration User" for u in users) == 1
    for u in users:
        assert u["Email"] == u["Email"].lower()
        assert u["Email"].endswith("@teamsync-demo.example")


def test_gainsight_users_mirror_salesforce_with_differences() -> None:
    """GsUsers: same people, some e-mails in another case, ~3% missing, some Gainsight-only."""
    # Users come first, so a large org's users cost nothing more than its first two batches.
    batches = generate(5000, 11, NOW).batches()
    rows = {name: r for _system, name, r in (next(batches), next(batches))}
    sf_people = [u for u in rows["User"] if u["Title"] != "Integration User"]
    sf_by_email = {u["Email"]: u for u in sf_people}
    gs = rows["gsuser"]
    matched = [g for g in gs if g["Email"].lower() in sf_by_email]
    other_case = [g for g in matched if g["Email"] != g["Email"].lower()]
    gs_only = [g for g in gs if g["Email"].lower() not in sf_by_email]
    missing = len(sf_people) - len(matched)
    assert 0.04 <= len(other_case) / len(matched) <= 0.18
    assert 1 <= missing <= 0.08 * len(sf_people)
    assert gs_only
    for g in matched:
        sf = sf_by_email[g["Email"].lower()]
        assert g["IsActiveUser"] == sf["IsActive"]
        assert g["Name"] == sf["Name"]
        assert g["SfdcUserId"] in (None, sf["Id"])
    with_sfdc = sum(g["SfdcUserId"] is not None for g in matched)
    assert 0.3 <= with_sfdc / len(matched) <= 0.7
    # Every CSM is in Gainsight: Company.Csm needs them.
    csm_emails = {u["Email"] for u in sf_people if u["Title"] == "Customer Success Manager"}
    assert csm_emails <= {g["Email"].lower() for g in gs}


# -- accounts and opportunities -------------------------------------------------------------


def test_account_proportions(medium: tuple[SyntheticOrg, Rows]) -> None:
    """Segments, customers, ARR cluster, inactive owners and deletions in the stated shares."""
    _org, rows = medium
    accounts = rows["Account"]
    n = len(accounts)
    segments = Counter(a["Sales_Segment__c"] for a in accounts)
    assert 0.10 <= segments["Enterprise"] / n <= 0.22
    assert 0.28 <= segments["Mid-Market"] / n <= 0.45
    assert 0.30 <= segments["SMB"] / n <= 0.48
    assert 0.05 <= segments[None] / n <= 0.15
    customers = [a for a in accounts if a["Type"] == "Customer - Direct"]
    prospects = [a for a in accounts if a["Type"] == "Prospect"]
    assert len(customers) + len(prospects) == n
    assert 0.62 <= len(customers) / n <= 0.80
    assert all(a["ARR__c"] and 5_000 <= a["ARR__c"] <= 2_000_000 for a in customers)
    assert all(a["ARR__c"] in (None, 0) for a in prospects)
    assert {49_999, 50_000, 50_001} <= {a["ARR__c"] for a in customers}
    users = _by_id(rows["User"])
    inactive_owned = sum(not users[a["OwnerId"]]["IsActive"] for a in accounts)
    assert 1 <= inactive_owned <= 0.07 * n
    assert 1 <= sum(a["IsDeleted"] for a in accounts) <= 0.02 * n


def test_owner_role_follows_segment(medium: tuple[SyntheticOrg, Rows]) -> None:
    """Enterprise accounts (by field or employee fallback) are owned by SAEs, others by AEs."""
    _org, rows = medium
    users = _by_id(rows["User"])
    for a in rows["Account"]:
        employees = a["NumberOfEmployees"]
        segment = a["Sales_Segment__c"] or (
            "Enterprise" if employees >= 2000 else "Mid-Market" if employees >= 100 else "SMB"
        )
        expected = "Strategic Account Executive" if segment == "Enterprise" else "Account Executive"
        assert users[a["OwnerId"]]["Title"] == expected, a["Name"]
        if a["Sales_Segment__c"] == "Enterprise":
            assert employees >= 2000
        elif a["Sales_Segment__c"] == "Mid-Market":
            assert 100 <= employees < 2000
        elif a["Sales_Segment__c"] == "SMB":
            assert employees < 100
    no_segment = {a["NumberOfEmployees"] for a in rows["Account"] if not a["Sales_Segment__c"]}
    assert {2000, 1999, 100, 99} <= no_segment


def test_health_fields_empty_except_a_few_stale(medium: tuple[SyntheticOrg, Rows]) -> None:
    """Health and risk fields start empty; the few stale Green values sit on red companies."""
    _org, rows = medium
    accounts = rows["Account"]
    stale = [a for a in accounts if a["Health_Status__c"] is not None]
    assert 1 <= len(stale) <= 0.05 * len(accounts)
    companies = {c["SfdcAccountId"]: c for c in rows["company"] if c["SfdcAccountId"]}
    for a in stale:
        company = companies.get(a["Id"]) or companies[a["Id"][:15]]
        assert a["Health_Status__c"] == "Green"
        assert company["CurrentScore"] <= 50
    assert sum(a["Risk_Flags__c"] is not None for a in accounts) <= 0.03 * len(accounts)


def test_opportunities_per_account(medium: tuple[SyntheticOrg, Rows]) -> None:
    """~3 opps an account; customers have Closed Won history and an open renewal."""
    _org, rows = medium
    opps = rows["Opportunity"]
    accounts = rows["Account"]
    assert 2.5 <= len(opps) / len(accounts) <= 3.6
    by_account: dict[str, list[dict[str, Any]]] = {}
    for o in opps:
        by_account.setdefault(o["AccountId"], []).append(o)
    users = _by_id(rows["User"])
    owner_renewals = rm_renewals = 0
    for a in accounts:
        mine = [o for o in by_account.get(a["Id"], []) if not o["IsDeleted"]]
        if a["IsDeleted"] or not a["Type"].startswith("Customer"):
            if not a["IsDeleted"]:
                assert not any(o["IsWon"] for o in mine), a["Name"]
            continue
        won = sorted((o for o in mine if o["IsWon"]), key=lambda o: o["CloseDate"])
        assert won, a["Name"]
        assert won[0]["Type"] == "New Business"
        assert all(o["Type"] in ("Upsell", "Renewal") for o in won[1:])
        assert all(_days(o["CloseDate"]) < 0 for o in won)
        renewal = _next_renewal(rows, a["Id"])
        assert renewal is not None, a["Name"]
        assert -10 <= _days(renewal["CloseDate"]) <= 400
        if renewal["OwnerId"] == a["OwnerId"]:
            owner_renewals += 1
        else:
            assert users[renewal["OwnerId"]]["Title"] == "Renewal Manager"
            rm_renewals += 1
    assert 0.10 <= owner_renewals / (owner_renewals + rm_renewals) <= 0.30
    stages = Counter(o["StageName"] for o in opps)
    assert stages["Closed Lost"] > 0
    deleted = sum(o["IsDeleted"] for o in opps)
    assert 0.003 <= deleted / len(opps) <= 0.03
    for o in opps:
        assert o["Amount"] is not None
        assert o["IsClosed"] == (o["StageName"] in ("Closed Won", "Closed Lost"))
        assert o["IsWon"] == (o["StageName"] == "Closed Won")


def test_some_customers_have_two_open_renewals(small: tuple[SyntheticOrg, Rows]) -> None:
    """A customer with two open renewals exists, and the earlier one is not loaded first."""
    _org, rows = small
    per_account = Counter(
        o["AccountId"]
        for o in rows["Opportunity"]
        if o["Type"] == "Renewal" and not o["IsClosed"] and not o["IsDeleted"]
    )
    doubles = [acc for acc, n in per_account.items() if n == 2]
    assert doubles
    renewals = [
        o
        for o in rows["Opportunity"]
        if o["AccountId"] == doubles[0] and o["Type"] == "Renewal" and not o["IsClosed"]
    ]
    assert renewals[0]["CloseDate"] > renewals[1]["CloseDate"]


def test_renewals_exactly_at_the_window_edges(small: tuple[SyntheticOrg, Rows]) -> None:
    """Open renewals close exactly 119, 120 and 121 days ahead on some accounts."""
    _org, rows = small
    offsets = {
        _days(o["CloseDate"])
        for o in rows["Opportunity"]
        if o["Type"] == "Renewal" and not o["IsClosed"]
    }
    assert {119, 120, 121} <= offsets


# -- team members ---------------------------------------------------------------------------


def test_at_most_one_team_row_per_account_and_user(medium: tuple[SyntheticOrg, Rows]) -> None:
    """Salesforce keeps one AccountTeamMember per (account, user); the generator does too."""
    _org, rows = medium
    pairs = Counter((m["AccountId"], m["UserId"]) for m in rows["AccountTeamMember"])
    assert max(pairs.values()) == 1


def test_team_rows_cover_every_kind(medium: tuple[SyntheticOrg, Rows]) -> None:
    """SA, Executive Sponsor, unmanaged, correct managed, stale managed and inactive rows."""
    _org, rows = medium
    members = rows["AccountTeamMember"]
    users = _by_id(rows["User"])
    accounts = _by_id(rows["Account"])
    roles = Counter(m["TeamMemberRole"] for m in members)
    for role in (
        "Solutions Architect",
        "Executive Sponsor",
        "Sales Manager",
        "Channel Manager",
        "Technical Sales",
        "Account Executive",
        "Strategic Account Executive",
        "Renewal Manager",
    ):
        assert roles[role] > 0, role
    owner_rows = [m for m in members if m["UserId"] == accounts[m["AccountId"]]["OwnerId"]]
    stale_ae = [
        m
        for m in members
        if m["TeamMemberRole"] == "Account Executive"
        and m["UserId"] != accounts[m["AccountId"]]["OwnerId"]
    ]
    assert len(owner_rows) >= 0.15 * len(accounts)
    assert stale_ae
    assert any(not users[m["UserId"]]["IsActive"] for m in members)
    levels = Counter(
        (m["AccountAccessLevel"], m["OpportunityAccessLevel"], m["CaseAccessLevel"])
        for m in members
    )
    assert levels.most_common(1)[0][0] == ("Edit", "Read", "Read")
    assert len(levels) > 1
    live = {a["Id"] for a in rows["Account"] if not a["IsDeleted"]}
    assert {m["AccountId"] for m in members} <= live


def test_solutions_architects_mostly_on_enterprise(medium: tuple[SyntheticOrg, Rows]) -> None:
    """SA rows sit on ~60% of Enterprise and ~15% of Mid-Market accounts."""
    _org, rows = medium
    sa_accounts = {
        m["AccountId"]
        for m in rows["AccountTeamMember"]
        if m["TeamMemberRole"] == "Solutions Architect"
    }
    random_accounts = [a for a in rows["Account"] if not a["Name"].startswith("Scenario: ")]
    live = [a for a in random_accounts if not a["IsDeleted"]]
    enterprise = [a for a in live if a["Sales_Segment__c"] == "Enterprise"]
    mid = [a for a in live if a["Sales_Segment__c"] == "Mid-Market"]
    assert 0.45 <= sum(a["Id"] in sa_accounts for a in enterprise) / len(enterprise) <= 0.75
    assert 0.05 <= sum(a["Id"] in sa_accounts for a in mid) / len(mid) <= 0.28


# -- Gainsight companies --------------------------------------------------------------------


def test_companies_link_by_18_and_15_character_ids(medium: tuple[SyntheticOrg, Rows]) -> None:
    """~92% of accounts linked, ~20% of links in the 15-character form, ~5% without company."""
    _org, rows = medium
    accounts = _by_id(rows["Account"])
    by15 = {k[:15]: k for k in accounts}
    links = [c["SfdcAccountId"] for c in rows["company"]]
    long_links = [x for x in links if x and x in accounts]
    short_links = [x for x in links if x and len(x) == 15 and x in by15]
    dangling = [x for x in links if x and x not in accounts and x not in by15]
    unlinked = [x for x in links if x is None]
    linked = len(long_links) + len(short_links)
    assert 0.85 <= linked / len(accounts) <= 0.97
    assert 0.10 <= len(short_links) / linked <= 0.30
    for short in short_links:
        assert to18(short) in accounts
    assert len(dangling) == 1
    assert unlinked
    linked_accounts = {x if len(x) == 18 else by15[x] for x in long_links + short_links}
    without = [a for a in accounts.values() if a["Id"] not in linked_accounts]
    assert 0.03 <= len(without) / len(accounts) <= 0.12
    assert any(accounts[a]["IsDeleted"] for a in linked_accounts)


def test_company_values_follow_the_account(medium: tuple[SyntheticOrg, Rows]) -> None:
    """Name = account name, Arr close to ARR__c, RenewalDate = next renewal at midnight UTC."""
    _org, rows = medium
    accounts = _by_id(rows["Account"])
    by15 = {k[:15]: k for k in accounts}
    checked = 0
    for c in rows["company"]:
        link = c["SfdcAccountId"]
        account = accounts.get(link) or accounts.get(by15.get(link or "", ""))
        if account is None or account["IsDeleted"]:
            continue
        assert c["Name"] == account["Name"]
        if account["ARR__c"]:
            assert c["Arr"] == pytest.approx(account["ARR__c"], rel=0.11)
        renewal = _next_renewal(rows, account["Id"])
        if account["Type"] == "Prospect":
            assert c["RenewalDate"] is None
        else:
            assert renewal is not None
            expected = datetime.strptime(renewal["CloseDate"], "%Y-%m-%d").replace(tzinfo=UTC)
            assert c["RenewalDate"] == int(expected.timestamp() * 1000)
        assert c["RiskFlags__gc"] is None
        checked += 1
    assert checked > 400


def test_scores_cover_every_band_and_boundary(medium: tuple[SyntheticOrg, Rows]) -> None:
    """Scores span Red/Yellow/Green with 0, 50, 51, 75, 76, 100 present and ~8% null."""
    _org, rows = medium
    scores = [c["CurrentScore"] for c in rows["company"]]
    assert set(BOUNDARY_SCORES) <= set(scores)
    nulls = sum(s is None for s in scores)
    assert 0.03 <= nulls / len(scores) <= 0.15
    bands = Counter("R" if s <= 50 else "Y" if s <= 75 else "G" for s in scores if s is not None)
    assert min(bands.values()) >= 0.1 * len(scores)


def test_trend_is_consistent_with_scores(medium: tuple[SyntheticOrg, Rows]) -> None:
    """Trend is Up / Down / Same as the scores say; drops of 15+ and rises both occur."""
    _org, rows = medium
    drops = rises = 0
    for c in rows["company"]:
        cur, prev, trend = c["CurrentScore"], c["PreviousScore"], c["Trend"]
        if cur is None or prev is None:
            assert trend is None
            continue
        assert trend == ("Up" if cur > prev else "Down" if cur < prev else "Same")
        drops += prev - cur >= 15
        rises += cur > prev
    assert drops >= 10
    assert rises >= 10


def test_csm_assignment_follows_qualification(medium: tuple[SyntheticOrg, Rows]) -> None:
    """~75% of qualifying customers and few others have a CSM; some CSMs are inactive."""
    _org, rows = medium
    accounts = _by_id(rows["Account"])
    gs_users = _by_id(rows["gsuser"], "Gsid")
    by15 = {k[:15]: k for k in accounts}
    csms = [gs_users[c["Csm"]] for c in rows["company"] if c["Csm"]]
    assert any(not u["IsActiveUser"] for u in csms)
    qualifying = other = qualifying_with = other_with = 0
    for c in rows["company"]:
        link = c["SfdcAccountId"] or ""
        account = accounts.get(link) or accounts.get(by15.get(link, ""))
        if account is None or account["Type"] != "Customer - Direct":
            continue
        has = c["Csm"] is not None
        if account["ARR__c"] >= 50_000:
            qualifying += 1
            qualifying_with += has
        else:
            other += 1
            other_with += has
    assert 0.62 <= qualifying_with / qualifying <= 0.88
    assert other_with / other <= 0.25


def test_team_lookups_and_ctas(medium: tuple[SyntheticOrg, Rows]) -> None:
    """~30% of companies carry team lookups; open Red Health, closed and other CTAs exist."""
    _org, rows = medium
    companies = rows["company"]
    with_team = [c for c in companies if c["AccountExecutive__gc"] or c["RenewalManager__gc"]]
    assert 0.18 <= len(with_team) / len(companies) <= 0.40
    gsids = {c["Gsid"]: c for c in companies}
    ctas = rows["calltoaction"]
    open_red = [
        t for t in ctas if t["reason"] == "Red Health" and t["type"] == "Risk" and not t["IsClosed"]
    ]
    assert open_red
    for t in open_red:
        company = gsids[t["CompanyId"]]
        assert company["CurrentScore"] <= 50
        assert t["OwnerId"] == company["Csm"]
    assert any(t["IsClosed"] for t in ctas)
    assert {(t["type"], t["reason"]) for t in ctas} - {("Risk", "Red Health")}


def test_small_org_has_every_category(small: tuple[SyntheticOrg, Rows]) -> None:
    """Even 50 accounts carry deleted rows, unlinked and dangling companies and all CTA kinds."""
    _org, rows = small
    assert any(a["IsDeleted"] for a in rows["Account"])
    live_accounts = {a["Id"] for a in rows["Account"] if not a["IsDeleted"]}
    assert any(o["IsDeleted"] and o["AccountId"] in live_accounts for o in rows["Opportunity"])
    assert any(c["SfdcAccountId"] is None for c in rows["company"])
    assert set(BOUNDARY_SCORES) <= {c["CurrentScore"] for c in rows["company"]}
    roles = {m["TeamMemberRole"] for m in rows["AccountTeamMember"]}
    assert {"Sales Manager", "Channel Manager", "Technical Sales", "Executive Sponsor"} <= roles
    ctas = rows["calltoaction"]
    assert any(t["reason"] == "Red Health" and not t["IsClosed"] for t in ctas)
    assert any(t["IsClosed"] for t in ctas)
    assert any(t["reason"] != "Red Health" for t in ctas)
    assert any(a["Health_Status__c"] == "Green" for a in rows["Account"])
    emails = {u["Email"] for u in rows["User"]}
    assert any(g["Email"].lower() not in emails for g in rows["gsuser"])


# -- stamps and integrity -------------------------------------------------------------------


def test_no_stamp_after_now_and_whole_seconds_in_salesforce(
    medium: tuple[SyntheticOrg, Rows],
) -> None:
    """Every stamp is in the past (within a year); Salesforce stamps are whole seconds."""
    _org, rows = medium
    year_ago = NOW - 366 * 86_400_000
    for name in ("User", "Account", "Opportunity", "AccountTeamMember"):
        for r in rows[name]:
            for stamp in ("CreatedDate", "LastModifiedDate", "SystemModstamp"):
                assert year_ago <= r[stamp] <= NOW, (name, stamp)
                assert r[stamp] % 1000 == 0
            assert r["CreatedDate"] <= r["SystemModstamp"]
    for name in ("gsuser", "company", "calltoaction"):
        for r in rows[name]:
            assert year_ago <= r["CreatedDate"] <= r["ModifiedDate"] <= NOW


def test_references_resolve(medium: tuple[SyntheticOrg, Rows]) -> None:
    """Every owner, member, CSM, lookup and CTA company points at a generated row."""
    _org, rows = medium
    users = _by_id(rows["User"])
    accounts = _by_id(rows["Account"])
    gs_users = _by_id(rows["gsuser"], "Gsid")
    companies = _by_id(rows["company"], "Gsid")
    for a in rows["Account"]:
        assert a["OwnerId"] in users
    for o in rows["Opportunity"]:
        assert o["AccountId"] in accounts
        assert o["OwnerId"] in users
    for m in rows["AccountTeamMember"]:
        assert m["AccountId"] in accounts
        assert m["UserId"] in users
    for c in rows["company"]:
        for f in ("Csm", "AccountExecutive__gc", "SolutionsArchitect__gc", "RenewalManager__gc"):
            assert c[f] is None or c[f] in gs_users
    for t in rows["calltoaction"]:
        assert t["CompanyId"] in companies
        assert t["OwnerId"] in gs_users


# -- scenarios ------------------------------------------------------------------------------


def test_no_scenarios_below_thirty_accounts() -> None:
    """Tiny orgs are purely random: no scenario accounts."""
    org = generate(29, 7, NOW)
    rows = org.collect()
    assert not org.summary.scenarios
    assert not any(a["Name"].startswith("Scenario: ") for a in rows["Account"])


def test_every_scenario_is_present_and_first(small: tuple[SyntheticOrg, Rows]) -> None:
    """All scenario keys are in the summary, their accounts come first, names say so."""
    org, rows = small
    assert set(org.summary.scenarios) == set(SCENARIO_KEYS)
    accounts = rows["Account"]
    for i, key in enumerate(SCENARIO_KEYS):
        ref = org.summary.scenarios[key]
        assert accounts[i]["Id"] == ref.account_id
        assert accounts[i]["Name"] == ref.name
        assert ref.name.startswith("Scenario: ")
        assert ref.intent


def _scenario(
    small: tuple[SyntheticOrg, Rows], key: str
) -> tuple[Any, dict[str, Any], dict[str, Any] | None, Rows]:
    org, rows = small
    ref = org.summary.scenarios[key]
    account = _by_id(rows["Account"])[ref.account_id]
    company = _by_id(rows["company"], "Gsid").get(ref.company_gsid) if ref.company_gsid else None
    return ref, account, company, rows


@pytest.mark.parametrize(
    ("key", "score"),
    [("score_50", 50), ("score_51", 51), ("score_75", 75), ("score_76", 76), ("score_null", None)],
)
def test_score_scenarios(small: tuple[SyntheticOrg, Rows], key: str, score: int | None) -> None:
    """The score scenarios carry exactly their boundary score on a clean customer."""
    ref, account, company, _rows = _scenario(small, key)
    assert company is not None
    assert company["CurrentScore"] == score
    assert company["SfdcAccountId"] == account["Id"]
    assert account["Type"] == "Customer - Direct"
    assert ref.details["current_score"] == score


@pytest.mark.parametrize(("key", "arr"), [("arr_50000", 50_000), ("arr_49999", 49_999)])
def test_arr_threshold_scenarios(small: tuple[SyntheticOrg, Rows], key: str, arr: int) -> None:
    """Enterprise customers exactly at and just below the CSM threshold, without a CSM."""
    _ref, account, company, rows = _scenario(small, key)
    assert company is not None
    assert account["Sales_Segment__c"] == "Enterprise"
    assert account["Type"] == "Customer - Direct"
    assert account["ARR__c"] == arr
    assert company["Csm"] is None
    owner = _by_id(rows["User"])[account["OwnerId"]]
    assert owner["Title"] == "Strategic Account Executive"


@pytest.mark.parametrize(("key", "employees"), [("no_segment_2000", 2000), ("no_segment_99", 99)])
def test_no_segment_scenarios(small: tuple[SyntheticOrg, Rows], key: str, employees: int) -> None:
    """Accounts without a segment sit on the employee fallback thresholds."""
    _ref, account, _company, _rows = _scenario(small, key)
    assert account["Sales_Segment__c"] is None
    assert account["NumberOfEmployees"] == employees


def test_link_by_15_char_scenario(small: tuple[SyntheticOrg, Rows]) -> None:
    """The company is linked by the 15-character form of the Account Id."""
    _ref, account, company, _rows = _scenario(small, "link_15_char")
    assert company is not None
    assert company["SfdcAccountId"] == account["Id"][:15]


def test_csm_email_case_scenario(small: tuple[SyntheticOrg, Rows]) -> None:
    """The CSM's Gainsight e-mail differs only in case from the Salesforce one."""
    ref, _account, company, rows = _scenario(small, "csm_email_case")
    assert company is not None
    gs_user = _by_id(rows["gsuser"], "Gsid")[company["Csm"]]
    sf_user = _by_id(rows["User"])[ref.users["csm"]]
    assert gs_user["Email"] != sf_user["Email"]
    assert gs_user["Email"].lower() == sf_user["Email"]
    assert ref.emails["csm_gainsight"] == gs_user["Email"]
    assert sf_user["IsActive"]
    assert gs_user["IsActiveUser"]


def test_team_scenarios(small: tuple[SyntheticOrg, Rows]) -> None:
    """Inactive SA, human SA row for the AE, Sales Manager row, stale AE row, overstaffed."""

    def team(key: str) -> tuple[Any, dict[str, Any], dict[str, dict[str, Any]]]:
        ref, account, _company, rows = _scenario(small, key)
        members = {
            m["UserId"]: m for m in rows["AccountTeamMember"] if m["AccountId"] == account["Id"]
        }
        return ref, account, members

    users = _by_id(small[1]["User"])
    ref, _account, members = team("inactive_sa_member")
    assert members[ref.users["sa"]]["TeamMemberRole"] == "Solutions Architect"
    assert not users[ref.users["sa"]]["IsActive"]

    ref, account, members = team("human_sa_row_for_ae")
    assert list(members) == [account["OwnerId"]]
    assert members[account["OwnerId"]]["TeamMemberRole"] == "Solutions Architect"
    assert users[account["OwnerId"]]["Title"] == "Account Executive"

    ref, _account, members = team("unmanaged_sales_manager")
    assert members[ref.users["sales_manager"]]["TeamMemberRole"] == "Sales Manager"

    ref, account, members = team("stale_ae_row")
    former = ref.users["former_owner"]
    assert former != account["OwnerId"]
    assert members[former]["TeamMemberRole"] == "Account Executive"

    ref, account, members = team("overstaffed")
    roles = sorted(m["TeamMemberRole"] for m in members.values())
    assert roles == [
        "Customer Success Manager",
        "Solutions Architect",
        "Strategic Account Executive",
    ]
    assert account["Sales_Segment__c"] == "SMB"
    assert account["ARR__c"] < 50_000


def test_ownership_scenarios(small: tuple[SyntheticOrg, Rows]) -> None:
    """AE owning the renewal, inactive owner, and the account without a company."""
    _ref, account, _company, rows = _scenario(small, "ae_owns_renewal")
    renewal = _next_renewal(rows, account["Id"])
    assert renewal is not None
    assert renewal["OwnerId"] == account["OwnerId"]

    _ref, account, _company, rows = _scenario(small, "inactive_owner")
    assert not _by_id(rows["User"])[account["OwnerId"]]["IsActive"]

    ref, account, company, rows = _scenario(small, "no_company")
    assert ref.company_gsid is None
    assert company is None
    links = {c["SfdcAccountId"] for c in rows["company"]}
    assert account["Id"] not in links
    assert account["Id"][:15] not in links


@pytest.mark.parametrize("days", [119, 120, 121])
def test_renewal_window_scenarios(small: tuple[SyntheticOrg, Rows], days: int) -> None:
    """Renewals exactly 119 / 120 / 121 days ahead, with a Yellow score."""
    ref, account, company, rows = _scenario(small, f"renewal_{days}")
    renewal = _next_renewal(rows, account["Id"])
    assert renewal is not None
    assert _days(renewal["CloseDate"]) == days
    assert ref.details["renewal_close_date"] == (TODAY + timedelta(days=days)).isoformat()
    assert company is not None
    assert 51 <= company["CurrentScore"] <= 75


def test_lifecycle_scenarios(small: tuple[SyntheticOrg, Rows]) -> None:
    """Prospect with only open opps; newly won qualifying customer without CSM; health drop."""
    _ref, account, _company, rows = _scenario(small, "prospect_open_opps")
    opps = [o for o in rows["Opportunity"] if o["AccountId"] == account["Id"]]
    assert account["Type"] == "Prospect"
    assert opps
    assert all(not o["IsClosed"] and o["Type"] == "New Business" for o in opps)

    _ref, account, company, rows = _scenario(small, "handoff_due")
    won = [o for o in rows["Opportunity"] if o["AccountId"] == account["Id"] and o["IsWon"]]
    assert [_days(o["CloseDate"]) for o in won] == [-10]
    assert account["ARR__c"] >= 50_000
    assert company is not None
    assert company["Csm"] is None

    _ref, _account, company, _rows = _scenario(small, "health_drop")
    assert company is not None
    assert (company["PreviousScore"], company["CurrentScore"], company["Trend"]) == (80, 60, "Down")
