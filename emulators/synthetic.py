"""A deterministic synthetic org: Salesforce users, accounts, opportunities and account teams,
and the matching Gainsight users, companies and CTAs, at any size.

    org = generate(accounts=500, seed=7, now_ms=clock.now_ms())
    for system, object_name, rows in org.batches():   # lazily, a chunk of accounts at a time
        ...
    org.summary                                        # counts and scenario refs, once exhausted

    summary = seed_emulators(sf, gs, accounts=500, seed=7)   # loads both emulators via load()

The same ``(accounts, seed, now_ms)`` always gives the same rows: all randomness comes from one
seeded RNG consumed in a fixed order, and Ids come from the id source (the emulators' tables, or
local factories with the same key prefixes) in insertion order.  Rows are produced one chunk of
accounts at a time, so 100,000 accounts never exist as rows outside the emulators' tables.

What the org contains (roughly, per account; every category appears even for 50 accounts):

* Users: Strategic Account Executives, Account Executives, Solutions Architects, Customer Success
  Managers, Renewal Managers, Executive Sponsors and Sales Managers (Title = role), ~6% inactive
  and at least one inactive per role, plus one integration user.  ``ManagerId``: a Sales
  Manager for SAEs, AEs and RMs, a CSM Manager (own RNG, last Ids, always active) for CSMs.
  Salesforce e-mails are ``first.last{n}@teamsync-demo.example``.  Gainsight has the same
  people, ~10% with the e-mail in another case, ~3% missing (never a CSM), a few Gainsight-only
  users, ``SfdcUserId`` on ~half.
* Accounts: segment Enterprise 15% / Mid-Market 35% / SMB 40% / none 10% (employee counts around
  the fallback thresholds 2,000 / 1,999 / 100 / 99); ~70% customers with ``ARR__c`` log-uniform
  5,000-2,000,000 and a cluster at 49,999 / 50,000 / 50,001; owner an SAE (Enterprise by field or
  fallback) or an AE, ~3% an inactive user; ~1% stale health values; ~0.5% deleted.
* Opportunities (~3 per account): Closed Won history, one open Renewal (close -10..+400 days,
  owned by a Renewal Manager or ~20% by the account owner), some Closed Lost and open Upsells, a
  few second open renewals, ~1% deleted (the deleted ones are never the real next renewal).
* AccountTeamMembers: SA / Executive Sponsor rows, unmanaged roles, correct managed rows on ~40%,
  stale managed rows on ~5%, inactive members on a few; at most one row per (account, user).
* Companies: ~92% linked (18-char Id, 15-char for ~20%), ~5% missing, the rest unlinked; one
  linked to a deleted account, one to an Id that does not exist; scores over all bands with the
  boundary values 0, 50, 51, 75, 76, 100, ~8% null; team lookups on ~30% (some stale).
* CTAs: open Risk / "Red Health" CTAs on some red companies, closed ones, and other types.

Scenario accounts (created first whenever ``accounts >= 30``; names start with "Scenario: "; all
are clean Mid-Market customers - ARR 120,000, active AE owner, active CSM, renewal in 200 days
owned by a Renewal Manager, score 85, no team rows - except for what the scenario changes):

=========================  =========================================================================
key                        intent
=========================  =========================================================================
score_50                   CurrentScore 50: the top of the Red band -> RED_HEALTH
score_51                   CurrentScore 51: the bottom of the Yellow band
score_75                   CurrentScore 75: the top of the Yellow band
score_76                   CurrentScore 76: the bottom of the Green band
score_null                 CurrentScore null: health Unknown, no band flags
arr_50000                  Enterprise customer, ARR exactly 50,000, no CSM: qualifies -> OVERDUE_CSM
arr_49999                  Enterprise customer, ARR 49,999, no CSM: not qualifying, no CSM needed
no_segment_2000            no Sales_Segment__c, 2,000 employees: Enterprise by fallback (SAE owner)
no_segment_99              no Sales_Segment__c, 99 employees: SMB by fallback (ARR 20,000, no CSM)
link_15_char               Company.SfdcAccountId holds the 15-character Account Id
csm_email_case             the CSM's e-mail differs in case between Salesforce and Gainsight
inactive_sa_member         Enterprise account whose Solutions Architect row is an inactive user
no_company                 customer without a Gainsight company (no CSM source, no score)
human_sa_row_for_ae        the owning AE already has a human-added "Solutions Architect" row: left
                           alone, and the AE role counts as present
ae_owns_renewal            the account owner (AE) also owns the open renewal: one row, role AE
renewal_119                renewal in 119 days, Yellow score 60: in the window -> RENEWAL_AT_RISK
renewal_120                renewal in 120 days, Yellow score 60: the window's edge (inside)
renewal_121                renewal in 121 days, Yellow score 60: outside the window
prospect_open_opps         prospect with two open New Business opportunities and no Closed Won
handoff_due                first Closed Won 10 days ago, ARR 150,000, no CSM -> HANDOFF_DUE
                           (a Handoff CTA; the CSM is not overdue before 14 days)
overstaffed                SMB, ARR 20,000, carries SAE + SA + CSM rows -> OVERSTAFFED
health_drop                PreviousScore 80 -> CurrentScore 60 (Trend Down): the previous score
                           is undated, so no HEALTH_DROP until teamsync's own history dates one
unmanaged_sales_manager    a human-added "Sales Manager" row that must never be touched
stale_ae_row               an "Account Executive" row for a former owner (not the current owner)
inactive_owner             owned by an inactive AE: MISSING_AE (the reason, not INACTIVE_MEMBER)
=========================  =========================================================================
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from emulators.gainsight.schema import COMPANY, CTA, GSUSER
from emulators.salesforce.schema import (
    ACCOUNT,
    ACCOUNT_TEAM_MEMBER,
    OPPORTUNITY,
    OPPORTUNITY_STAGES,
    USER,
)
from emulators.sfid import to18
from emulators.store import GsidFactory, SalesforceIdFactory

if TYPE_CHECKING:
    from emulators.gainsight import GainsightEmulator
    from emulators.salesforce import SalesforceEmulator

SALESFORCE = "salesforce"
GAINSIGHT = "gainsight"

# Object names as the emulators' ``tables`` / ``load()`` know them.
SF_USER, SF_ACCOUNT, SF_OPPORTUNITY, SF_ATM = "User", "Account", "Opportunity", "AccountTeamMember"
GS_USER, GS_COMPANY, GS_CTA = "gsuser", "company", "calltoaction"

# The display names used in OrgSummary.counts.
COUNT_NAMES: dict[tuple[str, str], str] = {
    (SALESFORCE, SF_USER): "User",
    (SALESFORCE, SF_ACCOUNT): "Account",
    (SALESFORCE, SF_OPPORTUNITY): "Opportunity",
    (SALESFORCE, SF_ATM): "AccountTeamMember",
    (GAINSIGHT, GS_USER): "GsUser",
    (GAINSIGHT, GS_COMPANY): "Company",
    (GAINSIGHT, GS_CTA): "CallToAction",
}

EMAIL_DOMAIN = "teamsync-demo.example"
INTEGRATION_EMAIL = f"teamsync.integration@{EMAIL_DOMAIN}"
# The Salesforce emulator's running user (it stamps CreatedById with it); the org's User row for
# it is generated with this Id so that every CreatedById / LastModifiedById resolves.
INTEGRATION_USER_ID = to18("005Tm0000000000")
CSM_THRESHOLD = 50_000.0
SCENARIO_MIN_ACCOUNTS = 30
BOUNDARY_SCORES = (0, 50, 51, 75, 76, 100)
FALLBACK_EMPLOYEES = (2000, 1999, 100, 99)

SAE = "Strategic Account Executive"
AE = "Account Executive"
SA = "Solutions Architect"
CSM = "Customer Success Manager"
RM = "Renewal Manager"
EXEC = "Executive Sponsor"
SALES_MANAGER = "Sales Manager"
CSM_MANAGER = "CSM Manager"
UNMANAGED_ROLES = ("Sales Manager", "Channel Manager", "Technical Sales")

DAY_MS = 86_400_000
YEAR_MS = 365 * DAY_MS

# Access levels (Account, Opportunity, Case) for team rows: the default and a few others people use.
STANDARD_ACCESS = ("Edit", "Read", "Read")
OTHER_ACCESS = (("Read", "Read", "None"), ("Edit", "Edit", "Read"), ("Read", "None", "None"))
OPEN_STAGES = (
    "Prospecting",
    "Qualification",
    "Needs Analysis",
    "Proposal/Price Quote",
    "Negotiation/Review",
)
# Stage -> (IsClosed, IsWon, Probability, ForecastCategoryName), as the emulator derives them.
STAGES = OPPORTUNITY_STAGES


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_FIRST = _words(
    "Ada Alan Alex Amara Ana Arjun Ben Bianca Carlos Chen Chloe Dana David Diego Elena Emma Farah "
    "Felix Grace Hana Hugo Ines Isaac Ivan Jane Jonas Julia Kai Kenji Lara Leo Lina Luca Maya Mei "
    "Mila Nadia Nina Noah Omar Oscar Paula Priya Quinn Rafael Rosa Sam Sara Sofia Tariq Tom Uma "
    "Vera Victor Wen Yara Yusuf Zoe"
)
_LAST = _words(
    "Abbott Adams Ahmed Alvarez Baker Becker Bell Brooks Chen Clark Costa Cruz Diaz Doe Dubois "
    "Evans Fischer Garcia Gomez Gupta Hall Hansen Ito Jensen Khan Kim Kowalski Lee Lopez Martin "
    "Meyer Moreau Murphy Nagy Nguyen Novak Okafor Olsen Patel Perez Quinn Reyes Rossi Sato Schmidt "
    "Silva Singh Smith Tanaka Taylor Usman Vargas Wagner Walsh Wang Weber Young Zhang"
)
_ADJ = _words(
    "Amber Arctic Atlas Blue Bright Cedar Clear Coastal Copper Crimson Delta Eastern Emerald "
    "Granite Harbor Indigo Iron Lunar Maple Meridian Noble Northern Orbit Pacific Pine Prairie "
    "Quantum Redwood River Silver Solar Summit Swift Terra Vertex Vivid Western Willow Zenith"
)
_NOUN = _words(
    "Analytics Bank Biotech Cloud Dynamics Energy Foods Freight Games Health Insurance Labs "
    "Logistics Media Metals Motors Networks Pharma Robotics Security Software Telecom Textiles "
    "Travel Ventures"
)
_SUFFIX = ("Inc", "LLC", "Group", "GmbH", "Ltd", "Corp", "SA", "Holdings", "Partners", "Co")
_INDUSTRIES = (
    "Technology",
    "Finance",
    "Healthcare",
    "Manufacturing",
    "Retail",
    "Education",
    "Media",
    "Energy",
    "Transportation",
    "Consulting",
)

IdSource = Callable[[str, str], str]
"""``ids(system, object_name) -> new Id``: the emulators' table factories, or local ones."""

Batch = tuple[str, str, list[dict[str, Any]]]
"""``(system, object_name, rows)`` ready for ``emulator.load(object_name, rows)``."""


# -- public result types ---------------------------------------------------------------------


@dataclass
class ScenarioRef:
    """Where a fixed edge case landed, for tests to look at."""

    key: str
    name: str  # the account name ("Scenario: ...")
    intent: str
    account_id: str | None = None
    company_gsid: str | None = None
    users: dict[str, str] = field(default_factory=dict)  # label -> Salesforce User Id
    gs_users: dict[str, str] = field(default_factory=dict)  # label -> GsUser Gsid
    emails: dict[str, str] = field(default_factory=dict)  # label -> e-mail as stored
    details: dict[str, Any] = field(default_factory=dict)  # score, ARR, close date ...


@dataclass
class OrgSummary:
    """What was generated: rows per object, the "now" it was generated for, the scenarios."""

    accounts: int
    seed: int
    now_ms: int
    counts: dict[str, int] = field(default_factory=dict)
    scenarios: dict[str, ScenarioRef] = field(default_factory=dict)
    integration_user_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- internal plans (one chunk of accounts at a time) -----------------------------------------


@dataclass(eq=False)
class _User:
    n: int
    first: str
    last: str
    role: str
    active: bool
    in_gs: bool = True
    gs_case: bool = False  # Gainsight holds the e-mail in another case
    gs_sfdc_id: bool = False  # Gainsight carries SfdcUserId
    in_sf: bool = True
    sf_id: str = ""
    gsid: str | None = None
    manager: _User | None = None

    @property
    def email(self) -> str:
        return f"{self.first}.{self.last}{self.n}@{EMAIL_DOMAIN}".lower()

    @property
    def gs_email(self) -> str:
        if not self.gs_case:
            return self.email
        return f"{self.first.capitalize()}.{self.last.capitalize()}{self.n}@Teamsync-Demo.example"

    @property
    def name(self) -> str:
        return f"{self.first} {self.last}"


@dataclass(eq=False)
class _Opp:
    type: str
    stage: str
    close: int  # days from today
    amount: float | None
    owner: _User
    created_ms: int
    modified_ms: int
    deleted: bool = False
    label: str = ""  # e.g. "next_renewal" for scenario refs


@dataclass(eq=False)
class _Member:
    user: _User
    role: str
    access: tuple[str, str, str]
    created_ms: int
    modified_ms: int


@dataclass(eq=False)
class _Cta:
    name: str
    type: str
    reason: str
    status: str
    priority: str
    owner: _User | None
    due: int  # days from today
    created_ms: int
    modified_ms: int
    closed: bool = False


@dataclass(eq=False)
class _Company:
    link: str  # "18" | "15" | "none"
    arr: float | None
    csm: _User | None
    current: int | None
    previous: int | None
    created_ms: int
    modified_ms: int
    team: dict[str, _User] = field(default_factory=dict)  # Company lookup field -> user
    ctas: list[_Cta] = field(default_factory=list)


@dataclass(eq=False)
class _Account:
    index: int
    name: str
    segment: str | None
    employees: int
    customer: bool
    arr: float | None
    owner: _User
    industry: str
    created_ms: int
    modified_ms: int
    deleted: bool = False
    health_score: float | None = None
    health_status: str | None = None
    risk_flags: str | None = None
    opps: list[_Opp] = field(default_factory=list)
    members: list[_Member] = field(default_factory=list)
    company: _Company | None = None
    scenario: str | None = None
    intent: str = ""
    users: dict[str, _User] = field(default_factory=dict)  # scenario labels
    details: dict[str, Any] = field(default_factory=dict)

    def add_member(
        self, user: _User, role: str, access: tuple[str, str, str], stamps: tuple[int, int]
    ) -> bool:
        """Add a team row unless the user already has one (one row per account and user)."""
        if any(m.user is user for m in self.members):
            return False
        self.members.append(_Member(user, role, access, *stamps))
        return True

    def next_renewal(self) -> _Opp | None:
        open_renewals = [
            o for o in self.opps if o.type == "Renewal" and not o.deleted and not STAGES[o.stage][0]
        ]
        return min(open_renewals, key=lambda o: o.close, default=None)

    def first_won(self) -> _Opp | None:
        won = [o for o in self.opps if o.stage == "Closed Won" and not o.deleted]
        return min(won, key=lambda o: o.close, default=None)


class _LocalIds:
    """Id factories with the emulators' key prefixes, for generating without emulators."""

    def __init__(self) -> None:
        self._factories: dict[tuple[str, str], Callable[[], str]] = {
            (SALESFORCE, SF_USER): SalesforceIdFactory(USER.key_prefix),
            (SALESFORCE, SF_ACCOUNT): SalesforceIdFactory(ACCOUNT.key_prefix),
            (SALESFORCE, SF_OPPORTUNITY): SalesforceIdFactory(OPPORTUNITY.key_prefix),
            (SALESFORCE, SF_ATM): SalesforceIdFactory(ACCOUNT_TEAM_MEMBER.key_prefix),
            (GAINSIGHT, GS_USER): GsidFactory(GSUSER.key_prefix),
            (GAINSIGHT, GS_COMPANY): GsidFactory(COMPANY.key_prefix),
            (GAINSIGHT, GS_CTA): GsidFactory(CTA.key_prefix),
        }

    def __call__(self, system: str, object_name: str) -> str:
        return self._factories[(system, object_name)]()


# -- the generator ---------------------------------------------------------------------------


def generate(accounts: int, seed: int, now_ms: int) -> SyntheticOrg:
    """A lazily generated org of ``accounts`` accounts; see :class:`SyntheticOrg`."""
    return SyntheticOrg(accounts, seed, now_ms)


class SyntheticOrg:
    """Deterministic org description; :meth:`batches` produces the rows."""

    def __init__(
        self,
        accounts: int,
        seed: int,
        now_ms: int,
        *,
        chunk_size: int = 1000,
        integration_user_id: str = INTEGRATION_USER_ID,
        integration_username: str = INTEGRATION_EMAIL,
    ) -> None:
        if accounts < 0:
            raise ValueError("accounts must be >= 0")
        self.accounts = accounts
        self.seed = seed
        self.now_ms = int(now_ms)
        self.chunk_size = max(1, chunk_size)
        self.integration_user_id = integration_user_id
        self.integration_username = integration_username
        self.today = datetime.fromtimestamp(self.now_ms / 1000, tz=UTC).date()
        self.summary = OrgSummary(accounts, seed, self.now_ms)

    # -- public --------------------------------------------------------------------------
    def batches(self, ids: IdSource | None = None) -> Iterator[Batch]:
        """Yield ``(system, object_name, rows)`` chunks in the fixed load order.

        Users first (Salesforce, then Gainsight), then for each chunk of accounts: Account,
        Opportunity, AccountTeamMember, company, calltoaction.  ``self.summary`` is rebuilt on
        every call and is complete when the iterator is exhausted.
        """
        run = _Run(self, ids or _LocalIds())
        yield from run.batches()

    def collect(self) -> dict[str, list[dict[str, Any]]]:
        """Every row by object name (local Ids) - for tests on small orgs only."""
        out: dict[str, list[dict[str, Any]]] = {}
        for _system, object_name, rows in self.batches():
            out.setdefault(object_name, []).extend(rows)
        return out


class _Run:
    """One pass over the org: holds the RNG, the users and the running summary."""

    def __init__(self, org: SyntheticOrg, ids: IdSource) -> None:
        self.org = org
        self.ids = ids
        self.rng = random.Random(f"teamsync-synthetic:{org.seed}")
        self.now = org.now_ms
        self.today = org.today
        self._dates: dict[int, str] = {}
        self._once: set[str] = set()
        self.summary = OrgSummary(org.accounts, org.seed, org.now_ms)
        self.summary.counts = dict.fromkeys(COUNT_NAMES.values(), 0)
        org.summary = self.summary
        self.pools: dict[str, list[_User]] = {}
        self.active: dict[str, list[_User]] = {}
        self.inactive: dict[str, list[_User]] = {}
        self.integration: _User | None = None
        self.deleted_with_company = 0

    # -- helpers -------------------------------------------------------------------------
    def first(self, key: str) -> bool:
        """True the first time a category is asked for: forces every category into small orgs."""
        if key in self._once:
            return False
        self._once.add(key)
        return True

    def day(self, offset: int) -> str:
        """'YYYY-MM-DD' for today + offset days (cached: the strings are shared by many rows)."""
        text = self._dates.get(offset)
        if text is None:
            text = (self.today + timedelta(days=offset)).isoformat()
            self._dates[offset] = text
        return text

    def midnight_ms(self, offset: int) -> int:
        d = self.today + timedelta(days=offset)
        return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp() * 1000)

    def stamps(
        self, *, oldest_ms: int = YEAR_MS, newest_ms: int = 60_000, whole_seconds: bool = True
    ) -> tuple[int, int]:
        """(created, modified) between ``oldest_ms`` and ``newest_ms`` ago, modified >= created."""
        r = self.rng
        created = self.now - r.randint(newest_ms, max(newest_ms, oldest_ms))
        modified = (
            r.randint(created, self.now - newest_ms) if created < self.now - newest_ms else created
        )
        if whole_seconds:
            created -= created % 1000
            modified -= modified % 1000
        return created, max(created, modified)

    def gs_stamps(self) -> tuple[int, int]:
        return self.stamps(whole_seconds=False)

    def pick(self, role: str, *, active: bool = True) -> _User:
        pool = self.active[role] if active else self.inactive[role]
        return self.rng.choice(pool)

    def pick_other(self, role: str, *exclude: _User) -> _User | None:
        """An active user of the role who is none of ``exclude``, or None if none turns up."""
        for _ in range(20):
            user = self.pick(role)
            if all(user is not e for e in exclude):
                return user
        return None

    def add_other(
        self, plan: _Account, source: str, role: str, access: tuple[str, str, str]
    ) -> _User | None:
        """Add a row for an active user of ``source`` who has no row on the account yet."""
        user = self.pick_other(source, *(m.user for m in plan.members))
        if user is not None:
            plan.add_member(user, role, access, self.stamps())
        return user

    # -- the pass ------------------------------------------------------------------------
    def batches(self) -> Iterator[Batch]:
        yield from self._users()
        n = self.org.accounts
        size = self.org.chunk_size
        for start in range(0, n, size):
            plans = [self._account(i) for i in range(start, min(n, start + size))]
            last = start + size >= n
            yield from self._emit(plans, last=last)

    def _count(self, system: str, object_name: str, rows: list[dict[str, Any]]) -> Batch:
        key = COUNT_NAMES[(system, object_name)]
        self.summary.counts[key] = self.summary.counts.get(key, 0) + len(rows)
        return system, object_name, rows

    # -- users ---------------------------------------------------------------------------
    def _users(self) -> Iterator[Batch]:
        r = self.rng
        n_accounts = max(1, self.org.accounts)
        counts = {
            EXEC: max(3, n_accounts // 400),
            SALES_MANAGER: max(3, n_accounts // 400),
            SAE: max(3, n_accounts // 130),
            AE: max(4, n_accounts // 60),
            SA: max(3, n_accounts // 120),
            CSM: max(4, n_accounts // 50),
            RM: max(3, n_accounts // 150),
        }
        users: list[_User] = []
        number = 0
        for role, count in counts.items():
            pool: list[_User] = []
            for i in range(count):
                number += 1
                # The first two of each role are always active (the first also in Gainsight with
                # the same e-mail case: scenarios rely on a clean one); the last is inactive.
                active = i < 2 or (i != count - 1 and r.random() >= 0.06)
                user = _User(number, r.choice(_FIRST), r.choice(_LAST), role, active)
                if i > 0:
                    user.in_gs = role == CSM or r.random() >= 0.03
                    user.gs_case = r.random() < 0.10
                user.gs_sfdc_id = r.random() < 0.5
                pool.append(user)
            # Forced so that small orgs have each case: a CSM with another e-mail case (the
            # csm_email_case scenario uses it) and a non-CSM missing in Gainsight.
            if role == CSM:
                pool[1].gs_case = True
            if role == AE and all(u.in_gs for u in pool):
                pool[1].in_gs = False
            self.pools[role] = pool
            self.active[role] = [u for u in pool if u.active]
            self.inactive[role] = [u for u in pool if not u.active]
            users.extend(pool)
        managers = self.active[SALES_MANAGER]
        for user in users:
            if user.role in (SAE, AE, RM):
                user.manager = r.choice(managers)
        integration = _User(0, "Integration", "User", "Integration User", True, in_gs=False)
        self.integration = integration
        # CSM Managers (the CSMs' User.ManagerId): drawn from their own RNG and given the last
        # Ids, so that the rest of the org - every Id and value in it - is what it was before
        # they were added.
        mgr_rng = random.Random(f"teamsync-synthetic:{self.org.seed}:csm-managers")
        csm_managers = [
            _User(90_000 + i, mgr_rng.choice(_FIRST), mgr_rng.choice(_LAST), CSM_MANAGER, True)
            for i in range(max(2, n_accounts // 1000))
        ]
        for i, user in enumerate(self.pools[CSM]):
            user.manager = csm_managers[i % len(csm_managers)]
        self.pools[CSM_MANAGER] = self.active[CSM_MANAGER] = csm_managers
        self.inactive[CSM_MANAGER] = []

        def manager_stamps() -> tuple[int, int]:
            created = self.now - mgr_rng.randint(DAY_MS, YEAR_MS)
            created -= created % 1000
            return created, created

        sf_rows: list[dict[str, Any]] = []
        # Managers first, so that every ManagerId points at a row loaded before it (the CSM
        # Managers' Ids are taken up front, their rows come last).
        integration.sf_id = self.org.integration_user_id
        for user in users:
            user.sf_id = self.ids(SALESFORCE, SF_USER)
        for user in csm_managers:
            user.sf_id = self.ids(SALESFORCE, SF_USER)
        for user in [integration, *users, *csm_managers]:
            created, modified = manager_stamps() if user.role == CSM_MANAGER else self.stamps()
            email = INTEGRATION_EMAIL if user is integration else user.email
            username = self.org.integration_username if user is integration else email
            sf_rows.append(
                {
                    "Id": user.sf_id,
                    "Username": username,
                    "FirstName": user.first,
                    "LastName": user.last,
                    "Name": user.name,
                    "Email": email,
                    "IsActive": user.active,
                    "Title": user.role,
                    "Department": _department(user.role),
                    "ManagerId": user.manager.sf_id if user.manager else None,
                    "IsDeleted": False,
                    "CreatedDate": created,
                    "CreatedById": integration.sf_id,
                    "LastModifiedDate": modified,
                    "LastModifiedById": integration.sf_id,
                    "SystemModstamp": modified,
                }
            )
        self.summary.integration_user_id = integration.sf_id
        yield self._count(SALESFORCE, SF_USER, sf_rows)

        gs_only: list[_User] = []
        for _ in range(max(2, len(users) // 100)):
            number += 1
            gs_only.append(
                _User(
                    number, r.choice(_FIRST), r.choice(_LAST), "Gainsight Admin", True, in_sf=False
                )
            )
        gs_rows: list[dict[str, Any]] = []
        for user in [*users, *gs_only, *csm_managers]:
            if not user.in_gs:
                continue
            user.gsid = self.ids(GAINSIGHT, GS_USER)
            created, modified = manager_stamps() if user.role == CSM_MANAGER else self.gs_stamps()
            gs_rows.append(
                {
                    "Gsid": user.gsid,
                    "Name": user.name,
                    "FirstName": user.first,
                    "LastName": user.last,
                    "Email": user.gs_email,
                    "IsActiveUser": user.active,
                    "SfdcUserId": user.sf_id if user.gs_sfdc_id and user.in_sf else None,
                    "SFDCUserName": user.email if user.gs_sfdc_id and user.in_sf else None,
                    "LicenseType": "Full",
                    "CreatedDate": created,
                    "ModifiedDate": modified,
                }
            )
        yield self._count(GAINSIGHT, GS_USER, gs_rows)

    # -- accounts ------------------------------------------------------------------------
    def _account(self, index: int) -> _Account:
        if self.org.accounts >= SCENARIO_MIN_ACCOUNTS and index < len(_SCENARIOS):
            key, intent, build = _SCENARIOS[index]
            plan = self._clean_customer(index, f"Scenario: {key.replace('_', ' ')}")
            plan.scenario, plan.intent = key, intent
            build(self, plan)
            return plan
        return self._random_account(index)

    def _name(self, index: int) -> str:
        r = self.rng
        return f"{r.choice(_ADJ)} {r.choice(_NOUN)} {r.choice(_SUFFIX)} {index + 1}"

    def _clean_customer(self, index: int, name: str) -> _Account:
        """A Mid-Market customer with nothing wrong: the base every scenario changes."""
        owner = self.pools[AE][0]
        created, modified = self.stamps(oldest_ms=YEAR_MS, newest_ms=30 * DAY_MS)
        plan = _Account(
            index, name, "Mid-Market", 500, True, 120_000.0, owner, "Technology", created, modified
        )
        self._won(plan, [-400], owner)
        rm = self.pools[RM][0]
        plan.opps.append(self._opp("Renewal", "Negotiation/Review", 200, 120_000.0, rm))
        plan.opps[-1].label = "next_renewal"
        c_created, c_modified = self.gs_stamps()
        plan.company = _Company("18", 120_000.0, self.pools[CSM][0], 85, 85, c_created, c_modified)
        return plan

    def _opp(self, type_: str, stage: str, close: int, amount: float | None, owner: _User) -> _Opp:
        r = self.rng
        if close < 0 and STAGES[stage][0]:
            # A closed deal was created before its close date and last touched on or after it.
            closed_ago = min(-close * DAY_MS, YEAR_MS - DAY_MS)
            created = self.now - r.randint(closed_ago, YEAR_MS)
            modified = self.now - r.randint(60_000, closed_ago)
            created -= created % 1000
            modified -= modified % 1000
        else:
            created, modified = self.stamps()
        return _Opp(type_, stage, close, amount, owner, created, max(created, modified))

    def _won(self, plan: _Account, closes: list[int], owner: _User) -> None:
        arr = plan.arr or 10_000.0
        for i, close in enumerate(sorted(closes)):
            if i == 0:
                type_, amount = "New Business", arr * 0.8
            elif self.rng.random() < 0.5:
                type_, amount = "Upsell", arr * 0.2
            else:
                type_, amount = "Renewal", arr
            plan.opps.append(self._opp(type_, "Closed Won", close, round(amount), owner))

    def _random_account(self, index: int) -> _Account:
        r = self.rng
        roll = r.random()
        segment: str | None
        if roll < 0.15:
            segment, employees = "Enterprise", _log_int(r, 2000, 200_000)
        elif roll < 0.50:
            segment, employees = "Mid-Market", _log_int(r, 100, 1999)
        elif roll < 0.90:
            segment, employees = "SMB", _log_int(r, 5, 99)
        else:
            segment = None
            pending = [e for e in FALLBACK_EMPLOYEES if f"employees:{e}" not in self._once]
            if pending and self.first(f"employees:{pending[0]}"):
                employees = pending[0]
            elif r.random() < 0.5:
                employees = r.choice(FALLBACK_EMPLOYEES)
            else:
                employees = _log_int(r, 5, 50_000)
        effective = segment or _fallback_segment(employees)
        customer = r.random() < 0.70
        arr: float | None
        if customer:
            cluster = r.random()
            if cluster < 0.03:
                arr = r.choice((49_999.0, 50_000.0, 50_001.0))
            elif cluster < 0.05:
                arr = float(r.randint(45_000, 55_000))
            else:
                arr = float(round(_log_uniform(r, 5_000, 2_000_000), -2))
        else:
            arr = None if r.random() < 0.6 else 0.0
        owner_role = SAE if effective == "Enterprise" else AE
        inactive_owner = self.first("inactive_owner") or r.random() < 0.03
        owner = self.pick(owner_role, active=not inactive_owner)
        created, modified = self.stamps()
        plan = _Account(
            index,
            self._name(index),
            segment,
            employees,
            customer,
            arr,
            owner,
            r.choice(_INDUSTRIES),
            created,
            modified,
        )
        plan.deleted = self.first("deleted_account") or r.random() < 0.005
        if customer:
            self._customer_opps(plan)
        else:
            self._prospect_opps(plan)
        if not plan.deleted and (self.first("deleted_opportunity") or r.random() < 0.02):
            # Entered twice and deleted: earlier than the real next renewal, so a reader that
            # forgets IsDeleted picks the wrong date.
            real = plan.next_renewal()
            close = real.close - 30 if real else r.randint(10, 90)
            type_ = "Renewal" if real else "New Business"
            amount = real.amount if real else 10_000.0
            dup = self._opp(type_, "Qualification", close, amount, owner)
            dup.deleted = True
            plan.opps.append(dup)
        if plan.deleted:
            for opp in plan.opps:
                opp.deleted = True
        else:
            self._members(plan, effective)
        self._company(plan)
        return plan

    def _customer_opps(self, plan: _Account) -> None:
        r = self.rng
        n_won = r.choices((1, 2, 3), weights=(35, 35, 30))[0]
        first_won = -r.randint(30, 1100)
        later = r.sample(range(first_won + 1, 0), k=min(n_won - 1, -first_won - 1))
        closes = [first_won, *sorted(later)]
        self._won(plan, closes, plan.owner)
        roll = r.random()
        if roll < 0.01:
            offset = 119
        elif roll < 0.02:
            offset = 120
        elif roll < 0.03:
            offset = 121
        else:
            offset = r.randint(-10, 400)
        rm_is_owner = plan.owner.active and r.random() < 0.20
        rm = plan.owner if rm_is_owner else self.pick(RM)
        renewal = self._opp("Renewal", r.choice(OPEN_STAGES), offset, plan.arr, rm)
        if not plan.deleted and (self.first("two_open_renewals") or r.random() < 0.03):
            # Inserted first but closing a year later: "next" means earliest, not first loaded.
            second = self._opp("Renewal", "Prospecting", offset + 365, plan.arr, rm)
            plan.opps.append(second)
        plan.opps.append(renewal)
        if r.random() < 0.35:
            amount = round((plan.arr or 10_000.0) * r.uniform(0.1, 0.5))
            plan.opps.append(
                self._opp("Upsell", "Closed Lost", -r.randint(5, 700), amount, plan.owner)
            )
        if r.random() < 0.15:
            amount = round((plan.arr or 10_000.0) * r.uniform(0.1, 0.4))
            plan.opps.append(
                self._opp("Upsell", r.choice(OPEN_STAGES), r.randint(10, 250), amount, plan.owner)
            )

    def _prospect_opps(self, plan: _Account) -> None:
        r = self.rng
        if r.random() < 0.08:
            return
        for _ in range(r.choice((1, 1, 2))):
            close = r.randint(-20, 180)
            amount = float(round(_log_uniform(r, 5_000, 500_000), -2))
            plan.opps.append(
                self._opp("New Business", r.choice(OPEN_STAGES), close, amount, plan.owner)
            )
        if r.random() < 0.30:
            amount = float(round(_log_uniform(r, 5_000, 500_000), -2))
            close = -r.randint(5, 600)
            plan.opps.append(self._opp("New Business", "Closed Lost", close, amount, plan.owner))

    def _members(self, plan: _Account, effective: str) -> None:
        r = self.rng
        stamps = self.stamps
        sa_share = {"Enterprise": 0.60, "Mid-Market": 0.15}.get(effective, 0.0)
        if sa_share and r.random() < sa_share:
            self.add_other(plan, SA, SA, self._access())
        if effective == "Enterprise" and (self.first("exec_sponsor") or r.random() < 0.30):
            self.add_other(plan, EXEC, EXEC, self._access())
        pending = [role for role in UNMANAGED_ROLES if f"unmanaged:{role}" not in self._once]
        if (pending and self.first(f"unmanaged:{pending[0]}")) or r.random() < 0.20:
            role = pending[0] if pending else r.choice(UNMANAGED_ROLES)
            source = {"Sales Manager": SALES_MANAGER, "Channel Manager": AE}.get(role, SA)
            self.add_other(plan, source, role, self._access())
        if r.random() < 0.40:
            # The managed rows teamsync would write itself, already in place.
            if plan.owner.active:
                owner_role = SAE if plan.owner.role == SAE else AE
                plan.add_member(plan.owner, owner_role, STANDARD_ACCESS, stamps())
            renewal = plan.next_renewal()
            if renewal is not None and renewal.owner is not plan.owner:
                plan.add_member(renewal.owner, RM, STANDARD_ACCESS, stamps())
        if self.first("stale_managed_row") or r.random() < 0.05:
            # Someone who no longer holds the role: not the owner, not the renewal owner.
            renewal = plan.next_renewal()
            role = RM if renewal is not None and r.random() < 0.5 else AE
            exclude = [m.user for m in plan.members] + [plan.owner]
            if renewal is not None:
                exclude.append(renewal.owner)
            stale = self.pick_other(role, *exclude)
            if stale is not None:
                plan.add_member(stale, role, STANDARD_ACCESS, stamps())
        if self.first("inactive_member") or r.random() < 0.01:
            role = r.choice((SA, EXEC))
            plan.add_member(self.pick(role, active=False), role, self._access(), stamps())

    def _access(self) -> tuple[str, str, str]:
        if self.rng.random() < 0.15:
            return self.rng.choice(OTHER_ACCESS)
        return STANDARD_ACCESS

    # -- companies -----------------------------------------------------------------------
    def _company(self, plan: _Account) -> None:
        r = self.rng
        if plan.deleted:
            # Gainsight keeps a company whose account was deleted; one or two of those.
            if self.deleted_with_company >= 2:
                return
            self.deleted_with_company += 1
            link = "18"
        else:
            roll = r.random()
            if self.first("unlinked_company"):
                link = "none"
            elif roll < 0.92:
                link = "15" if r.random() < 0.20 else "18"
            elif roll < 0.97:
                return
            else:
                link = "none"
        arr = plan.arr
        if arr and r.random() < 0.10:
            arr = float(round(arr * r.uniform(0.9, 1.1)))
        csm: _User | None = None
        if plan.customer:
            qualifying = (plan.arr or 0) >= CSM_THRESHOLD
            if r.random() < (0.75 if qualifying else 0.10):
                inactive = self.first("inactive_csm") or r.random() < 0.02
                csm = self.pick(CSM, active=not inactive)
        current: int | None
        stale = plan.customer and not plan.deleted and link != "none"
        if stale and (self.first("stale_health") or r.random() < 0.01):
            # Health values left by an older tool: Green in Salesforce, red in Gainsight.
            current = r.randint(5, 45)
            plan.health_score, plan.health_status = 88.0, "Green"
        elif stale and (self.first("stale_flags") or r.random() < 0.005):
            plan.risk_flags = "HANDOFF_DUE;NO_CSM"
            current = r.randint(76, 100)
        elif csm is not None and csm.active and "cta_red_open" not in self._once:
            current = r.randint(10, 45)  # so that even a small org has an open Red Health CTA
        elif r.random() < 0.08:
            current = None
        else:
            pending = [s for s in BOUNDARY_SCORES if f"score:{s}" not in self._once]
            if pending and self.first(f"score:{pending[0]}"):
                current = pending[0]
            elif r.random() < 0.03:
                current = r.choice(BOUNDARY_SCORES)
            else:
                band = r.random()
                if band < 0.2:
                    current = r.randint(0, 50)
                elif band < 0.5:
                    current = r.randint(51, 75)
                else:
                    current = r.randint(76, 100)
        previous = self._previous(current)
        created, modified = self.gs_stamps()
        company = _Company(link, arr, csm, current, previous, created, modified)
        if r.random() < 0.30:
            self._team_lookups(plan, company)
        self._ctas(plan, company)
        plan.company = company

    def _previous(self, current: int | None) -> int | None:
        r = self.rng
        if current is None:
            return None
        roll = r.random()
        if current <= 85 and (self.first("score_drop") or roll < 0.15):
            return min(100, current + r.randint(15, 30))
        if current >= 5 and (self.first("score_rise") or roll < 0.30):
            return max(0, current - r.randint(5, 25))
        if roll < 0.38:
            return None
        return max(0, min(100, current + r.choice((0, 0, 0, -2, 2))))

    def _team_lookups(self, plan: _Account, company: _Company) -> None:
        r = self.rng
        team: dict[str, _User] = {"AccountExecutive__gc": plan.owner}
        for member in plan.members:
            if member.role == SA:
                team["SolutionsArchitect__gc"] = member.user
            elif member.role == EXEC:
                team["ExecutiveSponsor__gc"] = member.user
        renewal = plan.next_renewal()
        if renewal is not None:
            team["RenewalManager__gc"] = renewal.owner
        if self.first("stale_lookup") or r.random() < 0.2:
            # Stale: somebody else's name left behind from an earlier assignment.
            stale = self.pick_other(SAE if plan.owner.role == SAE else AE, plan.owner)
            if stale is not None:
                team["AccountExecutive__gc"] = stale
        company.team = {k: u for k, u in team.items() if u.in_gs}

    def _ctas(self, plan: _Account, company: _Company) -> None:
        r = self.rng
        csm = company.csm
        red = company.current is not None and company.current <= 50
        if csm is not None and csm.active and red:
            if self.first("cta_red_open") or r.random() < 0.15:
                created, modified = self.gs_stamps()
                company.ctas.append(
                    _Cta(
                        f"Red health: {plan.name}",
                        "Risk",
                        "Red Health",
                        r.choice(("New", "Open", "Work In Progress")),
                        "High",
                        csm,
                        r.randint(1, 30),
                        created,
                        modified,
                    )
                )
        if csm is not None and (self.first("cta_red_closed") or r.random() < 0.05):
            created, modified = self.gs_stamps()
            company.ctas.append(
                _Cta(
                    f"Red health: {plan.name}",
                    "Risk",
                    "Red Health",
                    "Closed Success",
                    "High",
                    csm,
                    -r.randint(30, 300),
                    created,
                    modified,
                    closed=True,
                )
            )
        if self.first("cta_other") or r.random() < 0.04:
            type_, reason = r.choice(
                (
                    ("Lifecycle", "Other"),
                    ("Risk", "Support Risk"),
                    ("Risk", "Low Usage"),
                    ("Opportunity", "Other"),
                    ("Risk", "Renewal at Risk"),
                )
            )
            created, modified = self.gs_stamps()
            company.ctas.append(
                _Cta(
                    f"{type_}: {plan.name}",
                    type_,
                    reason,
                    r.choice(("New", "Open", "Closed Success")),
                    r.choice(("High", "Medium", "Low")),
                    csm or self.pick(CSM),
                    r.randint(-30, 60),
                    created,
                    modified,
                )
            )
            company.ctas[-1].closed = company.ctas[-1].status == "Closed Success"

    # -- rows ------------------------------------------------------------------------------
    def _emit(self, plans: list[_Account], *, last: bool) -> Iterator[Batch]:
        integ = self.integration.sf_id if self.integration else None
        accounts: list[dict[str, Any]] = []
        for plan in plans:
            account_id = self.ids(SALESFORCE, SF_ACCOUNT)
            plan.details["account_id"] = account_id
            accounts.append(
                {
                    "Id": account_id,
                    "Name": plan.name,
                    "OwnerId": plan.owner.sf_id,
                    "Type": "Customer - Direct" if plan.customer else "Prospect",
                    "Industry": plan.industry,
                    "NumberOfEmployees": plan.employees,
                    "Sales_Segment__c": plan.segment,
                    "ARR__c": plan.arr,
                    "Health_Score__c": plan.health_score,
                    "Health_Status__c": plan.health_status,
                    "Risk_Flags__c": plan.risk_flags,
                    "IsDeleted": plan.deleted,
                    "CreatedDate": plan.created_ms,
                    "CreatedById": integ,
                    "LastModifiedDate": plan.modified_ms,
                    "LastModifiedById": integ,
                    "SystemModstamp": plan.modified_ms,
                }
            )
        yield self._count(SALESFORCE, SF_ACCOUNT, accounts)

        opps: list[dict[str, Any]] = []
        for plan in plans:
            account_id = plan.details["account_id"]
            for opp in plan.opps:
                is_closed, is_won, probability, forecast = STAGES[opp.stage]
                close = self.day(opp.close)
                opp_id = self.ids(SALESFORCE, SF_OPPORTUNITY)
                if opp.label:
                    plan.details[f"{opp.label}_id"] = opp_id
                opps.append(
                    {
                        "Id": opp_id,
                        "Name": f"{plan.name} - {opp.type} {close[:4]}",
                        "AccountId": account_id,
                        "OwnerId": opp.owner.sf_id,
                        "StageName": opp.stage,
                        "CloseDate": close,
                        "Amount": opp.amount,
                        "Type": opp.type,
                        "IsClosed": is_closed,
                        "IsWon": is_won,
                        "Probability": probability,
                        "ForecastCategoryName": forecast,
                        "IsDeleted": opp.deleted,
                        "CreatedDate": opp.created_ms,
                        "CreatedById": integ,
                        "LastModifiedDate": opp.modified_ms,
                        "LastModifiedById": integ,
                        "SystemModstamp": opp.modified_ms,
                    }
                )
        yield self._count(SALESFORCE, SF_OPPORTUNITY, opps)

        members: list[dict[str, Any]] = []
        for plan in plans:
            account_id = plan.details["account_id"]
            for m in plan.members:
                account_level, opportunity_level, case_level = m.access
                members.append(
                    {
                        "Id": self.ids(SALESFORCE, SF_ATM),
                        "AccountId": account_id,
                        "UserId": m.user.sf_id,
                        "TeamMemberRole": m.role,
                        "AccountAccessLevel": account_level,
                        "OpportunityAccessLevel": opportunity_level,
                        "CaseAccessLevel": case_level,
                        "ContactAccessLevel": "Read" if account_level == "Edit" else "None",
                        "Title": m.user.role,
                        "IsDeleted": False,
                        "CreatedDate": m.created_ms,
                        "CreatedById": integ,
                        "LastModifiedDate": m.modified_ms,
                        "LastModifiedById": integ,
                        "SystemModstamp": m.modified_ms,
                    }
                )
        yield self._count(SALESFORCE, SF_ATM, members)

        companies: list[dict[str, Any]] = []
        ctas: list[dict[str, Any]] = []
        for plan in plans:
            company = plan.company
            if company is None:
                continue
            account_id = plan.details["account_id"]
            link = {"18": account_id, "15": account_id[:15], "none": None}[company.link]
            companies.append(self._company_row(plan, company, link))
            gsid = companies[-1]["Gsid"]
            plan.details["company_gsid"] = gsid
            ctas.extend(self._cta_row(c, gsid) for c in company.ctas)
        if last and self.org.accounts > 0:
            companies.append(self._orphan_company())
        yield self._count(GAINSIGHT, GS_COMPANY, companies)
        yield self._count(GAINSIGHT, GS_CTA, ctas)

        for plan in plans:
            if plan.scenario:
                self._record_scenario(plan)

    def _company_row(self, plan: _Account, company: _Company, link: str | None) -> dict[str, Any]:
        renewal = plan.next_renewal() if plan.customer else None
        first_won = plan.first_won()
        current, previous = company.current, company.previous
        trend: str | None = None
        if current is not None and previous is not None:
            trend = "Up" if current > previous else "Down" if current < previous else "Same"
        row: dict[str, Any] = {
            "Gsid": self.ids(GAINSIGHT, GS_COMPANY),
            "Name": plan.name,
            "SfdcAccountId": link,
            "Industry": plan.industry,
            "Arr": company.arr,
            "Mrr": round(company.arr / 12, 2) if company.arr else None,
            "Employees": plan.employees,
            "Status": "Active" if plan.customer else None,
            "RenewalDate": self.midnight_ms(renewal.close) if renewal else None,
            "OriginalContractDate": self.midnight_ms(first_won.close) if first_won else None,
            "Csm": company.csm.gsid if company.csm else None,
            "CurrentScore": current,
            "PreviousScore": previous,
            "Trend": trend,
            "RiskFlags__gc": None,
            "CreatedDate": company.created_ms,
            "ModifiedDate": company.modified_ms,
        }
        for field_name in (
            "AccountExecutive__gc",
            "SolutionsArchitect__gc",
            "RenewalManager__gc",
            "ExecutiveSponsor__gc",
        ):
            user = company.team.get(field_name)
            row[field_name] = user.gsid if user else None
        return row

    def _cta_row(self, cta: _Cta, company_gsid: str) -> dict[str, Any]:
        return {
            "Gsid": self.ids(GAINSIGHT, GS_CTA),
            "Name": cta.name,
            "CompanyId": company_gsid,
            "OwnerId": cta.owner.gsid if cta.owner else None,
            "type": cta.type,
            "reason": cta.reason,
            "status": cta.status,
            "priority": cta.priority,
            "DueDate": self.midnight_ms(cta.due),
            "IsClosed": cta.closed,
            "ClosedDate": cta.modified_ms if cta.closed else None,
            "EntityType": "COMPANY",
            "CreatedDate": cta.created_ms,
            "ModifiedDate": cta.modified_ms,
        }

    def _orphan_company(self) -> dict[str, Any]:
        """A company whose SfdcAccountId names an Account that never existed."""
        # Another pod than the emulator's ("Tm"), so it can never collide with a real Id.
        missing_id = SalesforceIdFactory(ACCOUNT.key_prefix, pod="Zz")()
        created, modified = self.gs_stamps()
        plan = _Account(
            -1,
            "Orphan Company (account gone)",
            None,
            250,
            True,
            25_000.0,
            self.pools[AE][0],
            "Other",
            created,
            modified,
        )
        company = _Company("18", 25_000.0, None, 70, 70, created, modified)
        return self._company_row(plan, company, missing_id)

    def _record_scenario(self, plan: _Account) -> None:
        assert plan.scenario is not None
        company = plan.company
        details: dict[str, Any] = {
            k: v for k, v in plan.details.items() if k not in ("account_id", "company_gsid")
        }
        details.update(
            segment=plan.segment,
            employees=plan.employees,
            arr=plan.arr,
            customer=plan.customer,
            current_score=company.current if company else None,
            previous_score=company.previous if company else None,
        )
        renewal = plan.next_renewal()
        if renewal is not None:
            details["renewal_close_date"] = self.day(renewal.close)
        users = {"owner": plan.owner, **plan.users}
        if company and company.csm:
            users.setdefault("csm", company.csm)
        if renewal is not None:
            users.setdefault("renewal_owner", renewal.owner)
        ref = ScenarioRef(
            key=plan.scenario,
            name=plan.name,
            intent=plan.intent,
            account_id=plan.details["account_id"],
            company_gsid=plan.details.get("company_gsid"),
            users={label: u.sf_id for label, u in users.items()},
            gs_users={label: u.gsid for label, u in users.items() if u.gsid},
            emails={label: u.email for label, u in users.items()},
            details=details,
        )
        if plan.scenario == "csm_email_case" and company and company.csm:
            ref.emails["csm_salesforce"] = company.csm.email
            ref.emails["csm_gainsight"] = company.csm.gs_email
        self.summary.scenarios[plan.scenario] = ref


# -- scenarios ---------------------------------------------------------------------------------


def _score(value: int | None, previous: int | None = None) -> Callable[[_Run, _Account], None]:
    def build(run: _Run, plan: _Account) -> None:
        assert plan.company is not None
        plan.company.current = value
        plan.company.previous = value if previous is None else previous

    return build


def _enterprise(run: _Run, plan: _Account, arr: float) -> None:
    plan.segment, plan.employees, plan.arr = "Enterprise", 5000, arr
    plan.owner = run.pools[SAE][0]
    for opp in plan.opps:
        opp.owner = plan.owner if opp.stage == "Closed Won" else opp.owner
        if opp.type == "Renewal":
            opp.amount = arr
    assert plan.company is not None
    plan.company.arr, plan.company.csm = arr, None


def _no_segment(employees: int) -> Callable[[_Run, _Account], None]:
    def build(run: _Run, plan: _Account) -> None:
        plan.segment, plan.employees = None, employees
        if employees >= 2000:
            plan.owner = run.pools[SAE][0]
        else:
            plan.arr = 20_000.0
            assert plan.company is not None
            plan.company.arr, plan.company.csm = 20_000.0, None
        for opp in plan.opps:
            if opp.stage == "Closed Won":
                opp.owner = plan.owner

    return build


def _renewal_in(days: int) -> Callable[[_Run, _Account], None]:
    def build(run: _Run, plan: _Account) -> None:
        renewal = plan.next_renewal()
        assert renewal is not None
        assert plan.company is not None
        renewal.close = days
        plan.company.current = plan.company.previous = 60

    return build


def _link_15(run: _Run, plan: _Account) -> None:
    assert plan.company is not None
    plan.company.link = "15"


def _csm_email_case(run: _Run, plan: _Account) -> None:
    assert plan.company is not None
    plan.company.csm = run.pools[CSM][1]  # forced active, in Gainsight, another e-mail case


def _inactive_sa(run: _Run, plan: _Account) -> None:
    plan.segment, plan.employees = "Enterprise", 8000
    plan.owner = run.pools[SAE][0]
    for opp in plan.opps:
        if opp.stage == "Closed Won":
            opp.owner = plan.owner
    sa = run.pick(SA, active=False)
    plan.add_member(sa, SA, STANDARD_ACCESS, run.stamps())
    plan.users["sa"] = sa


def _no_company(run: _Run, plan: _Account) -> None:
    plan.company = None


def _human_sa_row(run: _Run, plan: _Account) -> None:
    plan.add_member(plan.owner, SA, ("Edit", "Read", "None"), run.stamps())
    plan.users["ae"] = plan.owner


def _ae_owns_renewal(run: _Run, plan: _Account) -> None:
    renewal = plan.next_renewal()
    assert renewal is not None
    renewal.owner = plan.owner


def _prospect(run: _Run, plan: _Account) -> None:
    plan.customer, plan.arr = False, None
    plan.opps = [
        run._opp("New Business", "Qualification", 45, 80_000.0, plan.owner),
        run._opp("New Business", "Proposal/Price Quote", 90, 30_000.0, plan.owner),
    ]
    assert plan.company is not None
    plan.company.arr, plan.company.csm = None, None
    plan.company.current = plan.company.previous = None


def _handoff(run: _Run, plan: _Account) -> None:
    plan.arr = 150_000.0
    plan.created_ms = run.now - 90 * DAY_MS - run.now % 1000
    plan.modified_ms = run.now - 10 * DAY_MS - run.now % 1000
    won = run._opp("New Business", "Closed Won", -10, 150_000.0, plan.owner)
    won.created_ms, won.modified_ms = plan.created_ms, plan.modified_ms
    renewal = run._opp("Renewal", "Prospecting", 355, 150_000.0, run.pools[RM][0])
    renewal.label = "next_renewal"
    plan.opps = [won, renewal]
    assert plan.company is not None
    plan.company.arr, plan.company.csm = 150_000.0, None


def _overstaffed(run: _Run, plan: _Account) -> None:
    plan.segment, plan.employees, plan.arr = "SMB", 40, 20_000.0
    for opp in plan.opps:
        if opp.type == "Renewal":
            opp.amount = 20_000.0
    sae, sa, csm = run.pools[SAE][0], run.pools[SA][0], run.pools[CSM][0]
    plan.add_member(sae, SAE, STANDARD_ACCESS, run.stamps())
    plan.add_member(sa, SA, STANDARD_ACCESS, run.stamps())
    plan.add_member(csm, CSM, STANDARD_ACCESS, run.stamps())
    plan.users.update(sae=sae, sa=sa)
    assert plan.company is not None
    plan.company.arr, plan.company.csm = 20_000.0, csm


def _sales_manager(run: _Run, plan: _Account) -> None:
    manager = run.pools[SALES_MANAGER][0]
    plan.add_member(manager, SALES_MANAGER, ("Read", "Read", "None"), run.stamps())
    plan.users["sales_manager"] = manager


def _stale_ae(run: _Run, plan: _Account) -> None:
    former = run.pools[AE][1]  # always active, never the scenarios' owner (pools[AE][0])
    plan.add_member(former, AE, STANDARD_ACCESS, run.stamps())
    plan.users["former_owner"] = former


def _inactive_owner(run: _Run, plan: _Account) -> None:
    plan.owner = run.inactive[AE][0]


_SCENARIOS: tuple[tuple[str, str, Callable[[_Run, _Account], None]], ...] = (
    ("score_50", "CurrentScore 50: top of the Red band", _score(50)),
    ("score_51", "CurrentScore 51: bottom of the Yellow band", _score(51)),
    ("score_75", "CurrentScore 75: top of the Yellow band", _score(75)),
    ("score_76", "CurrentScore 76: bottom of the Green band", _score(76)),
    ("score_null", "CurrentScore null: health Unknown", _score(None)),
    (
        "arr_50000",
        "Enterprise customer, ARR exactly 50,000, no CSM: qualifies",
        lambda run, plan: _enterprise(run, plan, 50_000.0),
    ),
    (
        "arr_49999",
        "Enterprise customer, ARR 49,999, no CSM: not qualifying",
        lambda run, plan: _enterprise(run, plan, 49_999.0),
    ),
    ("no_segment_2000", "no segment, 2,000 employees: Enterprise by fallback", _no_segment(2000)),
    ("no_segment_99", "no segment, 99 employees: SMB by fallback", _no_segment(99)),
    ("link_15_char", "company linked by the 15-character Account Id", _link_15),
    ("csm_email_case", "CSM e-mail differs in case between the systems", _csm_email_case),
    ("inactive_sa_member", "Solutions Architect row for an inactive user", _inactive_sa),
    ("no_company", "customer without a Gainsight company", _no_company),
    (
        "human_sa_row_for_ae",
        "the owning AE has a human-added Solutions Architect row: keep it, AE counts as present",
        _human_sa_row,
    ),
    ("ae_owns_renewal", "the owning AE also owns the open renewal", _ae_owns_renewal),
    ("renewal_119", "renewal in 119 days, Yellow score: inside the window", _renewal_in(119)),
    ("renewal_120", "renewal in 120 days, Yellow score: edge of the window", _renewal_in(120)),
    ("renewal_121", "renewal in 121 days, Yellow score: outside the window", _renewal_in(121)),
    ("prospect_open_opps", "prospect with only open opportunities", _prospect),
    (
        "handoff_due",
        "first Closed Won 10 days ago, qualifying, no CSM: handoff due",
        _handoff,
    ),
    (
        "overstaffed",
        "non-qualifying SMB account with SAE, SA and CSM rows: overstaffed",
        _overstaffed,
    ),
    ("health_drop", "score fell from 80 to 60", _score(60, 80)),
    ("unmanaged_sales_manager", "human-added Sales Manager row, never touched", _sales_manager),
    ("stale_ae_row", "Account Executive row for a former owner", _stale_ae),
    ("inactive_owner", "account owned by an inactive AE", _inactive_owner),
)

SCENARIO_KEYS: tuple[str, ...] = tuple(key for key, _intent, _build in _SCENARIOS)


# -- seeding the emulators ---------------------------------------------------------------------


def seed_emulators(
    sf: SalesforceEmulator,
    gs: GainsightEmulator,
    *,
    accounts: int,
    seed: int,
    now_ms: int | None = None,
) -> OrgSummary:
    """Generate an org and load it into both emulators (in the fixed order); return its summary.

    ``now_ms`` defaults to the Salesforce emulator's clock, so no stamp is in its future.
    """
    now = sf.clock.now_ms() if now_ms is None else now_ms
    sf_org = getattr(sf, "org", None)  # the emulator's running user, when it exposes one
    org = SyntheticOrg(
        accounts,
        seed,
        now,
        integration_user_id=getattr(sf_org, "integration_user_id", INTEGRATION_USER_ID),
        integration_username=sf.credentials.username,
    )
    # The synthetic org is a prepared one: its admin has done what the README's checklist asks
    # (Team Role values added).  Preflight tests undo one step at a time.
    prepare = getattr(sf, "prepare_for_teamsync", None)
    if prepare is not None:
        prepare()
    emulators: dict[str, Any] = {SALESFORCE: sf, GAINSIGHT: gs}

    def ids(system: str, object_name: str) -> str:
        return str(emulators[system].tables[object_name].new_id())

    for system, object_name, rows in org.batches(ids):
        if rows:
            emulators[system].load(object_name, rows)
    return org.summary


# -- small helpers -----------------------------------------------------------------------------


def _log_uniform(r: random.Random, low: float, high: float) -> float:
    return math.exp(r.uniform(math.log(low), math.log(high)))


def _log_int(r: random.Random, low: int, high: int) -> int:
    return max(low, min(high, round(_log_uniform(r, low, high))))


def _fallback_segment(employees: int) -> str:
    if employees >= 2000:
        return "Enterprise"
    if employees >= 100:
        return "Mid-Market"
    return "SMB"


def _department(role: str) -> str:
    if role in (CSM, RM, CSM_MANAGER):
        return "Customer Success"
    if role == EXEC:
        return "Executive"
    if role == "Integration User":
        return "IT"
    return "Sales"


__all__ = [
    "COUNT_NAMES",
    "CSM_THRESHOLD",
    "EMAIL_DOMAIN",
    "GAINSIGHT",
    "INTEGRATION_EMAIL",
    "SALESFORCE",
    "SCENARIO_KEYS",
    "Batch",
    "IdSource",
    "OrgSummary",
    "ScenarioRef",
    "SyntheticOrg",
    "generate",
    "seed_emulators",
]
