"""Peer: dlt's ``rest_api`` source into duckdb (runs in dlt's own virtual environment).

    <dlt venv>/bin/python benchmarks/contenders/dlt_rest_api.py --spec spec.json --db out.duckdb

Same ``spec.json`` as raw_sf_sqlite.py; the token comes from ``BENCH_SF_TOKEN``.  One
``rest_api`` resource per query: ``GET /services/data/vXX/query`` (``queryAll`` where the
query includes deleted rows) with ``q``, records under ``records``, the ``nextRecordsUrl``
link paginator, bearer auth; the ``attributes`` member is dropped so that each table holds
the same fields as the other contenders.  Write disposition ``append`` (the cheapest dlt
has; the destination starts empty); extract, normalize and load all count.  Prints one JSON
line: rows loaded, wall and CPU seconds of ``pipeline.run``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _harness import child_footer


def _drop_attributes(record: dict[str, Any]) -> dict[str, Any]:
    record.pop("attributes", None)
    return record


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spec", required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--write-disposition", default="append")
    args = parser.parse_args()
    spec = json.loads(Path(args.spec).read_text(encoding="utf-8"))
    os.environ["REQUESTS_CA_BUNDLE"] = spec["ca_path"]
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")

    import dlt
    from dlt.sources.rest_api import rest_api_source

    resources = []
    for q in spec["queries"]:
        resource: dict[str, Any] = {
            "name": q["object"].lower(),
            "endpoint": {
                "path": f"services/data/v{spec['api_version']}/"
                + ("queryAll" if q["include_deleted"] else "query"),
                "params": {"q": q["soql"]},
                "data_selector": "records",
                "paginator": {"type": "json_link", "next_url_path": "nextRecordsUrl"},
            },
            "processing_steps": [{"map": _drop_attributes}],
            "write_disposition": args.write_disposition,
        }
        if args.write_disposition == "merge":
            resource["primary_key"] = "Id"
        resources.append(resource)
    batch = spec["queries"][0]["batch_size"]
    source = rest_api_source(
        {
            "client": {
                "base_url": spec["instance_url"].rstrip("/") + "/",
                "auth": {"type": "bearer", "token": os.environ["BENCH_SF_TOKEN"]},
                "headers": {"Sforce-Query-Options": f"batchSize={batch}"},
            },
            "resources": resources,  # type: ignore[typeddict-item]
        }
    )
    pipeline = dlt.pipeline(
        pipeline_name="bench_sf",
        pipelines_dir=str(Path(args.workdir) / "pipelines"),
        destination=dlt.destinations.duckdb(args.db),
        dataset_name="sf",
        progress="log" if os.environ.get("BENCH_DLT_PROGRESS") else None,
    )
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    pipeline.run(source)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0

    import duckdb

    rows_by_object: dict[str, int] = {}
    with duckdb.connect(args.db, read_only=True) as con:
        for q in spec["queries"]:
            name = q["object"].lower()
            rows_by_object[q["object"]] = int(
                con.execute(f'SELECT COUNT(*) FROM sf."{name}"').fetchone()[0]  # noqa: S608
            )
    print(
        json.dumps(
            {
                "contender": "dlt",
                "rows": sum(rows_by_object.values()),
                "rows_by_object": rows_by_object,
                "wall": round(wall, 3),
                "cpu": round(cpu, 3),
                "dlt_version": dlt.__version__,
                **child_footer(),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
