"""A full sync of a synthetic org, then a no-op run, counting every API call.

    python benchmarks/bench_sync.py --accounts 5000 --seed 7

Runs ``teamsync run --allow-mass-change`` (the engine, the real clients, both emulators over
HTTPS, a fresh SQLite store) twice:

* first with Bulk API 2.0 switched off (``--bulk-threshold`` huge), to show that every write
  kind costs exactly ``ceil(n / 200)`` sObject Collections calls (Salesforce) and
  ``ceil(n / 50)`` calls (Gainsight), where *n* is the number of records written;
* then a second run, which must make no write call at all;
* and, unless ``--skip-bulk``, the same first run on a fresh org with the default Bulk
  threshold (2,000 operations of one kind), to show the calls Bulk 2.0 saves.

Prints one JSON object (operations, write calls and the floor per kind, reads, seconds, peak
RSS) and exits 1 if any kind is above its floor or the second run writes anything.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from config.settings import load_settings
from emulators.runner import start_emulators
from sync.cli.demo import mapping_with_fallback_owner, synthetic_fallback_owner
from sync.engine import Engine, RunOptions
from sync.logging import configure_logging
from sync.store import Store


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def one_org(accounts: int, seed: int, bulk_threshold: int, workdir: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"bulk_threshold": bulk_threshold}
    started = time.monotonic()
    with start_emulators(accounts=accounts, seed=seed, workdir=workdir / "emu") as emu:
        out["seed_seconds"] = round(time.monotonic() - started, 2)
        values = {k.removeprefix("TEAMSYNC_").lower(): v for k, v in emu.env().items()}
        values.update(
            database_url=f"sqlite:///{workdir / 'teamsync.db'}",
            salesforce_bulk_threshold=bulk_threshold,
            log_level="ERROR",
        )
        owner = synthetic_fallback_owner(emu)  # as in the demo: CTAs nobody else can own
        if owner:
            values["mapping"] = mapping_with_fallback_owner(workdir, owner)
        settings = load_settings(**values)
        store = Store(settings.database_url)
        store.upgrade()
        runs = []
        for label, options in (
            ("first", RunOptions(allow_mass_change=True)),
            ("second", RunOptions()),
        ):
            emu.log.reset()
            t0 = time.monotonic()
            result = Engine.from_settings(settings, store=store).run(options)
            seconds = time.monotonic() - t0
            writes = [c for c in emu.log.calls() if c.kind == "write"]
            by_op: dict[str, dict[str, int]] = {}
            for call in writes:
                key = f"{call.api}.{call.object}.{call.operation}"
                slot = by_op.setdefault(key, {"calls": 0, "records": 0})
                slot["calls"] += 1
                slot["records"] += call.records
            runs.append(
                {
                    "run": label,
                    "exit_code": result.exit_code,
                    "seconds": round(seconds, 2),
                    "plan": result.stats.plan,
                    "pushed": result.stats.as_json().get("pushed"),
                    "write_calls": len(writes),
                    "read_calls": emu.log.count(kind="read"),
                    "auth_calls": emu.log.count(kind="auth"),
                    "writes_by_operation": by_op,
                }
            )
        out["runs"] = runs
    return out


def floors(run: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
    """Compare each write kind's calls with its floor; True if all are at the floor."""
    rows = []
    ok = True
    for key, slot in sorted(run["writes_by_operation"].items()):
        api = key.split(".", 1)[0]
        per_call = 200 if api == "salesforce" else 50
        if "bulk2" in key:
            continue  # Bulk jobs are several calls per job; reported, not floored
        floor = math.ceil(slot["records"] / per_call)
        at_floor = slot["calls"] == floor
        ok = ok and at_floor
        rows.append(
            {
                "kind": key,
                "records": slot["records"],
                "calls": slot["calls"],
                "floor": floor,
                "at_floor": at_floor,
            }
        )
    return rows, ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skip-bulk", action="store_true")
    args = parser.parse_args()
    configure_logging("json", "ERROR")
    report: dict[str, Any] = {"accounts": args.accounts, "seed": args.seed}
    with tempfile.TemporaryDirectory(prefix="teamsync-bench-") as tmp:
        collections = one_org(args.accounts, args.seed, 10**9, Path(tmp) / "collections")
    table, ok = floors(collections["runs"][0])
    report["collections"] = collections
    report["floor_check"] = table
    second_writes = collections["runs"][1]["write_calls"]
    report["targets"] = {
        "every_write_kind_at_floor": ok,
        "second_run_writes": second_writes,
        "second_run_zero_writes": second_writes == 0,
    }
    if not args.skip_bulk:
        with tempfile.TemporaryDirectory(prefix="teamsync-bench-") as tmp:
            report["bulk"] = one_org(args.accounts, args.seed, 2000, Path(tmp) / "bulk")
        report["targets"]["bulk_second_run_zero_writes"] = (
            report["bulk"]["runs"][1]["write_calls"] == 0
        )
    report["peak_rss_mb"] = round(rss_mb(), 1)
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0 if all(v for k, v in report["targets"].items() if isinstance(v, bool)) else 1


if __name__ == "__main__":
    sys.exit(main())
