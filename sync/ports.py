"""What the engine needs from the connectors (structural types: the real clients and test
fakes both satisfy them)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol


class WriteOutcome(Protocol):
    @property
    def index(self) -> int: ...
    @property
    def id(self) -> str | None: ...
    @property
    def success(self) -> bool: ...
    @property
    def code(self) -> str | None: ...
    @property
    def message(self) -> str | None: ...


class SalesforcePort(Protocol):
    def query(
        self,
        soql: str,
        *,
        include_deleted: bool = False,
        batch_size: int = 2000,
        allow_bulk: bool = True,
    ) -> Iterator[list[dict[str, Any]]]: ...

    def count(self, soql: str, *, include_deleted: bool = False) -> int: ...

    def create(
        self, object_name: str, records: Sequence[Mapping[str, Any]]
    ) -> Sequence[WriteOutcome]: ...

    def update(
        self, object_name: str, records: Sequence[Mapping[str, Any]]
    ) -> Sequence[WriteOutcome]: ...

    def delete(self, object_name: str, ids: Sequence[str]) -> Sequence[WriteOutcome]: ...


class GainsightPort(Protocol):
    def query(
        self,
        object_name: str,
        select: Sequence[str],
        *,
        conditions: Sequence[Any] = (),
        page_size: int | None = None,
        after: str | None = None,
    ) -> Iterator[list[dict[str, Any]]]: ...

    def update(
        self,
        object_name: str,
        records: Sequence[Mapping[str, Any]],
        *,
        keys: Sequence[str] = ("Gsid",),
        lookups: Mapping[str, Any] | None = None,
    ) -> Sequence[WriteOutcome]: ...

    def cta_list(
        self,
        select: Sequence[str],
        *,
        conditions: Sequence[Any] = (),
        expression: str | None = None,
    ) -> Iterator[list[dict[str, Any]]]: ...

    def cta_create(self, records: Sequence[Mapping[str, Any]]) -> Sequence[WriteOutcome]: ...

    def cta_update(self, records: Sequence[Mapping[str, Any]]) -> Sequence[WriteOutcome]: ...
