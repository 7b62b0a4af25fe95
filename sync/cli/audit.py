"""The coverage audit as a manager reads it: totals and coverage by segment, required roles
missing, health distribution, the CSM book of business, risk flags, and every account.

    report = AuditReport.build(store, mapping, salesforce_url=..., gainsight_url=...)
    html_text = render_html(report)        # one self-contained page: inline CSS, SVG and JS
    render_table(console, report)          # the terminal form
    report.csm_book                        # also in `teamsync status`

The page loads nothing from anywhere (its Content-Security-Policy forbids it): charts are
inline SVG, sorting and filtering a few lines of inline script.
"""

from __future__ import annotations

import html
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy import select

from mappings.schema import MappingFile
from sync.clock import utcnow
from sync.store import Store, live_accounts
from sync.store.models import Run

BAND_COLOURS = {
    "Red": "#d64545",
    "Yellow": "#e8b400",
    "Green": "#2e9e5b",
    "Unknown": "#9aa3ad",
}
NO_CSM = "(no CSM)"


@dataclass
class AccountRow:
    account_id: str
    name: str
    segment: str
    lifecycle: str
    arr: float | None
    qualifying: bool
    band: str
    score: float | None
    days_to_renewal: int | None
    renewal_date: str | None
    missing: list[str]
    flags: list[str]
    team: dict[str, dict[str, Any]]
    company_gsid: str | None
    salesforce_link: str | None
    gainsight_link: str | None

    @property
    def csm(self) -> tuple[str, str | None]:
        member = self.team.get("CSM")
        if not member:
            return (NO_CSM, None)
        return (str(member.get("name") or member.get("email") or "?"), member.get("email"))


@dataclass
class SegmentRow:
    segment: str
    accounts: int = 0
    customers: int = 0
    arr: float = 0.0
    covered: int = 0  # every required role present
    flagged: int = 0
    missing: Counter[str] = field(default_factory=Counter)
    bands: Counter[str] = field(default_factory=Counter)

    @property
    def coverage(self) -> float:
        return 100.0 * self.covered / self.accounts if self.accounts else 0.0


@dataclass
class CsmRow:
    name: str
    email: str | None
    accounts: int = 0
    arr: float = 0.0
    red: int = 0
    yellow: int = 0
    green: int = 0
    unknown: int = 0
    overloaded: list[str] = field(default_factory=list)  # why, in words

    def as_dict(self) -> dict[str, Any]:
        return {
            "csm": self.name,
            "email": self.email,
            "accounts": self.accounts,
            "arr": self.arr,
            "red": self.red,
            "yellow": self.yellow,
            "green": self.green,
            "unknown": self.unknown,
            "overloaded": bool(self.overloaded),
            "overloaded_because": self.overloaded,
        }


@dataclass
class AuditReport:
    generated_at: datetime
    as_of: datetime | None  # the last successful run that mapped the accounts
    accounts: list[AccountRow]
    segments: list[SegmentRow]
    csm_book: list[CsmRow]
    flags: list[tuple[str, int]]
    roles: dict[str, str]  # role key -> name
    required: dict[str, list[str]]  # segment -> required role keys
    max_accounts: int
    max_arr: float | None

    @property
    def total(self) -> SegmentRow:
        all_ = SegmentRow("All segments")
        for s in self.segments:
            all_.accounts += s.accounts
            all_.customers += s.customers
            all_.arr += s.arr
            all_.covered += s.covered
            all_.flagged += s.flagged
            all_.missing.update(s.missing)
            all_.bands.update(s.bands)
        return all_

    def overloaded_lines(self) -> list[str]:
        """The CSM_OVERLOADED report lines."""
        return [
            f"CSM_OVERLOADED {c.name}"
            + (f" <{c.email}>" if c.email else "")
            + ": "
            + "; ".join(c.overloaded)
            for c in self.csm_book
            if c.overloaded
        ]

    # --- building ---------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        store: Store,
        mapping: MappingFile,
        *,
        salesforce_url: str | None = None,
        gainsight_url: str | None = None,
        now: datetime | None = None,
    ) -> AuditReport:
        sf = (salesforce_url or "").rstrip("/")
        gs = (gainsight_url or "").rstrip("/")
        rows: list[AccountRow] = []
        for a in live_accounts(store):
            rows.append(
                AccountRow(
                    account_id=a.account_id,
                    name=a.name,
                    segment=a.segment,
                    lifecycle=a.lifecycle,
                    arr=a.arr,
                    qualifying=bool(a.qualifying),
                    band=a.health_band,
                    score=a.health_score,
                    days_to_renewal=a.days_to_renewal,
                    renewal_date=a.renewal_date.isoformat() if a.renewal_date else None,
                    missing=[str(m) for m in (a.missing_roles or [])],
                    flags=sorted(str(f) for f in (a.flags or [])),
                    team=dict(a.team or {}),
                    company_gsid=a.company_gsid,
                    salesforce_link=(
                        f"{sf}/lightning/r/Account/{a.account_id}/view" if sf else None
                    ),
                    gainsight_link=(
                        f"{gs}/v1/ui/customersuccess360?cid={a.company_gsid}"
                        if gs and a.company_gsid
                        else None
                    ),
                )
            )
        with store.session() as s:
            as_of = s.scalar(
                select(Run.finished_at)
                .where(Run.status.in_(("succeeded", "partial")), Run.dry_run.is_(False))
                .order_by(Run.finished_at.desc())
                .limit(1)
            )
        segments: dict[str, SegmentRow] = {v: SegmentRow(v) for v in mapping.segments.values}
        flags: Counter[str] = Counter()
        book: dict[tuple[str, str | None], CsmRow] = {}
        for r in rows:
            seg = segments.setdefault(r.segment, SegmentRow(r.segment))
            seg.accounts += 1
            seg.customers += 1 if r.lifecycle == mapping.lifecycle.customer else 0
            seg.arr += r.arr or 0.0
            seg.covered += 0 if r.missing else 1
            seg.flagged += 1 if r.flags else 0
            seg.missing.update(r.missing)
            seg.bands[r.band] += 1
            flags.update(r.flags)
            name, email = r.csm
            key = (name if email is None else "", email)
            csm = book.setdefault(key, CsmRow(name, email))
            csm.accounts += 1
            csm.arr += r.arr or 0.0
            band = r.band
            if band == mapping.health.red:
                csm.red += 1
            elif band == mapping.health.green:
                csm.green += 1
            elif band == mapping.health.unknown:
                csm.unknown += 1
            else:
                csm.yellow += 1
        cfg = mapping.csm_book
        for csm in book.values():
            if csm.email is None and csm.name == NO_CSM:
                continue
            if csm.accounts > cfg.max_accounts:
                csm.overloaded.append(
                    f"{csm.accounts} accounts, more than the {cfg.max_accounts} of "
                    "csm_book.max_accounts"
                )
            if cfg.max_arr is not None and csm.arr > cfg.max_arr:
                csm.overloaded.append(
                    f"ARR {money(csm.arr)}, more than the {money(cfg.max_arr)} of csm_book.max_arr"
                )
        ordered = sorted(
            book.values(), key=lambda c: (c.name == NO_CSM, -c.accounts, c.name.lower())
        )
        return cls(
            generated_at=now or utcnow(),
            as_of=as_of,
            accounts=sorted(rows, key=lambda r: (r.name.lower(), r.account_id)),
            segments=[s for s in segments.values() if s.accounts],
            csm_book=ordered,
            flags=sorted(flags.items(), key=lambda kv: (-kv[1], kv[0])),
            roles={k: r.name for k, r in mapping.roles.items()},
            required={seg: mapping.required_for(seg) for seg in segments},
            max_accounts=cfg.max_accounts,
            max_arr=cfg.max_arr,
        )


# --- formatting -------------------------------------------------------------------------------
def money(value: float | None) -> str:
    """ARR as people write it: $1,234,567 (no decimals, no ``120000.0``)."""
    if value is None:
        return "-"
    return f"${value:,.0f}"


def pct(value: float) -> str:
    return f"{value:.0f}%"


def stamp(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "no completed run yet"


def score_text(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


# --- terminal ---------------------------------------------------------------------------------
def render_table(console: Console, report: AuditReport) -> None:
    console.print(
        f"Account-team coverage as of {stamp(report.as_of)} "
        f"({len(report.accounts)} accounts, ARR {money(report.total.arr)})",
        highlight=False,
    )
    roles = sorted({k for keys in report.required.values() for k in keys})
    table = Table(title="Coverage by segment")
    for col in ("segment", "accounts", "ARR", "covered"):
        table.add_column(col, justify="left" if col == "segment" else "right")
    for key in roles:
        table.add_column(f"no {key}", justify="right")
    table.add_column("missing required", justify="right")
    for col in ("Red", "Yellow", "Green", "flagged"):
        table.add_column(col, justify="right")
    total = report.total
    for seg in [*report.segments, total]:
        table.add_row(
            seg.segment,
            str(seg.accounts),
            money(seg.arr),
            pct(seg.coverage),
            *[
                str(seg.missing.get(k, 0))
                if seg is total or k in report.required.get(seg.segment, [])
                else "-"
                for k in roles
            ],
            str(seg.accounts - seg.covered),
            str(seg.bands.get("Red", 0)),
            str(seg.bands.get("Yellow", 0)),
            str(seg.bands.get("Green", 0)),
            str(seg.flagged),
        )
    console.print(table)
    render_csm_book(console, report)
    if report.flags:
        console.print(
            "Risk flags: " + ", ".join(f"{name} {n}" for name, n in report.flags),
            highlight=False,
        )


def render_csm_book(console: Console, report: AuditReport) -> None:
    book = Table(title=f"CSM book of business (load limit {report.max_accounts} accounts)")
    for col in ("CSM", "e-mail", "accounts", "ARR", "Red", "Yellow", "Green", "load"):
        book.add_column(col, justify="left" if col in ("CSM", "e-mail", "load") else "right")
    for c in report.csm_book:
        book.add_row(
            escape(c.name),
            escape(c.email or ""),
            str(c.accounts),
            money(c.arr),
            str(c.red),
            str(c.yellow),
            str(c.green),
            "[bold red]CSM_OVERLOADED[/]"
            if c.overloaded
            else ("-" if c.email is None and c.name == NO_CSM else "ok"),
        )
    console.print(book)
    for line in report.overloaded_lines():
        console.print(escape(line), highlight=False)


# --- the HTML page ----------------------------------------------------------------------------
def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


_CSS = """
*{box-sizing:border-box}
body{margin:0;font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
color:#1f2933;background:#f5f7fa}
main{max-width:1360px;margin:0 auto;padding:20px 20px 40px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:17px;margin:0 0 10px}
.muted{color:#616e7c}
.cards{display:grid;grid-template-columns:repeat(6,1fr);gap:12px;margin:16px 0}
.card{background:#fff;border:1px solid #e4e7eb;border-radius:8px;padding:12px 14px}
.card .v{font-size:22px;font-weight:600}.card .l{color:#616e7c;font-size:12px}
.grid{display:grid;grid-template-columns:repeat(3,1fr);gap:12px;margin-bottom:12px}
.panel{background:#fff;border:1px solid #e4e7eb;border-radius:8px;padding:14px;margin-bottom:12px;
min-width:0}
.panel svg{display:block;width:100%;height:auto}
table{border-collapse:collapse;width:100%}
th,td{padding:5px 8px;border-bottom:1px solid #e4e7eb;text-align:left;vertical-align:top}
th{background:#f0f3f7;font-weight:600;font-size:12px;white-space:nowrap}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
#accounts{table-layout:fixed;font-size:12.5px}
#accounts td{overflow-wrap:anywhere}
#accounts th{cursor:pointer;user-select:none}
#accounts th[aria-sort=ascending]::after{content:" \\25B2"}
#accounts th[aria-sort=descending]::after{content:" \\25BC"}
.badge{display:inline-block;padding:1px 7px;border-radius:10px;color:#fff;font-size:12px;
white-space:nowrap}
.flag{display:inline-block;background:#eef2f7;border-radius:4px;padding:0 4px;margin:1px;
font-size:11px}
.miss{color:#b42318;font-weight:600}
.over{color:#b42318;font-weight:700}
.filters{display:flex;gap:10px;align-items:center;flex-wrap:wrap;margin-bottom:8px}
.filters input[type=search]{width:280px;padding:5px 8px}
.legend span{display:inline-block;margin-right:12px;font-size:12px}
.legend i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:4px}
a{color:#1d4ed8;text-decoration:none}a:hover{text-decoration:underline}
"""

_JS = """
(function(){
  var table=document.getElementById('accounts');
  var body=table.tBodies[0];
  var heads=table.tHead.rows[0].cells;
  function key(row,i,num){
    var c=row.cells[i];var v=c.getAttribute('data-v');
    if(v===null){v=c.textContent.trim();}
    if(num){var f=parseFloat(v);return isNaN(f)?-Infinity:f;}
    return v.toLowerCase();
  }
  Array.prototype.forEach.call(heads,function(th,i){
    th.addEventListener('click',function(){
      var num=th.getAttribute('data-type')==='num';
      var asc=th.getAttribute('aria-sort')!=='ascending';
      Array.prototype.forEach.call(heads,function(h){h.removeAttribute('aria-sort');});
      th.setAttribute('aria-sort',asc?'ascending':'descending');
      var rows=Array.prototype.slice.call(body.rows);
      rows.sort(function(a,b){
        var x=key(a,i,num),y=key(b,i,num);
        if(x<y){return asc?-1:1;} if(x>y){return asc?1:-1;} return 0;
      });
      rows.forEach(function(r){body.appendChild(r);});
    });
  });
  var q=document.getElementById('q'),seg=document.getElementById('seg'),
      band=document.getElementById('band'),miss=document.getElementById('missing'),
      count=document.getElementById('shown');
  function apply(){
    var text=q.value.trim().toLowerCase(),s=seg.value,b=band.value,m=miss.checked,n=0;
    Array.prototype.forEach.call(body.rows,function(r){
      var ok=(!text||r.textContent.toLowerCase().indexOf(text)>=0)&&
        (!s||r.getAttribute('data-segment')===s)&&(!b||r.getAttribute('data-band')===b)&&
        (!m||r.getAttribute('data-missing')==='1');
      r.hidden=!ok; if(ok){n++;}
    });
    count.textContent=n;
  }
  [q,seg,band,miss].forEach(function(el){el.addEventListener('input',apply);
    el.addEventListener('change',apply);});
  apply();
})();
"""


def _bar_chart(
    title: str, items: list[tuple[str, float, str]], *, unit: str = "", max_value: float = 0
) -> str:
    """Horizontal bars: (label, value, colour); an accessible inline SVG."""
    width, left, row = 420, 130, 26
    height = max(1, len(items)) * row + 10
    top = max([max_value, *(v for _, v, _ in items)]) or 1
    parts = [
        f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="{_e(title)}" '
        f'class="chart"><title>{_e(title)}</title>'
    ]
    for i, (label, value, colour) in enumerate(items):
        y = 5 + i * row
        w = (width - left - 60) * value / top
        parts.append(
            f'<text x="{left - 8}" y="{y + 16}" text-anchor="end" font-size="12" '
            f'fill="#323f4b">{_e(label)}</text>'
            f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{row - 8}" rx="3" '
            f'fill="{colour}"><title>{_e(label)}: {value:g}{unit}</title></rect>'
            f'<text x="{left + w + 6:.1f}" y="{y + 16}" font-size="12" fill="#323f4b">'
            f"{value:.0f}{_e(unit)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _stacked_health(report: AuditReport) -> str:
    """Red / Yellow / Green / Unknown per segment and overall, as 100 % stacked bars."""
    rows = [*report.segments, report.total]
    width, left, row = 420, 110, 30
    height = len(rows) * row + 10
    span = width - left - 10
    parts = [
        f'<svg viewBox="0 0 {width} {height}" role="img" '
        'aria-label="Health distribution by segment" class="chart">'
        "<title>Health distribution by segment</title>"
    ]
    for i, seg in enumerate(rows):
        y = 5 + i * row
        parts.append(
            f'<text x="{left - 8}" y="{y + 17}" text-anchor="end" font-size="12" '
            f'fill="#323f4b">{_e(seg.segment)}</text>'
        )
        x = float(left)
        for band, colour in BAND_COLOURS.items():
            n = seg.bands.get(band, 0)
            if not n or not seg.accounts:
                continue
            w = span * n / seg.accounts
            parts.append(
                f'<rect x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="{row - 8}" '
                f'fill="{colour}" data-band="{_e(band)}"><title>{_e(seg.segment)}: {n} '
                f"{_e(band)} ({100 * n / seg.accounts:.0f}%)</title></rect>"
            )
            if w > 22:
                parts.append(
                    f'<text x="{x + w / 2:.1f}" y="{y + 17}" text-anchor="middle" '
                    f'font-size="11" fill="#fff">{n}</text>'
                )
            x += w
    parts.append("</svg>")
    return "".join(parts)


def _link(url: str | None, text: str) -> str:
    if not url:
        return _e(text)
    return f'<a href="{_e(url)}" target="_blank" rel="noopener noreferrer">{_e(text)}</a>'


def _person(member: dict[str, Any] | None) -> str:
    if not member:
        return ""
    name = member.get("name") or member.get("email") or ""
    title = member.get("email") or ""
    inactive = " (inactive)" if member.get("inactive") else ""
    return f'<span title="{_e(title)}">{_e(name)}{inactive}</span>'


def render_html(report: AuditReport) -> str:
    total = report.total
    roles = report.roles
    required_keys = [k for k in roles if any(k in v for v in report.required.values())]
    out: list[str] = []
    w = out.append
    w(
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">"
        f"<title>teamsync audit {_e(stamp(report.as_of))}</title>"
        f"<style>{_CSS}</style></head><body><main>"
    )
    w(
        "<header><h1>Account-team coverage</h1>"
        f'<p class="muted">As of <strong id="as-of">{_e(stamp(report.as_of))}</strong> '
        f"(the last completed sync run) · generated {_e(stamp(report.generated_at))} by "
        "teamsync</p></header>"
    )
    red = total.bands.get("Red", 0)
    cards = [
        ("Accounts", f"{total.accounts:,}"),
        ("Customers", f"{total.customers:,}"),
        ("ARR", money(total.arr)),
        ("Fully covered", pct(total.coverage)),
        ("Red health", f"{red:,}"),
        ("With risk flags", f"{total.flagged:,}"),
    ]
    w('<section class="cards">')
    for label, value in cards:
        w(
            f'<div class="card"><div class="v">{_e(value)}</div>'
            f'<div class="l">{_e(label)}</div></div>'
        )
    w("</section>")

    # Charts
    w('<section class="grid" id="charts">')
    w('<div class="panel"><h2>Coverage by segment</h2>')
    w(
        _bar_chart(
            "Accounts with every required role, by segment",
            [(s.segment, s.coverage, "#3b82f6") for s in report.segments],
            unit="%",
            max_value=100,
        )
    )
    w("</div>")
    w('<div class="panel"><h2>Health (Red / Yellow / Green)</h2>')
    w(_stacked_health(report))
    w('<div class="legend">')
    for band, colour in BAND_COLOURS.items():
        w(f'<span><i style="background:{colour}"></i>{_e(band)} {total.bands.get(band, 0)}</span>')
    w("</div></div>")
    w('<div class="panel"><h2>Risk flags by kind</h2>')
    w(
        _bar_chart(
            "Accounts per risk flag",
            [(name, float(n), "#7c3aed") for name, n in report.flags[:10]],
        )
        if report.flags
        else "<p>No account carries a risk flag.</p>"
    )
    w("</div></section>")

    # Coverage table
    w('<section class="panel"><h2>Coverage and missing required roles by segment</h2>')
    w(
        '<table id="coverage"><thead><tr><th>Segment</th><th class="n">Accounts</th>'
        '<th class="n">Customers</th><th class="n">ARR</th><th class="n">Covered</th>'
    )
    for key in required_keys:
        w(f'<th class="n" title="{_e(roles[key])}">Missing {_e(key)}</th>')
    w('<th class="n">Missing any</th>')
    for band in BAND_COLOURS:
        w(f'<th class="n">{_e(band)}</th>')
    w('<th class="n">Flagged</th></tr></thead><tbody>')
    for seg in [*report.segments, total]:
        w(
            f'<tr><td>{_e(seg.segment)}</td><td class="n">{seg.accounts:,}</td>'
            f'<td class="n">{seg.customers:,}</td><td class="n">{_e(money(seg.arr))}</td>'
            f'<td class="n">{_e(pct(seg.coverage))}</td>'
        )
        for key in required_keys:
            needed = seg.segment == total.segment or key in report.required.get(seg.segment, [])
            value = f"{seg.missing.get(key, 0):,}" if needed else "not required"
            w(f'<td class="n">{_e(value)}</td>')
        w(f'<td class="n">{seg.accounts - seg.covered:,}</td>')
        for band in BAND_COLOURS:
            w(f'<td class="n">{seg.bands.get(band, 0):,}</td>')
        w(f'<td class="n">{seg.flagged:,}</td></tr>')
    w("</tbody></table></section>")

    # CSM book of business
    w(
        '<section class="panel"><h2>CSM book of business</h2>'
        f'<p class="muted">Load limit: {report.max_accounts} accounts per CSM'
        + (f" or {_e(money(report.max_arr))} ARR" if report.max_arr else "")
        + " (mapping <code>csm_book</code>; reporting only).</p>"
        '<table id="csm-book"><thead><tr><th>CSM</th><th class="n">Accounts</th>'
        '<th class="n">ARR</th><th class="n">Red</th><th class="n">Yellow</th>'
        '<th class="n">Green</th><th class="n">Unknown</th><th>Load</th></tr></thead><tbody>'
    )
    for c in report.csm_book:
        load = (
            f'<span class="over" title="{_e("; ".join(c.overloaded))}">CSM_OVERLOADED</span>'
            if c.overloaded
            else ("-" if c.email is None and c.name == NO_CSM else "ok")
        )
        who = _e(c.name) + (f' <span class="muted">{_e(c.email)}</span>' if c.email else "")
        w(
            f'<tr><td>{who}</td><td class="n">{c.accounts:,}</td>'
            f'<td class="n">{_e(money(c.arr))}</td><td class="n">{c.red:,}</td>'
            f'<td class="n">{c.yellow:,}</td><td class="n">{c.green:,}</td>'
            f'<td class="n">{c.unknown:,}</td><td>{load}</td></tr>'
        )
    w("</tbody></table></section>")

    # Accounts
    segments = [s.segment for s in report.segments]
    w(
        '<section class="panel"><h2>Accounts</h2><div class="filters">'
        '<input type="search" id="q" placeholder="Filter: name, person, flag…" '
        'aria-label="Filter accounts">'
        '<select id="seg" aria-label="Segment"><option value="">All segments</option>'
        + "".join(f'<option value="{_e(s)}">{_e(s)}</option>' for s in segments)
        + '</select><select id="band" aria-label="Health"><option value="">All health</option>'
        + "".join(f'<option value="{_e(b)}">{_e(b)}</option>' for b in BAND_COLOURS)
        + '</select><label><input type="checkbox" id="missing"> missing a required role</label>'
        f'<span class="muted"><span id="shown">{len(report.accounts)}</span> of '
        f"{len(report.accounts)} shown · click a column to sort</span></div>"
    )
    cols = [
        ("Account", "text", "19%"),
        ("Segment", "text", "8%"),
        ("Lifecycle", "text", "7%"),
        ("ARR", "num", "8%"),
        ("Health", "num", "7%"),
        ("Renewal", "num", "7%"),
        ("AE / SAE", "text", "10%"),
        ("CSM", "text", "10%"),
        ("Missing", "text", "8%"),
        ("Risk flags", "text", "16%"),
    ]
    w('<table id="accounts"><colgroup>')
    for _, _, width in cols:
        w(f'<col style="width:{width}">')
    w("</colgroup><thead><tr>")
    for name, kind, _ in cols:
        w(f'<th data-type="{kind}" scope="col">{_e(name)}</th>')
    w("</tr></thead><tbody>")
    for r in report.accounts:
        colour = BAND_COLOURS.get(r.band, BAND_COLOURS["Unknown"])
        owner = r.team.get("SAE") or r.team.get("AE")
        gs = (
            " · " + _link(r.gainsight_link, "Gainsight")
            if r.gainsight_link
            else (' · <span class="muted">no company</span>' if not r.company_gsid else "")
        )
        renewal = (
            f'<td class="n" data-v="{r.days_to_renewal}" title="{_e(r.renewal_date or "")}">'
            + (
                f"{r.days_to_renewal} d"
                if r.days_to_renewal >= 0
                else f"{-r.days_to_renewal} d overdue"
            )
            + "</td>"
            if r.days_to_renewal is not None
            else '<td class="n" data-v="">-</td>'
        )
        w(
            f'<tr data-segment="{_e(r.segment)}" data-band="{_e(r.band)}" '
            f'data-missing="{1 if r.missing else 0}">'
            f"<td>{_link(r.salesforce_link, r.name)}{gs}</td>"
            f"<td>{_e(r.segment)}</td><td>{_e(r.lifecycle)}</td>"
            f'<td class="n" data-v="{r.arr if r.arr is not None else ""}">{_e(money(r.arr))}'
            + ("" if not r.qualifying else ' <span class="muted" title="CSM-qualifying">Q</span>')
            + "</td>"
            f'<td class="n" data-v="{r.score if r.score is not None else ""}">'
            f'<span class="badge" style="background:{colour}">'
            + (f"{_e(score_text(r.score))} " if r.score is not None else "")
            + f"{_e(r.band)}</span></td>"
            f"{renewal}"
            f"<td>{_person(owner)}</td><td>{_person(r.team.get('CSM'))}</td>"
            f'<td class="miss">{_e(", ".join(r.missing))}</td>'
            "<td>" + "".join(f'<span class="flag">{_e(f)}</span>' for f in r.flags) + "</td></tr>"
        )
    w("</tbody></table></section>")
    w(f"</main><script>{_JS}</script></body></html>\n")
    return "".join(out)
