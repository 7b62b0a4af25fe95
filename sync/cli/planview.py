"""Plans a reviewer can read: operations with people, accounts and reasons in words.

    lines = describe(store, mapping, operation_records(store, run_id))
    lines = PlanFilter(accounts=["acme"], kinds=["delete"]).apply(lines)
    render_plan_lines(console, lines, fmt="table", title="Plan", stream=sys.stdout)

The same description serves ``plan`` (every format), ``plan --out`` (each operation keeps a
readable summary beside its Ids), ``run --plan`` (what was skipped) and ``show`` (a past run).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy import select

from config.errors import ConfigurationError, InvalidRecord
from connectors.batching import batched
from mappings.rules import segment_of
from mappings.schema import MappingFile
from sync.stages.plan import ACCOUNT, ATM, COMPANY, CTA
from sync.store import IN_LIST, Store
from sync.store.models import Account, Operation, RawRecord
from sync.streams import catalogue

FORMATS = ("table", "json", "markdown", "csv")
OBJECT_ALIASES = {
    "team": ATM,
    "team-member": ATM,
    "accountteammember": ATM,
    "account": ACCOUNT,
    "company": COMPANY,
    "cta": CTA,
    "calltoaction": CTA,
}
KINDS = ("create", "update", "delete", "close")
_VERB = {"create": "+", "update": "~", "delete": "-", "close": "x"}
# Characters a spreadsheet would read as the start of a formula (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass
class Who:
    """A person named by an operation, by name and e-mail with the Ids beside them."""

    name: str | None = None
    email: str | None = None
    sf_user_id: str | None = None
    gs_user_id: str | None = None

    def label(self) -> str:
        if self.name and self.email:
            return f"{self.name} <{self.email}>"
        return self.name or self.email or self.sf_user_id or self.gs_user_id or "(unknown user)"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "email": self.email,
            "sf_user_id": self.sf_user_id,
            "gs_user_id": self.gs_user_id,
        }


@dataclass
class Change:
    field: str  # API name
    label: str  # in words
    before: Any
    after: Any
    before_text: str
    after_text: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "label": self.label,
            "before": self.before,
            "after": self.after,
            "before_text": self.before_text,
            "after_text": self.after_text,
        }


@dataclass
class PlanLine:
    """One operation, described for a person (and kept with every Id for machines)."""

    system: str
    object: str
    action: str
    target_id: str | None
    account_id: str | None
    account_name: str
    segment: str | None
    summary: str
    reason: str
    destructive: bool
    person: Who | None = None
    role: str | None = None
    changes: list[Change] = field(default_factory=list)
    payload: dict[str, Any] = field(default_factory=dict)
    previous: dict[str, Any] | None = None
    status: str | None = None  # a past run: planned / done / failed / adopted / skipped
    error: str | None = None
    op_id: str | None = None  # the operation's digest in a plan file

    @property
    def kind(self) -> str:
        return f"{self.system}.{self.object}.{self.action}"

    def as_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "system": self.system,
            "object": self.object,
            "action": self.action,
            "target_id": self.target_id,
            "account": {
                "id": self.account_id,
                "name": self.account_name,
                "segment": self.segment,
            },
            "summary": self.summary,
            "reason": self.reason,
            "destructive": self.destructive,
            "person": self.person.as_dict() if self.person else None,
            "role": self.role,
            "changes": [c.as_dict() for c in self.changes],
            "payload": self.payload,
            "previous": self.previous,
        }
        if self.status is not None:
            doc["status"] = self.status
            doc["error"] = self.error
        if self.op_id is not None:
            doc["op_id"] = self.op_id
        return doc


# --- reading operations -----------------------------------------------------------------------
@dataclass
class OpRecord:
    """The stored form of an operation (a row of ``operations`` or an entry of a plan file)."""

    system: str
    object: str
    action: str
    target_id: str | None
    account_id: str | None
    payload: dict[str, Any]
    previous: dict[str, Any] | None
    reason: str
    destructive: bool = False
    status: str | None = None
    error: str | None = None
    op_id: str | None = None

    @classmethod
    def from_row(cls, op: Operation, *, with_status: bool = False) -> OpRecord:
        return cls(
            op.system,
            op.object,
            op.action,
            op.target_id,
            op.account_id,
            dict(op.payload or {}),
            dict(op.previous) if op.previous is not None else None,
            op.reason,
            bool(op.destructive),
            op.status if with_status else None,
            op.error if with_status else None,
        )


def operation_records(
    store: Store, run_id: str, *, with_status: bool = False, account_id: str | None = None
) -> list[OpRecord]:
    with store.session() as s:
        q = select(Operation).where(Operation.run_id == run_id)
        if account_id is not None:
            q = q.where(Operation.account_id == account_id)
        return [
            OpRecord.from_row(op, with_status=with_status)
            for op in s.scalars(q.order_by(Operation.id))
        ]


class _Directory:
    """Names for the Ids operations carry: accounts, Salesforce users, Gainsight users."""

    def __init__(self, store: Store, mapping: MappingFile, ops: Sequence[OpRecord]) -> None:
        account_ids = {o.account_id for o in ops if o.account_id}
        accounts = catalogue(mapping).sf_account
        sf_users: set[str] = set()
        gs_users: set[str] = set()
        for o in ops:
            for doc in (o.payload, o.previous or {}):
                for key, value in doc.items():
                    if not isinstance(value, str) or not value:
                        continue
                    if key in ("UserId",):
                        sf_users.add(value)
                    elif key == "OwnerId" or key.endswith("__gc"):
                        gs_users.add(value)
        self.accounts: dict[str, tuple[str, str | None]] = {}
        self.sf: dict[str, Who] = {}
        self.gs: dict[str, Who] = {}
        with store.session() as s:
            for chunk in batched(sorted(account_ids), IN_LIST):
                for a in s.scalars(select(Account).where(Account.account_id.in_(chunk))):
                    self.accounts[a.account_id] = (a.name, a.segment)
            missing = sorted(account_ids - set(self.accounts))
            # Not mapped yet (a first plan; a dry run records no accounts): the raw record has
            # the name, and the rules give the segment.
            for chunk in batched(missing, IN_LIST):
                for r in s.scalars(_raw("salesforce", "Account", chunk)):
                    name = str(r.data.get("Name") or r.record_id)
                    try:
                        raw = accounts.parse(r.data)
                    except InvalidRecord:
                        self.accounts[r.record_id] = (name, None)
                        continue
                    segment, _ = segment_of(raw.segment, raw.employees, mapping)
                    self.accounts[r.record_id] = (name, segment)
            for chunk in batched(sorted(sf_users), IN_LIST):
                for r in s.scalars(_raw("salesforce", "User", chunk)):
                    self.sf[r.record_id] = Who(
                        r.data.get("Name"), _lower(r.data.get("Email")), sf_user_id=r.record_id
                    )
            for chunk in batched(sorted(gs_users), IN_LIST):
                for r in s.scalars(_raw("gainsight", "GsUser", chunk)):
                    self.gs[r.record_id] = Who(
                        r.data.get("Name"), _lower(r.data.get("Email")), gs_user_id=r.record_id
                    )

    def account(self, account_id: str | None) -> tuple[str, str | None]:
        if not account_id:
            return ("(no account)", None)
        return self.accounts.get(account_id, (account_id, None))

    def sf_user(self, user_id: Any) -> Who:
        if not user_id:
            return Who()
        return self.sf.get(str(user_id)) or Who(sf_user_id=str(user_id))

    def gs_user(self, gsid: Any) -> Who:
        if not gsid:
            return Who()
        return self.gs.get(str(gsid)) or Who(gs_user_id=str(gsid))


def _lower(value: Any) -> str | None:
    return str(value).lower() if value else None


def _raw(system: str, obj: str, ids: Sequence[str]) -> Any:
    return select(RawRecord).where(
        RawRecord.system == system, RawRecord.object == obj, RawRecord.record_id.in_(ids)
    )


# --- describing -------------------------------------------------------------------------------
def _text(value: Any) -> str:
    """A value as a person reads it: no Python reprs, no ``True`` or ``120000.0``."""
    if value is None or value == "":
        return "(empty)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.0f}" if value.is_integer() else f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, list | tuple):
        return ", ".join(_text(v) for v in value) or "(empty)"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_text(v)}" for k, v in value.items()) or "(empty)"
    return str(value).replace(";", ", ")


def describe(
    store: Store, mapping: MappingFile, ops: Sequence[OpRecord], *, sort: bool = True
) -> list[PlanLine]:
    """Readable lines for ``ops``, grouped by account (by name) in a stable order (or in the
    order given, with ``sort=False``)."""
    directory = _Directory(store, mapping, ops)
    role_by_team_role = {r.team_role: r.name for r in mapping.roles.values()}
    sf = mapping.salesforce
    sf_labels = {
        sf.health_score_field: "health score",
        sf.health_status_field: "health status",
        sf.risk_flags_field: "risk flags",
    }
    gs_team = mapping.gainsight_team_fields()

    def gs_label(gs_field: str, segment: str | None) -> str:
        if gs_field == mapping.gainsight.risk_flags_field:
            return "risk flags"
        keys = gs_team.get(gs_field, [])
        # Several roles share one lookup (SAE / AE): name the one of the account's segment.
        fitting = [
            k for k in keys if segment and segment in (mapping.roles[k].segments or [segment])
        ]
        return " / ".join(mapping.roles[k].name for k in (fitting[:1] or keys)) or gs_field

    lines: list[PlanLine] = []
    for op in ops:
        name, segment = directory.account(op.account_id)
        line = PlanLine(
            op.system,
            op.object,
            op.action,
            op.target_id,
            op.account_id,
            name,
            segment,
            summary="",
            reason=op.reason,
            destructive=op.destructive,
            payload=op.payload,
            previous=op.previous,
            status=op.status,
            error=op.error,
            op_id=op.op_id,
        )
        prev = op.previous or {}
        if op.object == ATM:
            if op.action == "create":
                who = directory.sf_user(op.payload.get("UserId"))
                role = str(op.payload.get("TeamMemberRole") or "")
                line.summary = f"add {who.label()} as {role_by_team_role.get(role, role)}"
            elif op.action == "update":
                who = directory.sf_user(prev.get("UserId"))
                role = str(op.payload.get("TeamMemberRole") or "")
                old = str(prev.get("TeamMemberRole") or "")
                line.summary = (
                    f"change {who.label()} from {role_by_team_role.get(old, old)} "
                    f"to {role_by_team_role.get(role, role)}"
                )
                line.changes.append(Change("TeamMemberRole", "team role", old, role, old, role))
            else:
                who = directory.sf_user(prev.get("UserId"))
                role = str(prev.get("TeamMemberRole") or "")
                line.summary = f"remove {who.label()} from {role_by_team_role.get(role, role)}"
            line.person = who
            line.role = role_by_team_role.get(role, role)
        elif op.object in (ACCOUNT, COMPANY):
            for key, after in op.payload.items():
                if key in ("Id", "Gsid"):
                    continue
                label = sf_labels.get(key, key) if op.object == ACCOUNT else gs_label(key, segment)
                before = prev.get(key)
                if op.object == COMPANY and key in gs_team:
                    b, a = directory.gs_user(before), directory.gs_user(after)
                    bt = b.label() if before else "(empty)"
                    at = a.label() if after else "(empty)"
                else:
                    bt, at = _text(before), _text(after)
                line.changes.append(Change(key, label, before, after, bt, at))
            where = "Salesforce account" if op.object == ACCOUNT else "Gainsight company"
            line.summary = f"update {where}: " + "; ".join(
                f"{c.label} {c.before_text} → {c.after_text}" for c in line.changes
            )
        elif op.object == CTA:
            flag = prev.get("flag") or "?"
            if op.action == "create":
                owner = directory.gs_user(op.payload.get("OwnerId"))
                line.person = owner if op.payload.get("OwnerId") else None
                line.summary = (
                    f"open {op.payload.get('type') or 'Risk'} CTA "
                    f"'{op.payload.get('reason') or flag}'"
                    + (f" for {owner.label()}" if op.payload.get("OwnerId") else " (no owner)")
                    + (f", due {op.payload['DueDate']}" if op.payload.get("DueDate") else "")
                )
            else:
                line.summary = f"close the CTA for {flag} ({op.payload.get('status') or 'closed'})"
        else:
            line.summary = f"{op.action} {op.object} {op.target_id or ''}".strip()
        lines.append(line)
    lines.sort(
        key=lambda ln: (ln.account_name.lower(), ln.account_id or "", _ORDER.get(ln.kind, 9))
    )
    return lines


_ORDER = {
    "salesforce.AccountTeamMember.delete": 0,
    "salesforce.AccountTeamMember.update": 1,
    "salesforce.AccountTeamMember.create": 2,
    "salesforce.Account.update": 3,
    "gainsight.Company.update": 4,
    "gainsight.CallToAction.close": 5,
    "gainsight.CallToAction.create": 6,
}


# --- filtering --------------------------------------------------------------------------------
@dataclass
class PlanFilter:
    """``--account`` (Id or part of the name), ``--segment``, ``--object``, ``--kind``."""

    accounts: list[str] = field(default_factory=list)
    segments: list[str] = field(default_factory=list)
    objects: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        problems = []
        objects = []
        for o in self.objects:
            key = o.strip().lower()
            if key in OBJECT_ALIASES:
                objects.append(OBJECT_ALIASES[key])
            elif o in OBJECT_ALIASES.values():
                objects.append(o)
            else:
                problems.append(f"--object: unknown {o!r} (known: team, account, company, cta)")
        self.objects = objects
        kinds = [k.strip().lower() for k in self.kinds]
        for k in kinds:
            if k not in KINDS:
                problems.append(f"--kind: unknown {k!r} (known: {', '.join(KINDS)})")
        self.kinds = kinds
        if problems:
            raise ConfigurationError("invalid filter", problems)

    @property
    def active(self) -> bool:
        return bool(self.accounts or self.segments or self.objects or self.kinds)

    def describe(self) -> str:
        parts = []
        for label, values in (
            ("account", self.accounts),
            ("segment", self.segments),
            ("object", self.objects),
            ("kind", self.kinds),
        ):
            if values:
                parts.append(f"{label} {' or '.join(values)}")
        return ", ".join(parts)

    def match(self, line: PlanLine) -> bool:
        if self.accounts and not any(_account_matches(a, line) for a in self.accounts):
            return False
        if self.segments and (line.segment or "").lower() not in {s.lower() for s in self.segments}:
            return False
        if self.objects and line.object not in self.objects:
            return False
        return not (self.kinds and line.action not in self.kinds)

    def apply(self, lines: Iterable[PlanLine]) -> list[PlanLine]:
        return [ln for ln in lines if self.match(ln)]


def _account_matches(wanted: str, line: PlanLine) -> bool:
    w = wanted.strip().lower()
    if not w:
        return False
    aid = (line.account_id or "").lower()
    if aid and (aid == w or (len(w) == 15 and aid.startswith(w))):
        return True
    return w in line.account_name.lower()


# --- rendering --------------------------------------------------------------------------------
def summary_counts(lines: Sequence[PlanLine]) -> dict[str, dict[str, int]]:
    """``{"salesforce AccountTeamMember": {"create": 3, ...}}``"""
    out: dict[str, dict[str, int]] = {}
    for ln in lines:
        per = out.setdefault(f"{ln.system} {ln.object}", {})
        per[ln.action] = per.get(ln.action, 0) + 1
    return dict(sorted(out.items()))


def _groups(lines: Sequence[PlanLine]) -> list[tuple[PlanLine, list[PlanLine]]]:
    groups: list[tuple[PlanLine, list[PlanLine]]] = []
    for ln in lines:
        if groups and groups[-1][0].account_id == ln.account_id:
            groups[-1][1].append(ln)
        else:
            groups.append((ln, [ln]))
    return groups


def _heading(first: PlanLine) -> str:
    bits = [first.account_name]
    extra = [b for b in (first.segment, first.account_id) if b]
    return bits[0] + (f" ({', '.join(extra)})" if extra else "")


def _totals_line(lines: Sequence[PlanLine]) -> str:
    accounts = len({ln.account_id for ln in lines})
    destructive = sum(1 for ln in lines if ln.destructive)
    return (
        f"{len(lines)} operation{'s' if len(lines) != 1 else ''} on {accounts} "
        f"account{'s' if accounts != 1 else ''}"
        + (f", {destructive} taking away an existing assignment" if destructive else "")
    )


def render_plan_lines(
    console: Console,
    lines: Sequence[PlanLine],
    *,
    fmt: str,
    title: str,
    stream: IO[str],
    notes: Sequence[str] = (),
    document: dict[str, Any] | None = None,
    limit: int | None = None,
) -> None:
    """Print ``lines`` as table (rich on a terminal, plain full-width text otherwise), json,
    markdown or csv.  ``notes`` are printed after the plan (safeguard, filters, skipped)."""
    if fmt == "json":
        doc = dict(document or {})
        doc["operations"] = [ln.as_dict() for ln in lines]
        stream.write(json.dumps(doc, indent=2, default=str) + "\n")
        return
    if fmt == "csv":
        _render_csv(lines, stream)
        return
    shown = list(lines if limit is None else lines[:limit])
    if fmt == "markdown":
        _render_markdown(lines, shown, title, notes, stream)
        return
    if console.is_terminal:
        _render_rich(console, lines, shown, title, notes)
    else:
        _render_plain(lines, shown, title, notes, stream)


def _status_mark(ln: PlanLine) -> str:
    if ln.status in (None, "planned"):
        return ""
    if ln.status == "failed":
        return f" [failed: {ln.error or 'no reason recorded'}]"
    return f" [{ln.status}]"


def _render_plain(
    lines: Sequence[PlanLine],
    shown: Sequence[PlanLine],
    title: str,
    notes: Sequence[str],
    stream: IO[str],
) -> None:
    w = stream.write
    w(f"{title}: {_totals_line(lines)}\n")
    for obj, actions in summary_counts(lines).items():
        w(f"  {obj}: " + ", ".join(f"{n} {a}" for a, n in sorted(actions.items())) + "\n")
    for first, group in _groups(shown):
        w(f"\n{_heading(first)}\n")
        for ln in group:
            w(f"  {_VERB.get(ln.action, '*')} {ln.summary}{_status_mark(ln)}\n")
            w(f"      why: {ln.reason}\n")
    if len(shown) < len(lines):
        w(f"\n... {len(lines) - len(shown)} more operations (raise --limit, or filter)\n")
    for note in notes:
        w(f"{note}\n")


def _render_rich(
    console: Console,
    lines: Sequence[PlanLine],
    shown: Sequence[PlanLine],
    title: str,
    notes: Sequence[str],
) -> None:
    console.print(f"[bold]{escape(title)}[/]: {_totals_line(lines)}")
    counts = Table(show_edge=False, box=None, pad_edge=False)
    for col in ("", "create", "update", "delete", "close"):
        counts.add_column(col, justify="right" if col else "left")
    for obj, actions in summary_counts(lines).items():
        counts.add_row(obj, *(str(actions.get(a, 0) or "-") for a in KINDS))
    console.print(counts)
    table = Table(show_lines=False, expand=True, leading=1)
    table.add_column("account", ratio=2, overflow="fold")
    table.add_column("change", ratio=4, overflow="fold")
    table.add_column("why", ratio=3, overflow="fold")
    style = {"create": "green", "delete": "red", "close": "yellow", "update": "cyan"}
    for first, group in _groups(shown):
        for i, ln in enumerate(group):
            colour = style.get(ln.action, "")
            table.add_row(
                escape(_heading(first)) if i == 0 else "",
                f"[{colour}]{_VERB.get(ln.action, '*')} {escape(ln.summary)}[/]"
                + escape(_status_mark(ln)),
                escape(ln.reason),
                end_section=i == len(group) - 1,
            )
    console.print(table)
    if len(shown) < len(lines):
        console.print(f"... {len(lines) - len(shown)} more operations (raise --limit, or filter)")
    for note in notes:
        console.print(escape(note))


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _render_markdown(
    lines: Sequence[PlanLine],
    shown: Sequence[PlanLine],
    title: str,
    notes: Sequence[str],
    stream: IO[str],
) -> None:
    w = stream.write
    w(f"# {_md(title)}\n\n{_totals_line(lines)}.\n\n")
    w("| object | create | update | delete | close |\n|---|---:|---:|---:|---:|\n")
    for obj, actions in summary_counts(lines).items():
        w(f"| {obj} | " + " | ".join(str(actions.get(a, 0)) for a in KINDS) + " |\n")
    for first, group in _groups(shown):
        w(f"\n## {_md(_heading(first))}\n\n| change | why |\n|---|---|\n")
        for ln in group:
            w(f"| {_md(ln.summary + _status_mark(ln))} | {_md(ln.reason)} |\n")
    if len(shown) < len(lines):
        w(f"\n_{len(lines) - len(shown)} more operations (raise --limit, or filter)_\n")
    if notes:
        w("\n" + "".join(f"> {_md(n)}\n>\n" for n in notes).rstrip(">\n") + "\n")


CSV_COLUMNS = (
    "account_id",
    "account_name",
    "segment",
    "system",
    "object",
    "action",
    "target_id",
    "person_name",
    "person_email",
    "sf_user_id",
    "gs_user_id",
    "role",
    "summary",
    "reason",
    "destructive",
    "status",
)


def csv_cell(value: Any) -> str:
    """A CSV cell a spreadsheet shows as text: formula-looking values get a leading '."""
    text = "" if value is None else _text(value) if isinstance(value, bool) else str(value)
    if text.startswith(_FORMULA_START):
        return "'" + text
    return text


def _render_csv(lines: Sequence[PlanLine], stream: IO[str]) -> None:
    writer = csv.writer(stream)
    writer.writerow(CSV_COLUMNS)
    for ln in lines:
        p = ln.person or Who()
        writer.writerow(
            [
                csv_cell(v)
                for v in (
                    ln.account_id,
                    ln.account_name,
                    ln.segment,
                    ln.system,
                    ln.object,
                    ln.action,
                    ln.target_id,
                    p.name,
                    p.email,
                    p.sf_user_id,
                    p.gs_user_id,
                    ln.role,
                    ln.summary,
                    ln.reason,
                    "yes" if ln.destructive else "no",
                    ln.status or "",
                )
            ]
        )
