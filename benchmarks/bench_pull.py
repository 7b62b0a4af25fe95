"""Pull-and-store: teamsync against the raw client and dlt, in alternating rounds.

    python benchmarks/bench_pull.py --accounts 20000 --rounds 3

Seeds both emulators with a synthetic org of ``--accounts`` accounts (in this process, over
HTTPS), then, round after round (the order rotates every round), times three contenders, each
in a child process of its own, each into a fresh file:

* ``teamsync``: ``Puller.pull`` of User, Account, Opportunity and AccountTeamMember into a
  fresh SQLite store (benchmarks/contenders/teamsync_pull.py);
* ``raw``: simple-salesforce ``query_all_iter`` + sqlite3 ``executemany`` with the very same
  SOQL (fields, ORDER BY, ``queryAll`` where teamsync uses it) (contenders/raw_sf_sqlite.py);
* ``dlt``: dlt's ``rest_api`` source into duckdb with the same SOQL, in dlt's own virtual
  environment, which this script creates on first use (``--dlt-venv``; contenders/
  dlt_rest_api.py).

For each contender: rows, wall and CPU seconds of the timed section (median over rounds),
rows per second, CPU microseconds per row, peak RSS of its process, the CPU the emulators
spent serving it, and its API calls.  Then the ratios the goals are about:

* ``teamsync / raw`` wall (goal ≤ 1.3) and CPU;
* ``dlt / teamsync`` wall (goal ≥ 1.5) and CPU.

Prints one JSON object; exits 1 when a goal is missed or a contender failed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _harness import (
    CONTENDERS,
    ROOT,
    ChildResult,
    call_counts,
    emulators,
    loadavg,
    machine,
    median,
    print_json,
    ratio,
    run_child,
    salesforce_token,
)

OBJECTS = ("User", "Account", "Opportunity", "AccountTeamMember")
DLT_SPEC = "dlt[duckdb]==1.31.0"


def stream_queries(objects: tuple[str, ...], batch_size: int) -> list[dict[str, Any]]:
    """The SOQL teamsync sends on a first pull of each stream (from its stream catalogue)."""
    from config.settings import load_settings
    from connectors import soql
    from mappings.schema import load_mapping
    from sync.streams import catalogue

    mapping = load_mapping(load_settings().mapping)
    by_object = {s.object: s for s in catalogue(mapping) if s.system == "salesforce"}
    out = []
    for obj in objects:
        s = by_object[obj]
        out.append(
            {
                "object": obj,
                "fields": list(s.fields),
                "include_deleted": bool(s.include_deleted),
                "soql": soql.select(s.object, s.fields, order_by=(s.stamp_field, "Id")),
                "batch_size": batch_size,
            }
        )
    return out


def ensure_dlt_venv(path: Path, spec: str) -> Path:
    python = path / "bin" / "python"
    if python.exists():
        return python
    print(f"creating dlt's virtual environment in {path} ({spec}) ...", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", spec], check=True)
    return python


def summarise(name: str, runs: list[ChildResult]) -> dict[str, Any]:
    good = [r for r in runs if r.ok and r.report]
    if not good:
        return {
            "contender": name,
            "failed": True,
            "stderr_tail": runs[-1].stderr_tail if runs else "",
        }
    walls = [float(r.report["wall"]) for r in good]
    cpus = [float(r.report["cpu"]) for r in good]
    rows = int(good[0].report["rows"])
    wall = median(walls)
    cpu = median(cpus)
    return {
        "contender": name,
        "rounds": len(good),
        "failed_rounds": len(runs) - len(good),
        "rows": rows,
        "rows_by_object": good[0].report.get("rows_by_object"),
        "wall_s": round(wall, 2),
        "wall_s_each": [round(w, 2) for w in walls],
        "cpu_s": round(cpu, 2),
        "cpu_s_each": [round(c, 2) for c in cpus],
        "process_wall_s": round(median([r.wall for r in good]), 2),
        "process_cpu_s": round(median([r.cpu for r in good]), 2),
        "rows_per_s": round(rows / wall) if wall else None,
        "cpu_us_per_row": round(cpu / rows * 1e6, 1) if rows else None,
        "peak_rss_mb": max(r.peak_rss_mb for r in good),
        "peak_rss_mb_each": [r.peak_rss_mb for r in good],
        "emulator_cpu_s": round(median([r.server_cpu for r in good]), 2),
        "api_calls": good[-1].calls,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--contenders", default="teamsync,raw,dlt")
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument(
        "--dlt-venv", type=Path, default=ROOT / ".bench" / "dlt-venv", help="created if missing"
    )
    parser.add_argument("--dlt-spec", default=DLT_SPEC)
    parser.add_argument("--dlt-write-disposition", default="append")
    parser.add_argument(
        "--dlt-rounds",
        type=int,
        default=None,
        help="dlt takes part only in the first N rounds (it is slow and large at 100k)",
    )
    parser.add_argument("--max-raw-ratio", type=float, default=1.3)
    parser.add_argument("--min-dlt-ratio", type=float, default=1.5)
    parser.add_argument("--profile-dir", type=Path, help="pyinstrument profile of teamsync")
    parser.add_argument(
        "--py-spy-dir",
        type=Path,
        help="py-spy (all threads, CPU only) collapsed stacks of teamsync's first round here",
    )
    parser.add_argument(
        "--teamsync-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra TEAMSYNC_* settings for the teamsync contender",
    )
    args = parser.parse_args()
    names = [n.strip() for n in args.contenders.split(",") if n.strip()]
    unknown = set(names) - {"teamsync", "raw", "dlt"}
    if unknown:
        parser.error(f"unknown contenders: {', '.join(sorted(unknown))}")

    report: dict[str, Any] = {"benchmark": "pull", "machine": machine()}
    report["accounts"] = args.accounts
    report["seed"] = args.seed
    dlt_python = ensure_dlt_venv(args.dlt_venv, args.dlt_spec) if "dlt" in names else None

    with tempfile.TemporaryDirectory(prefix="teamsync-bench-pull-") as tmp_name:
        tmp = Path(tmp_name)
        with emulators(args.accounts, args.seed, tmp / "emu") as emu:
            env = dict(emu.env())
            env["TEAMSYNC_LOG_LEVEL"] = "ERROR"
            for item in args.teamsync_env:
                key, _, value = item.partition("=")
                env[key] = value
            token = salesforce_token(emu)
            os.environ.update(emu.env())  # for load_settings() in stream_queries
            queries = stream_queries(OBJECTS, args.batch_size)
            spec_path = tmp / "spec.json"
            spec_path.write_text(
                json.dumps(
                    {
                        "instance_url": emu.salesforce_url,
                        "api_version": env["TEAMSYNC_SALESFORCE_API_VERSION"],
                        "ca_path": str(emu.ca_path),
                        "queries": queries,
                    }
                ),
                encoding="utf-8",
            )
            report["queries"] = [q["soql"] for q in queries]
            runs: dict[str, list[ChildResult]] = {n: [] for n in names}
            for rnd in range(args.rounds):
                order = names[rnd % len(names) :] + names[: rnd % len(names)]
                for name in order:
                    if name == "dlt" and args.dlt_rounds is not None and rnd >= args.dlt_rounds:
                        continue
                    out = tmp / f"{name}-{rnd}"
                    out.mkdir()
                    if name == "teamsync":
                        argv = [sys.executable, str(CONTENDERS / "teamsync_pull.py")]
                        argv_ts = argv[1:]
                        if args.profile_dir and rnd == 0:
                            args.profile_dir.mkdir(parents=True, exist_ok=True)
                            argv += ["--profile", str(args.profile_dir / "pull.html")]
                        child_env = {**env, "TEAMSYNC_DATABASE_URL": f"sqlite:///{out}/ts.db"}
                        if args.py_spy_dir and rnd == 0:
                            args.py_spy_dir.mkdir(parents=True, exist_ok=True)
                            spy = str(Path(sys.executable).parent / "py-spy")
                            folded = str(args.py_spy_dir / "pull.folded")
                            argv = [spy, "record", "-r", "250", "-f", "raw", "--threads", "-o"]
                            argv += [folded, "--", sys.executable, *argv_ts]
                    elif name == "raw":
                        argv = [
                            sys.executable,
                            str(CONTENDERS / "raw_sf_sqlite.py"),
                            "--spec",
                            str(spec_path),
                            "--db",
                            str(out / "raw.sqlite"),
                        ]
                        child_env = {"BENCH_SF_TOKEN": token}
                    else:
                        assert dlt_python is not None
                        argv = [
                            str(dlt_python),
                            str(CONTENDERS / "dlt_rest_api.py"),
                            "--spec",
                            str(spec_path),
                            "--db",
                            str(out / "dlt.duckdb"),
                            "--workdir",
                            str(out),
                            "--write-disposition",
                            args.dlt_write_disposition,
                        ]
                        child_env = {"BENCH_SF_TOKEN": token}
                    emu.log.reset()
                    result = run_child(argv, env=child_env)
                    result.calls = call_counts(emu)
                    runs[name].append(result)
                    print(
                        f"round {rnd + 1} {name}: rc={result.returncode} "
                        f"wall={result.report.get('wall')} cpu={result.report.get('cpu')} "
                        f"rss={result.peak_rss_mb} load={loadavg()}",
                        file=sys.stderr,
                    )
                    if not result.ok:
                        print(result.stderr_tail, file=sys.stderr)
                    shutil_rmtree(out)

    summary = {name: summarise(name, rs) for name, rs in runs.items()}
    report["contenders"] = summary
    report["load_at_end"] = loadavg()
    ratios: dict[str, Any] = {}
    goals: dict[str, Any] = {}
    ts = summary.get("teamsync", {})
    raw = summary.get("raw", {})
    dl = summary.get("dlt", {})
    if ts.get("wall_s") and raw.get("wall_s"):
        ratios["teamsync_over_raw_wall"] = ratio(ts["wall_s"], raw["wall_s"])
        ratios["teamsync_over_raw_cpu"] = ratio(ts["cpu_s"], raw["cpu_s"])
        goals["within_1_3x_of_raw"] = {
            "value": ratios["teamsync_over_raw_wall"],
            "limit": args.max_raw_ratio,
            "met": ratios["teamsync_over_raw_wall"] <= args.max_raw_ratio,
        }
    if ts.get("wall_s") and dl.get("wall_s"):
        ratios["dlt_over_teamsync_wall"] = ratio(dl["wall_s"], ts["wall_s"])
        ratios["dlt_over_teamsync_cpu"] = ratio(dl["cpu_s"], ts["cpu_s"])
        ratios["dlt_over_teamsync_peak_rss"] = ratio(dl["peak_rss_mb"], ts["peak_rss_mb"])
        goals["1_5x_faster_than_dlt"] = {
            "value": ratios["dlt_over_teamsync_wall"],
            "limit": args.min_dlt_ratio,
            "met": ratios["dlt_over_teamsync_wall"] >= args.min_dlt_ratio,
        }
    report["ratios"] = ratios
    report["goals"] = goals
    failed = [n for n, s in summary.items() if s.get("failed")]
    report["ok"] = not failed and all(g["met"] for g in goals.values())
    print_json(report)
    return 0 if report["ok"] else 1


def shutil_rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
