"""Fault injection shared by the emulators.

Every knob is off by default.  Tests switch faults on directly:

    emu.salesforce.faults.configure(rate_503=0.2, retry_after_seconds=1)
    emu.gainsight.faults.fail_next(429, 429)         # the next two calls answer 429
    emu.salesforce.faults.configure(session_expiry_after_calls=5)

or over HTTP (``PUT /__emulator/faults`` with the same keys as JSON).  Hostile answers per
endpoint (redirects, HTML with a 200, cut-off bodies, missing ``data``, wrong counts) are
:mod:`emulators.tamper` rules:

    emu.gainsight.faults.tamper("set", operation="company.query", path="data", value=None)
  Decisions are drawn
from a seeded RNG, so a run with the same seed and the same call sequence sees the same faults.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field, fields
from typing import Any

from emulators.tamper import Tamper, TamperRules


@dataclass
class FaultSettings:
    latency_ms: float = 0.0  # added to every data call
    rate_429: float = 0.0  # probability a data call answers 429 (with Retry-After)
    rate_503: float = 0.0  # probability a data call answers 503
    retry_after_seconds: int | None = 1  # sent with 429 / 503 (None: no header)
    session_expiry_after_calls: int | None = None  # Salesforce: a session dies after N calls
    lock_row_rate: float = 0.0  # Salesforce collection writes: per-record UNABLE_TO_LOCK_ROW
    # These Ids fail once with UNABLE_TO_LOCK_ROW.
    lock_row_ids: set[str] = field(default_factory=set)
    daily_quota: int | None = None  # Salesforce: REQUEST_LIMIT_EXCEEDED once api-usage reaches it
    seed: int = 0


class Faults:
    """Thread-safe holder of the fault settings plus the schedule of forced statuses."""

    def __init__(self, **settings: Any) -> None:
        self._lock = threading.Lock()
        self.settings = FaultSettings()
        self._rng = random.Random(0)
        self._schedule: deque[int] = deque()
        self.tampering = TamperRules()
        self.configure(**settings)

    def configure(self, **settings: Any) -> None:
        """Change some settings; unknown names raise TypeError."""
        known = {f.name for f in fields(FaultSettings)}
        unknown = set(settings) - known
        if unknown:
            raise TypeError(f"unknown fault settings: {sorted(unknown)}")
        with self._lock:
            for name, value in settings.items():
                setattr(self.settings, name, set(value) if name == "lock_row_ids" else value)
            if "seed" in settings:
                self._rng = random.Random(settings["seed"])

    def reset(self) -> None:
        with self._lock:
            self.settings = FaultSettings()
            self._rng = random.Random(0)
            self._schedule.clear()
        self.tampering.clear()

    def tamper(self, kind: str, **rule: Any) -> Tamper:
        """Add a hostile-answer rule (see :mod:`emulators.tamper`); returns it (``hits``)."""
        return self.tampering.add(Tamper(kind, **rule))

    def tamper_from_json(self, rules: Any) -> None:
        """``[{"kind": ..., "operation": ...}, ...]`` as sent to ``PUT /__emulator/faults``."""
        if not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules):
            raise ValueError("tamper must be a list of rule objects")
        for rule in rules:
            self.tamper(**rule)

    def fail_next(self, *statuses: int) -> None:
        """Force the next calls to answer these statuses (0 lets a call through)."""
        with self._lock:
            self._schedule.extend(statuses)

    def http_fault(self) -> int | None:
        """Status to inject for this data call, or None.  Consumes the schedule first."""
        with self._lock:
            if self._schedule:
                status = self._schedule.popleft()
                return status or None
            s = self.settings
            if s.rate_429 and self._rng.random() < s.rate_429:
                return 429
            if s.rate_503 and self._rng.random() < s.rate_503:
                return 503
        return None

    def lock_row(self, record_id: str | None) -> bool:
        """Whether this record in a collection write should fail with UNABLE_TO_LOCK_ROW."""
        with self._lock:
            s = self.settings
            if record_id and record_id in s.lock_row_ids:
                s.lock_row_ids.discard(record_id)
                return True
            return bool(s.lock_row_rate) and self._rng.random() < s.lock_row_rate

    def delay(self) -> None:
        latency = self.settings.latency_ms
        if latency > 0:
            time.sleep(latency / 1000.0)

    def retry_after_header(self) -> dict[str, str]:
        value = self.settings.retry_after_seconds
        return {} if value is None else {"Retry-After": str(value)}

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            out = {f.name: getattr(self.settings, f.name) for f in fields(FaultSettings)}
            out["lock_row_ids"] = sorted(out["lock_row_ids"])
            out["scheduled"] = list(self._schedule)
        out["tamper"] = self.tampering.as_list()
        return out
