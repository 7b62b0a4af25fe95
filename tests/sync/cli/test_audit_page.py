"""The audit page and the CSM book of business: the HTML validated by a parser on every run,
rendered in headless Chromium (charts, coverage and account tables visible, sorting and
filtering work, no console errors), and the CSM book in `audit` and `status`.

Screenshots for the README (docs/audit.png, docs/plan.png) are written when
TEAMSYNC_UPDATE_DOCS=1; otherwise into the test's temporary directory.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import html5lib
import pytest
from rich.console import Console
from typer.testing import CliRunner

from emulators.runner import start_emulators
from emulators.tls import TlsMaterial
from mappings.schema import load_mapping
from sync.cli.app import app
from sync.cli.audit import AuditReport
from sync.cli.planview import describe, operation_records, render_plan_lines
from sync.engine import Engine, RunOptions
from sync.store import Store
from tests.sync.conftest import make_settings

ROOT = Path(__file__).resolve().parents[3]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("TEAMSYNC_") and key not in (
            "TEAMSYNC_TEST_DATABASE_URL",
            "TEAMSYNC_UPDATE_DOCS",
        ):
            monkeypatch.delenv(key)


@pytest.fixture(scope="module")
def synced(tls: TlsMaterial) -> Iterator[dict[str, Any]]:
    """One org, planned (for the plan screenshot), then synced; a mapping whose CSM load limit
    is low enough that some CSM is over it."""
    work = Path(tempfile.mkdtemp(prefix="teamsync-audit-"))
    mapping = work / "mapping.toml"
    shipped = (ROOT / "mappings" / "default.toml").read_text(encoding="utf-8")
    mapping.write_text(shipped.replace("max_accounts = 25", "max_accounts = 6"), encoding="utf-8")
    with start_emulators(accounts=60, seed=11, tls=tls, workdir=work / "upstream") as upstream:
        url = f"sqlite:///{work / 'teamsync.db'}"
        settings = make_settings(upstream, url, mapping=str(mapping))
        store = Store(url)
        store.upgrade()
        engine = Engine.from_settings(settings, store=store)
        planned = engine.run(RunOptions(dry_run=True, command="plan"))
        lines = describe(store, engine.mapping, operation_records(store, planned.run_id))
        Engine.from_settings(settings, store=store).run(RunOptions(allow_mass_change=True))
        env = dict(upstream.env())
        env.update(
            TEAMSYNC_DATABASE_URL=url,
            TEAMSYNC_MAPPING=str(mapping),
            TEAMSYNC_LOG_LEVEL="ERROR",
            TEAMSYNC_LOG_FORMAT="json",
        )
        yield {"upstream": upstream, "store": store, "env": env, "mapping": mapping, "plan": lines}
        store.dispose()
    shutil.rmtree(work, ignore_errors=True)


def audit_html(synced: dict[str, Any], tmp_path: Path) -> tuple[Path, str]:
    target = tmp_path / "audit.html"
    result = CliRunner().invoke(
        app, ["audit", "--format", "html", "-o", str(target)], env=synced["env"]
    )
    assert result.exit_code == 0, result.output
    return target, target.read_text(encoding="utf-8")


def visible_text(doc: str) -> str:
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", doc, flags=re.S)
    return re.sub(r"<[^>]+>", " ", body)


def test_audit_html_is_valid_self_contained_and_human(
    synced: dict[str, Any], tmp_path: Path
) -> None:
    """A strict HTML5 parser accepts the page; it loads nothing from elsewhere; it holds the
    as-of time, totals, coverage, missing roles, health colours, the CSM book, risk flags and
    every account with links to both systems; no Python reprs."""
    path, doc = audit_html(synced, tmp_path)
    html5lib.HTMLParser(strict=True, namespaceHTMLElements=False).parse(doc)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", doc.split("<tbody>", 1)[0])
    assert "<link" not in doc
    assert "Content-Security-Policy" in doc
    text = visible_text(doc)
    for repr_ in ("True", "False", "None", "nan"):
        assert not re.search(rf"\b{repr_}\b", text), repr_
    assert not re.search(r"\d\.0\b", text), "floats shown as 120000.0"
    assert re.search(r"As of\s+\d{4}-\d\d-\d\d \d\d:\d\d UTC", text)
    for section in ('id="charts"', 'id="coverage"', 'id="csm-book"', 'id="accounts"'):
        assert section in doc
    assert doc.count('class="chart"') == 3
    for band, colour in (("Red", "#d64545"), ("Yellow", "#e8b400"), ("Green", "#2e9e5b")):
        assert f'data-band="{band}"' in doc
        assert colour in doc
    assert "Missing SA" in doc
    assert "Missing CSM" in doc
    assert "CSM_OVERLOADED" in text
    report = AuditReport.build(synced["store"], load_mapping(synced["mapping"]))
    assert doc.count("<tr data-segment=") == len(report.accounts) > 50
    assert "/lightning/r/Account/" in doc
    assert "customersuccess360?cid=" in doc
    assert "$" in text


def test_audit_table_and_status_show_the_csm_book(synced: dict[str, Any]) -> None:
    """`audit` and `status` list accounts, ARR, Red and Yellow per CSM and a CSM_OVERLOADED
    line for each CSM above csm_book.max_accounts (reporting only)."""
    report = AuditReport.build(synced["store"], load_mapping(synced["mapping"]))
    over = [c for c in report.csm_book if c.overloaded]
    assert over, "the mapping's limit of 6 puts some CSM over it"
    assert all(c.accounts > 6 for c in over)
    assert all(c.accounts <= 6 for c in report.csm_book if not c.overloaded and c.email)
    assert sum(c.accounts for c in report.csm_book) == len(report.accounts)
    writes = synced["upstream"].log.count(kind="write")
    for args in (["audit"], ["status"]):
        result = CliRunner().invoke(app, args, env=synced["env"])
        assert result.exit_code == 0, result.output
        assert "CSM book of business" in result.output
        for c in over:
            assert f"CSM_OVERLOADED {c.name}" in result.output
        assert "{" not in result.output  # no raw dicts
    result = CliRunner().invoke(app, ["status", "--json"], env=synced["env"])
    book = json.loads(result.output)["csm_book"]
    assert {b["csm"] for b in book if b["overloaded"]} == {c.name for c in over}
    assert synced["upstream"].log.count(kind="write") == writes


def _docs_dir(tmp_path: Path) -> Path:
    if os.environ.get("TEAMSYNC_UPDATE_DOCS") == "1":
        (ROOT / "docs").mkdir(exist_ok=True)
        return ROOT / "docs"
    return tmp_path


def test_audit_page_in_headless_chromium(synced: dict[str, Any], tmp_path: Path) -> None:
    """Headless Chromium: charts, coverage and account tables visible; sorting and filtering
    work; the page fits 1400 px; the console shows no errors. Saves audit and plan shots."""
    if not Path(CHROMIUM).exists():
        pytest.skip(
            f"{CHROMIUM} is missing and could not be installed (.ci/run installs the "
            "Debian package chromium with apt-get)"
        )
    from playwright.sync_api import sync_playwright

    path, _ = audit_html(synced, tmp_path)
    shots = _docs_dir(tmp_path)
    problems: list[str] = []
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1400, "height": 900},
        )
        page = context.new_page()
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(path.as_uri())
        for selector in (
            "#charts svg.chart >> nth=0",
            "#charts svg.chart >> nth=2",
            "#coverage",
            "#csm-book",
            "#accounts",
            "#as-of",
        ):
            assert page.locator(selector).is_visible(), selector
        assert page.locator("#charts svg.chart rect").count() > 5
        assert page.evaluate("document.documentElement.scrollWidth") <= 1400

        def column(i: int) -> list[Any]:
            """The visible rows' sort keys (data-v) or texts in column ``i``, in order."""
            return list(
                page.eval_on_selector_all(
                    "#accounts tbody tr:not([hidden])",
                    f"rows => rows.map(r => r.cells[{i}].getAttribute('data-v') ?? "
                    f"r.cells[{i}].textContent.trim())",
                )
            )

        page.click("#accounts th:nth-child(4)")  # ARR, ascending
        arr = [float(v) for v in column(3) if v]
        assert arr == sorted(arr)
        assert page.get_attribute("#accounts th:nth-child(4)", "aria-sort") == "ascending"
        page.click("#accounts th:nth-child(4)")
        arr = [float(v) for v in column(3) if v]
        assert arr == sorted(arr, reverse=True)
        page.click("#accounts th:nth-child(1)")  # by name
        names = [n.lower() for n in column(0)]
        assert names == sorted(names)

        total = page.locator("#accounts tbody tr").count()
        page.select_option("#seg", "SMB")
        segs = column(1)
        assert segs
        assert set(segs) == {"SMB"}
        assert len(segs) < total
        assert page.inner_text("#shown") == str(len(segs))
        page.select_option("#seg", "")
        first = page.inner_text("#accounts tbody tr >> nth=0 >> a >> nth=0").lower()
        page.fill("#q", first)
        shown = column(0)
        assert 1 <= len(shown) < total
        assert all(first in s.lower() for s in shown)
        page.fill("#q", "")
        page.check("#missing")
        assert 0 < len(column(0)) < total
        page.uncheck("#missing")
        assert page.locator("#accounts tbody tr:not([hidden])").count() == total
        page.set_viewport_size({"width": 1400, "height": 1250})
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(shots / "audit.png"), full_page=False)

        # The plan a reviewer approves, rendered as on a terminal.
        console = Console(record=True, width=150, force_terminal=True, file=io.StringIO())
        lines = synced["plan"]
        showcase = {  # an account losing a member, one getting a CTA, and the first one
            next(ln.account_id for ln in lines if ln.action == "delete"),
            next(ln.account_id for ln in lines if ln.object == "CallToAction"),
            lines[0].account_id,
        }
        render_plan_lines(
            console,
            [ln for ln in lines if ln.account_id in showcase],
            fmt="table",
            title="Plan (nothing is written)",
            stream=console.file,
            notes=[
                "Approve it: teamsync plan --out plan.json; apply exactly it: "
                "teamsync run --plan plan.json"
            ],
        )
        plan_html = tmp_path / "plan.html"
        plan_html.write_text(console.export_html(inline_styles=True), encoding="utf-8")
        page.set_viewport_size({"width": 1400, "height": 900})
        page.goto(plan_html.as_uri())
        assert "remove" in page.inner_text("body")
        page.screenshot(path=str(shots / "plan.png"), full_page=True)
        context.close()
    assert problems == []
    assert (shots / "audit.png").stat().st_size > 10_000
