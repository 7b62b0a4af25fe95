"""Counts every call the emulators answer, by API, object and kind.

The benchmarks and the "a no-op run makes no writes" tests read it:

    log.count(api="salesforce", kind="write")            # all Salesforce writes
    log.count(api="gainsight", object="Company", kind="write")
    log.summary()  # {"salesforce": {"Account": {"read": 3, "write": 1}}, ...}
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass
from typing import Any, Literal

Kind = Literal["read", "write", "auth", "admin"]


@dataclass(frozen=True)
class LoggedCall:
    api: str  # "salesforce" | "gainsight"
    method: str
    path: str
    object: str | None  # sObject / Gainsight object the call is about, when there is one
    kind: Kind
    operation: str  # e.g. "query", "query_more", "collections.update", "company.update"
    status: int
    records: int  # records written (writes) or returned (reads), 0 when not applicable
    at: float


class RequestLog:
    """Thread-safe log of calls; counters are exact, the detailed list keeps the newest N."""

    def __init__(self, keep: int = 50_000) -> None:
        self._lock = threading.Lock()
        self._calls: deque[LoggedCall] = deque(maxlen=keep)
        self._counts: Counter[tuple[str, str | None, str, str]] = Counter()
        self._records: Counter[tuple[str, str | None, str, str]] = Counter()

    def record(
        self,
        *,
        api: str,
        method: str,
        path: str,
        object: str | None,
        kind: Kind,
        operation: str,
        status: int,
        records: int = 0,
    ) -> None:
        call = LoggedCall(api, method, path, object, kind, operation, status, records, time.time())
        key = (api, object, kind, operation)
        with self._lock:
            self._calls.append(call)
            self._counts[key] += 1
            self._records[key] += records

    def count(
        self,
        *,
        api: str | None = None,
        object: str | None = None,
        kind: str | None = None,
        operation: str | None = None,
    ) -> int:
        """Number of calls matching every given filter (object compared case-insensitively)."""
        with self._lock:
            items = list(self._counts.items())
        return sum(n for key, n in items if _match(key, api, object, kind, operation))

    def records(
        self,
        *,
        api: str | None = None,
        object: str | None = None,
        kind: str | None = None,
        operation: str | None = None,
    ) -> int:
        """Number of records carried by the matching calls."""
        with self._lock:
            items = list(self._records.items())
        return sum(n for key, n in items if _match(key, api, object, kind, operation))

    def calls(self, **filters: str) -> list[LoggedCall]:
        with self._lock:
            calls = list(self._calls)
        return [
            c
            for c in calls
            if all(
                (getattr(c, k) or "").lower() == v.lower() if k == "object" else getattr(c, k) == v
                for k, v in filters.items()
            )
        ]

    def summary(self) -> dict[str, Any]:
        """Nested counts: api -> object -> kind -> operation -> calls."""
        out: dict[str, Any] = {}
        with self._lock:
            items = list(self._counts.items())
        for (api, obj, kind, operation), n in sorted(items, key=lambda kv: str(kv[0])):
            node = out.setdefault(api, {}).setdefault(obj or "-", {}).setdefault(kind, {})
            node[operation] = node.get(operation, 0) + n
        return out

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            recent = [asdict(c) for c in list(self._calls)[-200:]]
        return {"summary": self.summary(), "recent": recent}

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()
            self._counts.clear()
            self._records.clear()


def _match(
    key: tuple[str, str | None, str, str],
    api: str | None,
    obj: str | None,
    kind: str | None,
    operation: str | None,
) -> bool:
    k_api, k_obj, k_kind, k_op = key
    if api is not None and k_api != api:
        return False
    if obj is not None and (k_obj or "").lower() != obj.lower():
        return False
    if kind is not None and k_kind != kind:
        return False
    return operation is None or k_op == operation
