"""One teamsync run (the engine as ``teamsync run`` drives it) in a process of its own.

    TEAMSYNC_...=... python benchmarks/contenders/teamsync_run.py [--dry-run] [--allow-mass-change]
    python benchmarks/contenders/teamsync_run.py --baseline     # imports and settings only

Settings come from the ``TEAMSYNC_*`` environment.  The timed section is ``Engine.run``;
``--baseline`` measures what every run pays before it starts (interpreter, imports, settings,
mapping, clients) so that the per-account figures can be given net of it.  Prints one JSON
line: exit code, wall and CPU seconds, the run's stats (plan, pushed, API usage), peak RSS.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))
from _harness import child_footer

_PAGE = os.sysconf("SC_PAGE_SIZE")


def _rss_mb() -> float:
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * _PAGE / 2**20


class PhaseMeter:
    """Wall, CPU and peak RSS per engine phase (``sync.logging.phase`` blocks), RSS sampled
    every 20 ms by a thread."""

    def __init__(self) -> None:
        self.current = "setup"
        self.phases: dict[str, dict[str, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _slot(self, name: str) -> dict[str, float]:
        return self.phases.setdefault(name, {"wall_s": 0.0, "cpu_s": 0.0, "peak_rss_mb": 0.0})

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            slot = self._slot(self.current)
            slot["peak_rss_mb"] = max(slot["peak_rss_mb"], round(_rss_mb(), 1))

    def install(self) -> None:
        import sync.logging

        original = sync.logging.phase
        meter = self

        @contextlib.contextmanager
        def phase(name: str, **values: Any) -> Iterator[None]:
            outer = meter.current
            meter.current = name
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                with original(name, **values):
                    yield
            finally:
                slot = meter._slot(name)
                slot["wall_s"] = round(slot["wall_s"] + time.perf_counter() - t0, 3)
                slot["cpu_s"] = round(slot["cpu_s"] + time.process_time() - c0, 3)
                meter.current = outer

        sync.logging.phase = phase  # type: ignore[assignment]
        for mod in list(sys.modules.values()):
            if getattr(mod, "phase", None) is original and mod is not sync.logging:
                mod.phase = phase  # type: ignore[attr-defined]
        self._thread.start()

    def stop(self) -> dict[str, dict[str, float]]:
        self._stop.set()
        self._thread.join()
        return self.phases


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--allow-mass-change", action="store_true")
    parser.add_argument("--baseline", action="store_true")
    parser.add_argument("--profile", help="write a pyinstrument HTML profile of the run here")
    args = parser.parse_args()

    offset_ms = float(os.environ.get("BENCH_CLOCK_OFFSET_MS") or 0)
    if offset_ms:
        # Days later (bench_run.py moved the emulators' clock): teamsync's clock moves with
        # it.  Patched before any other teamsync import binds ``utcnow``.
        from datetime import timedelta

        import sync.clock

        real, shift = sync.clock.utcnow, timedelta(milliseconds=offset_ms)
        sync.clock.utcnow = lambda: real() + shift

    from config.errors import TeamsyncError
    from config.settings import load_settings
    from sync.engine import Engine, RunOptions
    from sync.logging import configure_logging
    from sync.store import Store

    configure_logging("json", "ERROR")
    settings = load_settings()
    store = Store(settings.database_url)
    engine = Engine.from_settings(settings, store=store)
    if args.baseline:
        print(json.dumps({"baseline": True, "wall": 0.0, "cpu": 0.0, **child_footer()}))
        return 0
    store.check_schema()
    meter = PhaseMeter()
    meter.install()

    profiler: Any = None
    if args.profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.002)
        profiler.start()
    cprofile: Any = None
    if os.environ.get("BENCH_CPROFILE"):  # a cProfile of the main thread, for pstats
        import cProfile

        cprofile = cProfile.Profile()
        cprofile.enable()
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    exit_code = 0
    stats: dict[str, Any] = {}
    try:
        result = engine.run(
            RunOptions(dry_run=args.dry_run, allow_mass_change=args.allow_mass_change)
        )
        exit_code = result.exit_code
        stats = result.stats.as_json()
    except TeamsyncError as exc:
        exit_code = exc.exit_code
        stats = {"error": str(exc)}
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    phases = meter.stop()
    if cprofile is not None:
        cprofile.disable()
        cprofile.dump_stats(os.environ["BENCH_CPROFILE"])
    if profiler is not None:
        profiler.stop()
        Path(args.profile).write_text(profiler.output_html(), encoding="utf-8")
        Path(args.profile).with_suffix(".txt").write_text(
            profiler.output_text(unicode=True, show_all=False), encoding="utf-8"
        )
    print(
        json.dumps(
            {
                "exit_code": exit_code,
                "wall": round(wall, 3),
                "cpu": round(cpu, 3),
                "stats": stats,
                "phases": phases,
                **child_footer(),
            },
            default=str,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
