"""Shared pieces of the benchmarks: emulators in this process, contenders in child processes.

The emulators (both HTTPS servers, the synthetic org, the request log) run in the benchmark's
own process; every contender (teamsync, the raw client, dlt) runs in a child process of its
own, so that its CPU time and peak resident set are its own and nobody shares a GIL with the
servers.  A child's figures come from ``os.wait4`` (CPU user+system, ``ru_maxrss``) and from
the one JSON line it prints on stdout (the wall and CPU time of its timed section, rows).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CONTENDERS = Path(__file__).resolve().parent / "contenders"


# --- the machine -------------------------------------------------------------------------
def cpu_model() -> str:
    try:
        for line in (
            Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace").splitlines()
        ):
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def machine() -> dict[str, Any]:
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "load_at_start": loadavg(),
    }


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


# --- child processes ---------------------------------------------------------------------
@dataclass
class ChildResult:
    """One contender's run: what ``wait4`` says plus the JSON line the child printed."""

    argv: list[str]
    returncode: int
    wall: float  # whole process, import included
    cpu: float  # whole process, user + system
    peak_rss_mb: float
    report: dict[str, Any] = field(default_factory=dict)
    stderr_tail: str = ""
    server_cpu: float = 0.0  # CPU the emulators (this process) spent meanwhile
    calls: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def run_child(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 3600.0,
    cwd: Path = ROOT,
) -> ChildResult:
    """Run ``argv``; its stdout's last JSON line is its report."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    server_before = self_cpu()
    children_before = _children_cpu()
    started = time.perf_counter()
    proc = subprocess.Popen(
        list(argv),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=full_env,
        cwd=str(cwd),
        text=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    # communicate() reaped the child: its CPU (and that of the processes it waited for) is
    # now in RUSAGE_CHILDREN, the sum over every child so far - hence the difference.
    # Children run one at a time.  Peak RSS: RUSAGE_CHILDREN only keeps the maximum over all
    # children ever, so each child reports its own (see child_footer).
    wall = time.perf_counter() - started
    cpu = _children_cpu() - children_before
    server_cpu = self_cpu() - server_before
    report: dict[str, Any] = {}
    for raw_line in reversed(out.strip().splitlines()):
        line = raw_line.strip()
        if line.startswith("{"):
            try:
                report = json.loads(line)
                break
            except ValueError:
                continue
    return ChildResult(
        argv=list(argv),
        returncode=proc.returncode,
        wall=wall,
        cpu=cpu,
        peak_rss_mb=float(report.get("peak_rss_mb", 0.0)),
        report=report,
        stderr_tail=err[-3000:],
        server_cpu=server_cpu,
    )


# --- emulators ---------------------------------------------------------------------------
@contextmanager
def emulators(
    accounts: int, seed: int, workdir: Path, *, gs_rate_limit: int | None = None
) -> Iterator[Any]:
    from emulators.runner import start_emulators

    with start_emulators(accounts=accounts, seed=seed, workdir=workdir) as emu:
        if gs_rate_limit:
            emu.gainsight.rate_limit_per_minute = gs_rate_limit
            emu.gainsight.daily_limit = max(emu.gainsight.daily_limit, 10_000_000)
        yield emu


def salesforce_token(emu: Any) -> str:
    """A session token from the emulator's client-credentials flow (one auth call)."""
    import requests

    creds = emu.salesforce.credentials
    resp = requests.post(
        f"{emu.salesforce_url}/services/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": creds.client_id,
            "client_secret": creds.client_secret,
        },
        verify=str(emu.ca_path),
        timeout=30,
    )
    resp.raise_for_status()
    return str(resp.json()["access_token"])


def call_counts(emu: Any) -> dict[str, int]:
    log = emu.log
    return {
        "salesforce_read": log.count(api="salesforce", kind="read"),
        "salesforce_write": log.count(api="salesforce", kind="write"),
        "gainsight_read": log.count(api="gainsight", kind="read"),
        "gainsight_write": log.count(api="gainsight", kind="write"),
        "auth": log.count(kind="auth"),
    }


# --- figures -----------------------------------------------------------------------------
def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None


def which(name: str) -> str | None:
    return shutil.which(name)


def own_peak_rss_kb() -> int:
    """This process's own peak resident set in KiB: ``VmHWM`` of ``/proc/self/status``.

    Not ``ru_maxrss``: Linux carries the high-water mark of the address space a process had
    before ``execve`` over into the new program, so a contender started by a benchmark that
    holds a 100k-account org reports that process's resident set (hundreds of MB) as its own
    peak.  ``ru_maxrss`` only where there is no ``/proc``.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def child_footer() -> dict[str, Any]:
    """What every contender script adds to its JSON line (process-wide figures)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)  # its own children (dlt's), if any
    return {
        "process_cpu": round(r.ru_utime + r.ru_stime, 3),
        "peak_rss_mb": round(max(own_peak_rss_kb(), kids.ru_maxrss) / 1024.0, 1),
    }


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")
