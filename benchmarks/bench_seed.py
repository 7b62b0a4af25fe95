"""Seed a large synthetic org into both emulators, then stream every Opportunity back.

    python benchmarks/bench_seed.py --accounts 100000 --seed 7

Prints one JSON object:

* ``seeding``: seconds, peak RSS (``resource.getrusage``, MB) and rows per object;
* ``streaming``: ``SELECT Id, Name, AccountId, StageName, CloseDate, Amount, SystemModstamp FROM
  Opportunity`` served over HTTPS and read page by page with simple-salesforce's
  ``query_all_iter`` (a client-credentials token, the emulator CA trusted via
  ``connectors.tls``): pages, rows, seconds, seconds per page, and how much the resident set
  grew while streaming (sampled every page);
* ``targets``: each target with its limit and whether it was met.

Exits 1 when a target is missed: seeding slower than ``--max-seed-seconds`` (60) or above
``--max-rss-mb`` (2,048) at its peak, a row count that differs from the live opportunities, or
a resident-set growth while streaming above ``--max-stream-growth-mb`` (200; the whole result
held as simple-salesforce records would need several times that).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from simple_salesforce.api import Salesforce

from connectors.tls import requests_session
from emulators.gainsight import GainsightEmulator
from emulators.http import EmulatorServer
from emulators.requestlog import RequestLog
from emulators.salesforce import SalesforceEmulator
from emulators.store import Clock
from emulators.synthetic import seed_emulators
from emulators.tls import TlsMaterial

SOQL = "SELECT Id, Name, AccountId, StageName, CloseDate, Amount, SystemModstamp FROM Opportunity"
API_VERSION = "62.0"
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def peak_rss_mb() -> float:
    """Peak resident set of this process so far (Linux reports kilobytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform != "darwin" else peak / (1024 * 1024)


def rss_mb() -> float:
    """Current resident set (Linux /proc; elsewhere the peak, which is an upper bound)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * _PAGE / (1024 * 1024)
    except OSError:
        return peak_rss_mb()


def seed(accounts: int, seed_value: int) -> tuple[SalesforceEmulator, dict[str, Any]]:
    clock = Clock()
    log = RequestLog()
    sf = SalesforceEmulator(clock=clock, log=log)
    gs = GainsightEmulator(clock=clock, log=log)
    rss_before = rss_mb()
    started = time.perf_counter()
    summary = seed_emulators(sf, gs, accounts=accounts, seed=seed_value)
    seconds = time.perf_counter() - started
    return sf, {
        "accounts": accounts,
        "seed": seed_value,
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "rss_before_mb": round(rss_before, 1),
        "rss_after_mb": round(rss_mb(), 1),
        "counts": summary.counts,
    }


def stream(sf: SalesforceEmulator, workdir: Path) -> dict[str, Any]:
    tls = TlsMaterial.create(workdir / "tls")
    table = sf.tables["Opportunity"]
    deleted_pos = table.pos["isdeleted"]
    live = sum(1 for row in table.rows.values() if not row[deleted_pos])
    with EmulatorServer(sf, ssl_context=tls.server_context) as server:
        session = requests_session(tls.ca_path)
        creds = sf.credentials
        token = session.post(
            f"{server.url}/services/oauth2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": creds.client_id,
                "client_secret": creds.client_secret,
            },
            timeout=30,
        )
        token.raise_for_status()
        client = Salesforce(
            instance_url=server.url,
            session_id=token.json()["access_token"],
            version=API_VERSION,
            session=session,
        )
        sf.log.reset()
        gc.collect()
        base = rss_mb()
        highest = base
        rows = 0
        first_page_seconds: float | None = None
        started = time.perf_counter()
        for _record in client.query_all_iter(SOQL):
            rows += 1
            if rows == 1:
                first_page_seconds = time.perf_counter() - started
            if rows % 2000 == 0:  # the emulator's page size: one sample a page
                highest = max(highest, rss_mb())
        seconds = time.perf_counter() - started
        highest = max(highest, rss_mb())
        pages = sf.log.count(api="salesforce", kind="read")
    return {
        "soql": SOQL,
        "pages": pages,
        "rows": rows,
        "live_opportunities": live,
        "seconds": round(seconds, 2),
        "seconds_per_page": round(seconds / pages, 4) if pages else None,
        "first_page_seconds": round(first_page_seconds or 0.0, 3),
        "rss_at_start_mb": round(base, 1),
        "rss_growth_mb": round(highest - base, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--max-seed-seconds", type=float, default=60.0)
    parser.add_argument("--max-rss-mb", type=float, default=2048.0)
    parser.add_argument("--max-stream-growth-mb", type=float, default=200.0)
    parser.add_argument("--skip-stream", action="store_true", help="Only measure seeding.")
    args = parser.parse_args(argv)

    sf, seeding = seed(args.accounts, args.seed)
    report: dict[str, Any] = {"seeding": seeding}
    targets = {
        "seed_seconds": (seeding["seconds"], args.max_seed_seconds),
        "peak_rss_mb": (seeding["peak_rss_mb"], args.max_rss_mb),
    }
    ok = all(value < limit for value, limit in targets.values())
    if not args.skip_stream:
        with tempfile.TemporaryDirectory(prefix="teamsync-bench-") as tmp:
            streaming = stream(sf, Path(tmp))
        report["streaming"] = streaming
        targets["stream_rss_growth_mb"] = (streaming["rss_growth_mb"], args.max_stream_growth_mb)
        rows_ok = streaming["rows"] == streaming["live_opportunities"]
        ok = ok and rows_ok and streaming["rss_growth_mb"] < args.max_stream_growth_mb
        report["rows_match_live_opportunities"] = rows_ok
    report["targets"] = {
        name: {"value": value, "limit": limit, "met": value < limit}
        for name, (value, limit) in targets.items()
    }
    report["ok"] = ok
    print(json.dumps(report, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
