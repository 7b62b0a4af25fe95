"""Peer: the plain simple-salesforce + sqlite3 script (no teamsync code).

    python benchmarks/contenders/raw_sf_sqlite.py --spec spec.json --db out.sqlite

``spec.json`` (written by bench_pull.py): ``instance_url``, ``api_version``, ``ca_path``,
``queries`` (``object``, ``soql``, ``fields``, ``include_deleted``, ``batch_size``); the
session token comes from ``BENCH_SF_TOKEN``.  Each query is read with ``query_all_iter``
(REST, ``Sforce-Query-Options: batchSize``) and every page of rows is written with one
``executemany`` of one prepared ``INSERT OR REPLACE`` into a table of its own, one commit
per page.  Prints one JSON line: rows, wall and CPU seconds of the pull-and-store.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import time
from pathlib import Path

import requests
from simple_salesforce.api import Salesforce

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _harness import child_footer


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spec", required=True)
    parser.add_argument("--db", required=True)
    args = parser.parse_args()
    spec = json.loads(Path(args.spec).read_text(encoding="utf-8"))

    session = requests.Session()
    session.verify = spec["ca_path"]
    session.trust_env = False  # REQUESTS_CA_BUNDLE would replace the CA above
    sf = Salesforce(
        instance_url=spec["instance_url"],
        session_id=os.environ["BENCH_SF_TOKEN"],
        version=spec["api_version"],
        session=session,
    )
    db = sqlite3.connect(args.db)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")

    cpu0 = time.process_time()
    t0 = time.perf_counter()
    rows_by_object: dict[str, int] = {}
    for q in spec["queries"]:
        fields: list[str] = q["fields"]
        table = q["object"]
        cols = ", ".join(f'"{f}"' for f in fields)
        db.execute(f'CREATE TABLE IF NOT EXISTS "{table}" ({cols}, PRIMARY KEY ("Id"))')
        marks = ", ".join("?" * len(fields))
        insert = f'INSERT OR REPLACE INTO "{table}" ({cols}) VALUES ({marks})'  # noqa: S608
        headers = {"Sforce-Query-Options": f"batchSize={q['batch_size']}"}
        page: list[tuple[object, ...]] = []
        n = 0
        for rec in sf.query_all_iter(
            q["soql"], include_deleted=q["include_deleted"], headers=headers
        ):
            page.append(tuple(rec.get(f) for f in fields))
            if len(page) >= q["batch_size"]:
                db.executemany(insert, page)
                db.commit()
                n += len(page)
                page = []
        if page:
            db.executemany(insert, page)
            db.commit()
            n += len(page)
        rows_by_object[table] = n
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    db.close()
    print(
        json.dumps(
            {
                "contender": "raw",
                "rows": sum(rows_by_object.values()),
                "rows_by_object": rows_by_object,
                "wall": round(wall, 3),
                "cpu": round(cpu, 3),
                **child_footer(),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
