"""Map: walk the store in chunks of accounts and apply the account-team rules to each.

For every chunk the mapper loads only what those accounts reference (their opportunities,
team rows, linked company, the users involved and recent health history), validates each
record at the boundary and calls :func:`mappings.rules.map_account`; :meth:`Mapper.record`
stores the mapped model and any new health observation (a dry run records nothing).
Records that do not validate are quarantined, and the account they belong to is left
untouched for this run.

Poison is never fatal: a record that fails to parse, to map or to be stored is quarantined
with its account id and a reason (so are two Gainsight companies linked to one account: the
conflict names both, the mapper does not pick one), that account's writes are left out, and
every other account goes on.  Records that vanished from this run's pulls (``hidden``) are
treated as deleted; they are marked so only once the plan passes the safeguard.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple, TypeVar, cast

import orjson
import structlog
from sqlalchemy import Select, String, Table, insert, or_, select, type_coerce, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from config.errors import InvalidRecord
from connectors.batching import batched
from mappings.rules import (
    AccountInput,
    CompanyInput,
    MappedAccount,
    Opportunity,
    Person,
    TeamRow,
    map_account,
)
from mappings.schema import MappingFile
from sync.clock import utcnow
from sync.stages import records as rec
from sync.stages.wipes import WipeState, wipe_states
from sync.store import IN_LIST, Store
from sync.store.errors import first_line
from sync.store.models import Account, CtaLink, HealthObservation, RawRecord
from sync.streams import Stream, catalogue
from sync.types import OpenCta

log = structlog.get_logger("teamsync.map")

HISTORY_DAYS = 90
USER_CACHE = 8192  # parsed users remembered per stream (cleared when full)

U = TypeVar("U", rec.SfUser, rec.GsUser)
_C = TypeVar("_C", rec.SfOpportunity, rec.SfTeamMember)


@dataclass
class MappedItem:
    """One account: what the rules saw, what they made of it, and the planner's other input."""

    inputs: AccountInput | None  # None once planned (MappedChunk.shed_inputs)
    mapped: MappedAccount
    open_ctas: list[OpenCta] = field(default_factory=list)  # CTAs teamsync opened or adopted
    managed_sf_rows: int = 0  # existing team rows in managed roles
    managed_gs_fields: int = 0  # filled Gainsight team fields teamsync manages
    wipe: WipeState | None = None  # its human-maintained team rows all vanished (TEAM_WIPED)


@dataclass
class MappedChunk:
    mapped_at: datetime
    items: list[MappedItem] = field(default_factory=list)
    invalid: list[InvalidRecord] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # account ids left untouched
    deleted: list[str] = field(default_factory=list)  # accounts deleted in Salesforce

    @property
    def managed_sf_rows(self) -> int:
        return sum(i.managed_sf_rows for i in self.items)

    @property
    def managed_gs_fields(self) -> int:
        return sum(i.managed_gs_fields for i in self.items)

    def shed_inputs(self) -> None:
        """Drop what only the planner reads (the accounts' inputs: opportunities, team rows,
        people): a planned chunk waiting for its team re-read keeps only what is recorded."""
        for item in self.items:
            item.inputs = None

    def replace(self, other: MappedChunk) -> None:
        """Take ``other``'s view of the accounts it maps (a re-map of some of this chunk's):
        their items replace these, their invalid records and skips are added."""
        redone = {i.mapped.account_id for i in other.items} | set(other.skipped)
        self.items = [i for i in self.items if i.mapped.account_id not in redone]
        self.items.extend(other.items)
        self.items.sort(key=lambda i: i.mapped.account_id)
        seen = {(e.system, e.object_name, e.record_id) for e in self.invalid}
        self.invalid.extend(
            e for e in other.invalid if (e.system, e.object_name, e.record_id) not in seen
        )
        self.skipped = sorted(set(self.skipped) | set(other.skipped))


class Mapper:
    def __init__(
        self,
        store: Store,
        mapping: MappingFile,
        *,
        chunk_size: int = 500,
        clock: Callable[[], datetime] = utcnow,
        run_id: str | None = None,
        hidden: Callable[[str, str], frozenset[str]] | None = None,
    ) -> None:
        """``hidden(system, object)``: ids of records that vanished from this run's pulls."""
        self.store = store
        self._hidden = hidden or (lambda _system, _object: frozenset())
        self.mapping = mapping
        self.chunk_size = chunk_size
        self.clock = clock
        self.run_id = run_id
        self.streams = catalogue(mapping)
        # People the mapping names by e-mail ([managers]).
        self._named_emails = {
            source.lower()
            for source in [
                *mapping.managers.when_unassigned,
                *(x for v in mapping.managers.by_role.values() for x in v),
            ]
            if "@" in source
        }
        self._managed_values = set(mapping.managed_team_roles())
        self._gs_fields = list(mapping.gainsight_team_fields())
        # Parsed users by stream and Id, with the stored JSON they were parsed from.
        self._users: dict[str, dict[str, tuple[Any, Any]]] = {}
        # Users already looked up in this run, by stream: by Id and by e-mail.
        self._user_ids: dict[str, dict[str, Any]] = {}
        self._user_emails: dict[str, dict[str, list[tuple[str, Any]]]] = {}

    def chunks(self, account_ids: Iterable[str] | None = None) -> Iterator[MappedChunk]:
        """Mapped chunks of accounts, in Id order (or just the given accounts).

        Nothing is written: the engine records a chunk's final view with :meth:`record`.
        """
        if account_ids is not None:
            ids = sorted(set(account_ids))
            for part in batched(ids, self.chunk_size):
                with self.store.session() as s:
                    rows = _fetch(
                        s, _raw(self.streams.sf_account).where(RawRecord.record_id.in_(part))
                    )
                yield self._map_chunk(rows)
            return
        last = ""
        while True:
            with self.store.session() as s:
                rows = _fetch(
                    s,
                    _raw(self.streams.sf_account)
                    .where(RawRecord.record_id > last)
                    .order_by(RawRecord.record_id)
                    .limit(self.chunk_size),
                )
            if not rows:
                return
            last = rows[-1].record_id
            yield self._map_chunk(rows)

    # --- one chunk ------------------------------------------------------------------------
    def _map_chunk(self, account_rows: Sequence[RawView]) -> MappedChunk:
        now = self.clock()
        out = MappedChunk(mapped_at=now)
        today = now.date()
        bad_accounts: set[str] = set()

        def poison(exc: InvalidRecord, account_id: str | None) -> None:
            exc.account_id = exc.account_id or account_id
            out.invalid.append(exc)
            if account_id:
                bad_accounts.add(account_id)

        gone_accounts = self._hidden(self.streams.sf_account.system, "Account")
        accounts: dict[str, rec.SfAccount] = {}
        for row in account_rows:
            if row.is_deleted or row.record_id in gone_accounts:
                out.deleted.append(row.record_id)
                continue
            try:
                accounts[row.record_id] = self.streams.sf_account.parse(row.data)
            except InvalidRecord as exc:
                poison(exc, row.record_id)
        ids = list(accounts)

        with self.store.session() as s:
            opp_rows = self._by_parent(s, self.streams.sf_opportunity, ids)
            atm_rows = self._by_parent(s, self.streams.sf_team_member, ids)
            company_rows = self._by_parent(s, self.streams.gs_company, ids)

            opps = _by_account(self.streams.sf_opportunity, opp_rows, poison)
            atms = _by_account(self.streams.sf_team_member, atm_rows, poison)
            linked: dict[str, list[RawView]] = defaultdict(list)
            for r in sorted(company_rows, key=lambda r: r.record_id):
                linked[r.parent_id or ""].append(r)
            companies: dict[str, tuple[rec.GsCompany, dict[str, Any]]] = {}
            for account_id, rows in linked.items():
                if len(rows) > 1:
                    # Which one is right is a human's call: quarantine the conflict.
                    gsids = ", ".join(r.record_id for r in rows)
                    poison(
                        InvalidRecord(
                            self.streams.gs_company.system,
                            "Company",
                            rows[0].record_id,
                            f"{len(rows)} Gainsight companies link to Salesforce account "
                            f"{account_id}: {gsids}; teamsync does not pick one",
                            code="COMPANY_LINK_CONFLICT",
                        ),
                        account_id,
                    )
                    continue
                company_data = rows[0].data
                try:
                    c = self.streams.gs_company.parse(company_data)
                except InvalidRecord as exc:
                    poison(exc, account_id)
                    continue
                companies[account_id] = (c, company_data)

            # Users referenced by this chunk, resolved across systems by e-mail.
            sf_ids: set[str] = set()
            for a in accounts.values():
                if a.owner_id:
                    sf_ids.add(a.owner_id)
            for opp_list in opps.values():
                sf_ids.update(o.owner_id for o in opp_list if o.owner_id)
            for atm_list in atms.values():
                sf_ids.update(t.user_id for t in atm_list if t.user_id)
            gs_ids: set[str] = set()
            for c, _ in companies.values():
                if c.csm:
                    gs_ids.add(c.csm)
                gs_ids.update(v for v in c.team_fields.values() if v)
            bad_users: list[InvalidRecord] = []
            sf_users = self._load_users(s, self.streams.sf_user, sf_ids, bad_users)
            gs_users = self._load_users(s, self.streams.gs_user, gs_ids, bad_users)
            emails = {u.email for u in sf_users.values() if u.email} | {
                u.email for u in gs_users.values() if u.email
            }
            emails |= {c.csm_email for c, _ in companies.values() if c.csm_email}
            emails |= self._named_emails
            sf_by_email = self._users_by_email(s, self.streams.sf_user, emails, bad_users)
            gs_by_email = self._users_by_email(s, self.streams.gs_user, emails, bad_users)
            # Their managers (User.ManagerId): "the role's manager" of coverage and handoff
            # escalations.
            manager_ids = {u.manager_id for u in sf_users.values() if u.manager_id}
            manager_ids |= {
                u.manager_id for group in sf_by_email.values() for u in group if u.manager_id
            }
            managers = self._load_users(s, self.streams.sf_user, manager_ids, bad_users)
            history = self._history(s, ids, now)
            open_ctas = _open_ctas(s, [c.gsid for c, _ in companies.values()])
            handoffs_closed = self._handoffs_closed(s, ids)
            live_unmanaged = {
                account_id: sum(1 for t in rows if t.team_role not in self._managed_values)
                for account_id, rows in atms.items()
            }
            team = self.streams.sf_team_member
            wipes = wipe_states(
                s,
                ids,
                self._hidden(team.system, team.object),
                live_unmanaged,
                managed_roles=self._managed_values,
                now=now,
                days=self.mapping.flags.team_wiped_days,
            )

        # One Person per user and chunk: accounts, opportunities and team rows of a chunk
        # name the same few people again and again (Person is immutable, so shared).
        manager_seen: dict[str | None, Person | None] = {}

        def manager_person(manager_id: str | None) -> Person | None:
            if manager_id in manager_seen:
                return manager_seen[manager_id]
            u = managers.get(manager_id or "")
            p = (
                None
                if u is None
                else Person(name=u.name, email=u.email, sf_user_id=u.id, sf_active=u.active)
            )
            manager_seen[manager_id] = p
            return p

        # A person who cannot be read leaves out every account of this chunk they are on.
        poisoned = {bad.record_id: bad for bad in bad_users}
        if poisoned:
            users_of: dict[str, set[str]] = defaultdict(set)
            for account_id, a in accounts.items():
                refs = {a.owner_id} | {o.owner_id for o in opps.get(account_id, [])}
                refs |= {t.user_id for t in atms.get(account_id, [])}
                pair = companies.get(account_id)
                if pair is not None:
                    refs |= {pair[0].csm} | set(pair[0].team_fields.values())
                for user_id in refs & poisoned.keys():
                    users_of[str(user_id)].add(account_id)
            for user_id, bad in poisoned.items():
                affected = sorted(users_of.get(user_id, ()))
                if len(affected) > 1:
                    bad.reason = f"{bad.reason} (and {len(affected) - 1} more accounts)"
                poison(bad, affected[0] if affected else None)
                bad_accounts.update(affected)

        sf_seen: dict[str | None, Person | None] = {}
        gs_seen: dict[tuple[str | None, str | None], Person | None] = {}

        def person_from_sf(user_id: str | None) -> Person | None:
            if user_id in sf_seen:
                return sf_seen[user_id]
            p = _person_from_sf(user_id)
            sf_seen[user_id] = p
            return p

        def _person_from_sf(user_id: str | None) -> Person | None:
            if not user_id:
                return None
            u = sf_users.get(user_id)
            if u is None:
                return Person(name=None, email=None, sf_user_id=user_id, sf_active=None)
            g = _pick(gs_by_email.get(u.email or ""), lambda x: x.active is not False)
            return Person(
                name=u.name,
                email=u.email,
                sf_user_id=u.id,
                sf_active=u.active,
                gs_user_id=g.gsid if g else None,
                gs_active=g.active if g else None,
                manager=manager_person(u.manager_id),
            )

        def person_from_gs(gsid: str | None, email_hint: str | None) -> Person | None:
            key = (gsid, email_hint)
            if key in gs_seen:
                return gs_seen[key]
            p = _person_from_gs(gsid, email_hint)
            gs_seen[key] = p
            return p

        def _person_from_gs(gsid: str | None, email_hint: str | None) -> Person | None:
            if not gsid:
                return None
            g = gs_users.get(gsid)
            email = (g.email if g else None) or email_hint
            u = _pick(sf_by_email.get(email or ""), lambda x: x.active)
            return Person(
                name=(g.name if g else None) or (u.name if u else None),
                email=email,
                sf_user_id=u.id if u else None,
                sf_active=u.active if u else None,
                gs_user_id=gsid,
                gs_active=g.active if g else None,
                manager=manager_person(u.manager_id) if u else None,
            )

        named: dict[str, Person] = {}
        for email in self._named_emails:
            u = _pick(sf_by_email.get(email), lambda x: x.active)
            if u is not None:
                named[email] = Person(
                    name=u.name, email=u.email, sf_user_id=u.id, sf_active=u.active
                )

        for account_id, a in accounts.items():
            if account_id in bad_accounts:
                continue
            company_pair = companies.get(account_id)
            wipe = wipes.get(account_id)
            try:
                item = self._map_account(account_id, a, atms, opps, company_pair, history,
                                         today, person_from_sf, person_from_gs,
                                         frozenset(handoffs_closed.get(account_id, ())),
                                         named, wiped=bool(wipe and wipe.wiped))  # fmt: skip
            except Exception as exc:  # noqa: BLE001 - one poison account is never fatal
                poison(
                    InvalidRecord(
                        self.streams.sf_account.system,
                        "Account",
                        account_id,
                        f"mapping failed: {type(exc).__name__}: {str(exc)[:200]}",
                        code="MAP_FAILED",
                    ),
                    account_id,
                )
                continue
            if company_pair is not None:
                item.open_ctas = open_ctas.get(company_pair[0].gsid, [])
                item.managed_gs_fields = sum(
                    1 for f in self._gs_fields if company_pair[0].team_fields.get(f)
                )
            item.managed_sf_rows = sum(
                1 for t in atms.get(account_id, []) if t.team_role in self._managed_values
            )
            item.wipe = wipe
            out.items.append(item)
        out.skipped = sorted(a for a in bad_accounts if a)
        return out

    def _map_account(
        self,
        account_id: str,
        a: rec.SfAccount,
        atms: dict[str, list[rec.SfTeamMember]],
        opps: dict[str, list[rec.SfOpportunity]],
        company_pair: tuple[rec.GsCompany, dict[str, Any]] | None,
        history: dict[str, list[tuple[datetime, float | None]]],
        today: Any,
        person_from_sf: Callable[[str | None], Person | None],
        person_from_gs: Callable[[str | None, str | None], Person | None],
        handoffs_closed: frozenset[str] = frozenset(),
        named: dict[str, Person] | None = None,
        *,
        wiped: bool = False,
    ) -> MappedItem:
        company_input = None
        if company_pair is not None:
            c, _ = company_pair
            company_input = CompanyInput(
                gsid=c.gsid,
                name=c.name,
                csm=person_from_gs(c.csm, c.csm_email),
                score=c.score,
                previous_score=c.previous_score,
                previous_score_date=c.previous_score_date,
                trend=c.trend,
                arr=c.arr,
                team_fields=dict(c.team_fields),
                risk_flags=c.risk_flags,
            )
        team_rows = []
        for t in atms.get(account_id, []):
            p = person_from_sf(t.user_id)
            if p is None:  # a row without a user does not parse; never trust that here
                raise ValueError(f"team row {t.id} has no user")
            team_rows.append(TeamRow(t.id, t.user_id, t.team_role, p, t.created))
        inputs = AccountInput(
            id=account_id,
            name=a.name,
            owner=person_from_sf(a.owner_id),
            segment_raw=a.segment,
            employees=a.employees,
            arr=a.arr,
            opportunities=[
                Opportunity(
                    o.id or "",
                    o.type,
                    o.is_closed,
                    o.is_won,
                    o.close_date,
                    person_from_sf(o.owner_id),
                    stage=o.stage,
                    amount=o.amount,
                )
                for o in opps.get(account_id, [])
            ],
            team_rows=team_rows,
            company=company_input,
            score_history=history.get(account_id, []),
            today=today,
            health_score_actual=a.health_score,
            health_status_actual=a.health_status,
            risk_flags_actual=a.risk_flags,
            handoffs_closed=handoffs_closed,
            named_people=named or {},
            team_wiped=wiped,
        )
        mapped = map_account(inputs, self.mapping)
        return MappedItem(inputs, mapped)

    # --- loading helpers ------------------------------------------------------------------
    def _by_parent(self, s: Session, stream: Stream[Any], parent_ids: list[str]) -> list[RawView]:
        return _by_parent(s, stream, parent_ids, self._hidden(stream.system, stream.object))

    def _load_users(
        self, s: Session, stream: Stream[U], ids: set[str], bad: list[InvalidRecord]
    ) -> dict[str, U]:
        found: dict[str, U] = {}
        gone = self._hidden(stream.system, stream.object)
        # Users read by an earlier chunk of this run are not read again (the map stage never
        # changes a stored user): Id -> the parsed user, or None when the store has none.
        known = self._user_ids.setdefault(stream.name, {})
        missing: list[str] = []
        for user_id in sorted(ids):
            if user_id not in known:
                missing.append(user_id)
                continue
            user = known[user_id]
            if user is not None and user_id not in gone:
                found[user_id] = user
        if len(known) + len(missing) > USER_CACHE:
            known.clear()
        for part in batched(missing, IN_LIST):
            stored: set[str] = set()
            for r in _fetch(s, _raw(stream).where(RawRecord.record_id.in_(part))):
                stored.add(r.record_id)
                try:
                    user = self._parse_user(stream, r)
                except InvalidRecord as exc:
                    if r.record_id not in gone:
                        bad.append(exc)
                    continue  # not remembered: read (and refused) again by the next chunk
                known[r.record_id] = user
                if r.record_id not in gone:
                    found[r.record_id] = user
            for user_id in part:
                if user_id not in stored:
                    known[user_id] = None
        return found

    def _parse_user(self, stream: Stream[U], r: RawView) -> U:
        """``stream.parse`` of a user row, remembered for this mapper (one run): every chunk
        loads most of the same people again.  A row is reused only while its stored JSON is
        the same; one that does not parse is parsed (and refused) again each time."""
        cache = self._users.setdefault(stream.name, {})
        hit = cache.get(r.record_id)
        if hit is not None and hit[0] == r.raw:
            return cast(U, hit[1])
        parsed = stream.parse(r.data)
        if len(cache) >= USER_CACHE:
            cache.clear()
        cache[r.record_id] = (r.raw, parsed)
        return parsed

    def _users_by_email(
        self, s: Session, stream: Stream[U], emails: set[str], bad: list[InvalidRecord]
    ) -> dict[str, list[U]]:
        found: dict[str, list[U]] = defaultdict(list)
        gone = self._hidden(stream.system, stream.object)
        # E-mails looked up by an earlier chunk of this run: e-mail -> its live users, in Id
        # order, as (Id, parsed user); one with a user that does not parse is not remembered.
        known = self._user_emails.setdefault(stream.name, {})
        keys = sorted(e for e in emails if e)
        missing: list[str] = []
        for email in keys:
            users = known.get(email)
            if users is None:
                missing.append(email)
                continue
            for user_id, user in users:
                if user_id not in gone:
                    found[email].append(user)
        if len(known) + len(missing) > USER_CACHE:
            known.clear()
        for part in batched(missing, IN_LIST):
            read: dict[str, list[tuple[str, U]]] = {email: [] for email in part}
            refused: set[str] = set()
            for r in _fetch(
                s, _raw(stream).where(RawRecord.match_key.in_(part)).order_by(RawRecord.record_id)
            ):
                if r.is_deleted:
                    continue
                email = r.match_key or ""
                try:
                    user = self._parse_user(stream, r)
                except InvalidRecord as exc:
                    refused.add(email)
                    if r.record_id not in gone:
                        bad.append(exc)
                    continue
                read.setdefault(email, []).append((r.record_id, user))
                if r.record_id not in gone:
                    found[email].append(user)
            for email, users in read.items():
                if email not in refused:
                    known[email] = users
        return found

    def _history(
        self, s: Any, ids: list[str], now: datetime
    ) -> dict[str, list[tuple[datetime, float | None]]]:
        """Observations (when, score), oldest first.  A score seen unchanged by later runs is
        dated again at the last time it was seen, so it is a dated baseline for as long as
        teamsync keeps seeing it."""
        hist: dict[str, list[tuple[datetime, float | None]]] = defaultdict(list)
        since = now - timedelta(days=max(HISTORY_DAYS, self.mapping.flags.health_drop_days))
        for part in batched(ids, IN_LIST):
            for h in s.scalars(
                select(HealthObservation)
                .where(
                    HealthObservation.account_id.in_(part),
                    or_(
                        HealthObservation.observed_at >= since,
                        HealthObservation.last_seen_at >= since,
                    ),
                )
                .order_by(HealthObservation.account_id, HealthObservation.observed_at)
            ):
                hist[h.account_id].append((h.observed_at, h.score))
                if h.last_seen_at is not None and h.last_seen_at > h.observed_at:
                    hist[h.account_id].append((h.last_seen_at, h.score))
        for values in hist.values():
            values.sort(key=lambda v: v[0])
        return hist

    def _handoffs_closed(self, s: Any, ids: list[str]) -> dict[str, set[str]]:
        """Per account, the opportunities whose Handoff CTA was closed (the handoff is done)."""
        flags = [f for f, c in self.mapping.gainsight.cta.flags.items() if c.signal == "handoff"]
        out: dict[str, set[str]] = defaultdict(set)
        if not flags:
            return out
        for part in batched(ids, IN_LIST):
            for account_id, subject in s.execute(
                select(CtaLink.account_id, CtaLink.subject_id).where(
                    CtaLink.account_id.in_(part),
                    CtaLink.flag.in_(flags),
                    CtaLink.status == "closed",
                    CtaLink.subject_id.is_not(None),
                )
            ):
                out[account_id].add(subject)
        return out

    # --- persisting -----------------------------------------------------------------------
    def record(self, chunk: MappedChunk) -> set[str]:
        """Record a chunk's mapped accounts and any new health observation (never on a dry
        run); returns the accounts the store refused (quarantined, taken out of the chunk)."""
        now = chunk.mapped_at
        try:
            self._store(chunk, now)
            return set()
        except SQLAlchemyError:
            pass
        # A statement refused for one account's data: store them one by one and quarantine
        # the ones the store refuses (a store that is down raises StoreUnavailable instead,
        # which is not caught here).
        self._store(MappedChunk(now, deleted=chunk.deleted), now)
        refused: set[str] = set()
        for item in list(chunk.items):
            try:
                self._store(MappedChunk(now, items=[item]), now)
            except SQLAlchemyError as exc:
                chunk.items.remove(item)
                account_id = item.mapped.account_id
                refused.add(account_id)
                chunk.invalid.append(
                    InvalidRecord(
                        self.streams.sf_account.system,
                        "Account",
                        account_id,
                        f"the store refused the mapped account: {first_line(exc)}",
                        code="STORE_FAILED",
                        account_id=account_id,
                    )
                )
        chunk.skipped = sorted(set(chunk.skipped) | refused)
        return refused

    def _store(self, chunk: MappedChunk, now: datetime) -> None:
        values = [_account_values(i.mapped, now, self.run_id) for i in chunk.items]
        with self.store.session() as s:
            self.store.upsert(s, Account, values, ["account_id"])
            if chunk.deleted:
                for part in batched(chunk.deleted, IN_LIST):
                    s.query(Account).filter(Account.account_id.in_(part)).update(
                        {"deleted": True}, synchronize_session=False
                    )
            # A health observation is appended when the score or band changed; an unchanged
            # one is dated as seen again (last_seen_at).
            latest: dict[str, tuple[float | None, str, int]] = {}
            ids = [i.mapped.account_id for i in chunk.items]
            for part in batched(ids, IN_LIST):
                sub = (
                    select(
                        HealthObservation.account_id,
                        HealthObservation.score,
                        HealthObservation.band,
                        HealthObservation.id,
                    )
                    .where(HealthObservation.account_id.in_(part))
                    .order_by(HealthObservation.account_id, HealthObservation.observed_at)
                )
                for account_id, score, band, obs_id in s.execute(sub):
                    latest[account_id] = (score, band, obs_id)
            new = []
            seen_again: list[int] = []
            for item in chunk.items:
                mapped = item.mapped
                current = (mapped.health_score, mapped.health_band)
                last = latest.get(mapped.account_id)
                if last is not None and last[:2] == current:
                    seen_again.append(last[2])
                else:
                    new.append(
                        {
                            "account_id": mapped.account_id,
                            "observed_at": now,
                            "score": mapped.health_score,
                            "band": mapped.health_band,
                            "last_seen_at": None,
                        }
                    )
            if new:  # Core executemany: no ORM object per observation
                s.execute(insert(cast(Table, HealthObservation.__table__)), new)
            for obs_ids in batched(seen_again, IN_LIST):
                s.execute(
                    update(HealthObservation)
                    .where(HealthObservation.id.in_(obs_ids))
                    .values(last_seen_at=now)
                )


def _pick(candidates: list[Any] | None, prefer: Callable[[Any], bool]) -> Any:
    if not candidates:
        return None
    for c in candidates:
        if prefer(c):
            return c
    return candidates[0]


def _by_account(
    stream: Stream[_C],
    rows: Iterable[RawView],
    poison: Callable[[InvalidRecord, str | None], None],
) -> dict[str, list[_C]]:
    """Account -> its parsed child records; one that does not parse poisons its account."""
    out: dict[str, list[_C]] = defaultdict(list)
    for r in rows:
        try:
            out[r.parent_id or ""].append(stream.parse(r.data))
        except InvalidRecord as exc:
            poison(exc, r.parent_id)
    return out


def _open_ctas(s: Session, gsids: list[str]) -> dict[str, list[OpenCta]]:
    """Company -> the open CTAs teamsync opened or adopted there."""
    out: dict[str, list[OpenCta]] = {}
    for part in batched(gsids, IN_LIST):
        for link in s.scalars(
            select(CtaLink).where(CtaLink.company_gsid.in_(part), CtaLink.status == "open")
        ):
            out.setdefault(link.company_gsid, []).append(
                OpenCta(link.cta_gsid, link.flag, link.origin)
            )
    return out


def _raw(stream: Stream[Any]) -> Select[Any]:
    """The stored rows of a stream, as plain rows (no ORM object per record)."""
    return select(*_RAW_COLUMNS).where(
        RawRecord.system == stream.system, RawRecord.object == stream.object
    )


# The stored JSON is read as it comes from the driver (text on SQLite, already decoded on
# PostgreSQL) and decoded only where it is used: a user parsed in an earlier chunk from the
# same text is not decoded again.
_RAW_COLUMNS: tuple[Any, ...] = (
    RawRecord.record_id,
    RawRecord.parent_id,
    RawRecord.match_key,
    RawRecord.is_deleted,
    type_coerce(RawRecord.data, String).label("raw"),
)


class RawView(NamedTuple):
    """A stored raw row read for mapping."""

    record_id: str
    parent_id: str | None
    match_key: str | None
    is_deleted: bool
    raw: Any  # the stored JSON: text (SQLite) or already decoded (PostgreSQL)

    @property
    def data(self) -> dict[str, Any]:
        raw = self.raw
        return raw if isinstance(raw, dict) else cast(dict[str, Any], orjson.loads(raw))


def _fetch(s: Session, stmt: Select[Any]) -> list[RawView]:
    return [RawView(*row) for row in s.execute(stmt)]


def _by_parent(
    s: Session, stream: Stream[Any], parent_ids: list[str], gone: frozenset[str] = frozenset()
) -> list[RawView]:
    rows: list[RawView] = []
    for part in batched(parent_ids, IN_LIST):
        rows.extend(
            _fetch(
                s,
                _raw(stream).where(
                    RawRecord.parent_id.in_(part),
                    RawRecord.is_deleted.is_(False),
                ),
            )
        )
    return [r for r in rows if r.record_id not in gone] if gone else rows


def _person_json(p: Person) -> dict[str, Any]:
    return {
        "name": p.name,
        "email": p.email,
        "sf_user_id": p.sf_user_id,
        "sf_active": p.sf_active,
        "gs_user_id": p.gs_user_id,
        "gs_active": p.gs_active,
    }


def _account_values(mapped: MappedAccount, now: datetime, run_id: str | None) -> dict[str, Any]:
    renewal = mapped.renewal
    return {
        "account_id": mapped.account_id,
        "name": mapped.name[:255],
        "segment": mapped.segment,
        "segment_source": mapped.segment_source,
        "lifecycle": mapped.lifecycle,
        "is_customer": mapped.is_customer,
        "first_won": mapped.first_won,
        "arr": mapped.arr,
        "qualifying": mapped.qualifying,
        "renewal_opportunity_id": renewal.opportunity_id if renewal else None,
        "renewal_date": renewal.close_date if renewal else None,
        "days_to_renewal": renewal.days if renewal else None,
        "in_renewal_window": bool(renewal and renewal.in_window),
        "company_gsid": mapped.company_gsid,
        "health_score": mapped.health_score,
        "health_band": mapped.health_band,
        "previous_score": mapped.previous_score,
        "trend": mapped.trend,
        "team": {
            key: {**_person_json(m.person), "source": m.source, "inactive": m.inactive}
            for key, m in mapped.team.items()
        },
        "missing_roles": list(mapped.missing_roles),
        "inactive_members": list(mapped.inactive_members),
        "flags": list(mapped.flags),
        "notes": list(mapped.notes),
        "deleted": False,
        "mapped_at": now,
        "mapped_run_id": run_id,
    }
