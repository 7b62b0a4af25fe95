"""Contender: teamsync's own pull-and-store of the Salesforce streams into a fresh store.

    TEAMSYNC_...=... python benchmarks/contenders/teamsync_pull.py \
        --objects User,Account,Opportunity,AccountTeamMember

Settings come from the ``TEAMSYNC_*`` environment (bench_pull.py sets them for the emulators
and a fresh SQLite file).  The store's schema is created before the clock starts; the timed
section is ``Puller.pull`` of the named streams (a first, full-history pull with everything a
pull does: counts, watermarks, raw snapshots).  Prints one JSON line: rows stored, wall and
CPU seconds, API calls by operation.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))
from _harness import child_footer


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", default="User,Account,Opportunity,AccountTeamMember")
    parser.add_argument("--profile", help="write a pyinstrument HTML profile of the pull here")
    args = parser.parse_args()

    from sqlalchemy import func, select

    from config.settings import load_settings
    from mappings.schema import load_mapping
    from sync.engine import build_clients
    from sync.logging import configure_logging
    from sync.stages.pull import Puller
    from sync.store import Store
    from sync.store.models import RawRecord

    configure_logging("json", "ERROR")
    settings = load_settings()
    store = Store(settings.database_url)
    store.upgrade()
    mapping = load_mapping(settings.mapping)
    sf, gs = build_clients(settings)
    objects = [o.strip() for o in args.objects.split(",") if o.strip()]
    puller = Puller(store, sf, gs, mapping)

    profiler: Any = None
    if args.profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.002)
        profiler.start()
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    stats = puller.pull(only=objects)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    if profiler is not None:
        profiler.stop()
        Path(args.profile).write_text(profiler.output_html(), encoding="utf-8")
        Path(args.profile).with_suffix(".txt").write_text(
            profiler.output_text(unicode=True, show_all=False), encoding="utf-8"
        )

    with store.session() as s:
        stored = {
            obj: int(s.scalar(select(func.count()).where(RawRecord.object == obj)) or 0)
            for obj in objects
        }
    print(
        json.dumps(
            {
                "contender": "teamsync",
                "rows": sum(v.records for v in stats.values()),
                "rows_by_object": {k.split(".", 1)[1]: v.records for k, v in stats.items()},
                "stored": stored,
                "wall": round(wall, 3),
                "cpu": round(cpu, 3),
                "salesforce_calls": dict(getattr(sf.usage, "calls", {}) or {}),
                **child_footer(),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
