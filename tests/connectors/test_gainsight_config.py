"""Gainsight settings validation, the where builder and the date formatting helpers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from config.errors import ConfigurationError
from connectors.dates import parse_datetime
from connectors.gainsight import (
    Condition,
    GainsightConfig,
    datetime_to_epoch_ms,
    filter_datetime,
    where,
)
from connectors.gainsight._config import build_where

KEY = "super-secret-access-key-123"


def test_repr_masks_the_access_key() -> None:
    """The access key never shows in the config's repr."""
    config = GainsightConfig("https://acme.gainsightcloud.com/", KEY)
    assert KEY not in repr(config)
    assert "access_key=***" in repr(config)
    assert config.base_url == "https://acme.gainsightcloud.com"


def test_every_problem_is_listed_at_once() -> None:
    """Bad settings raise one ConfigurationError naming each problem."""
    with pytest.raises(ConfigurationError) as info:
        GainsightConfig(
            "http://acme.gainsightcloud.com", "", page_size=6000, write_batch=51, cta_page_size=0
        )
    problems = "\n".join(info.value.problems)
    for text in ("https://", "access_key", "page_size", "write_batch", "cta_page_size"):
        assert text in problems
    assert len(info.value.problems) == 5


def test_where_aliases_and_and_expression() -> None:
    """where() names conditions A, B, C..., wraps scalar values in arrays and ANDs them."""
    clause = where(
        Condition("Name", "eq", "Acme"),
        Condition("Csm", "IS_NULL"),
        Condition("Stage", "IN", ("New Customer", "Launched")),
    )
    assert clause == {
        "conditions": [
            {"name": "Name", "alias": "A", "value": ["Acme"], "operator": "EQ"},
            {"name": "Csm", "alias": "B", "value": [], "operator": "IS_NULL"},
            {
                "name": "Stage",
                "alias": "C",
                "value": ["New Customer", "Launched"],
                "operator": "IN",
            },
        ],
        "expression": "A AND B AND C",
    }
    assert where() == {}


def test_where_explicit_expression_and_cockpit_key() -> None:
    """An explicit expression is kept; the Cockpit form uses fieldName."""
    clause = build_where(
        [Condition("IsClosed", "EQ", [False]), Condition("TypeId__gr.Name", "EQ", ["Risk"])],
        "A OR B",
        key="fieldName",
    )
    assert clause["expression"] == "A OR B"
    assert clause["conditions"][1]["fieldName"] == "TypeId__gr.Name"


def test_more_than_26_conditions_get_two_letter_aliases() -> None:
    """Aliases continue AA, AB... after Z."""
    clause = where(*[Condition(f"F{i}", "EQ", [i]) for i in range(28)])
    assert [c["alias"] for c in clause["conditions"]][25:] == ["Z", "AA", "AB"]


MS = 1_521_743_018_667
WHEN = datetime(2018, 3, 22, 18, 23, 38, 667000, tzinfo=UTC)


def test_datetime_to_epoch_ms_round_trips() -> None:
    """Datetimes (aware, naive = UTC) and dates convert to whole epoch milliseconds."""
    assert datetime_to_epoch_ms(WHEN) == MS
    assert datetime_to_epoch_ms(WHEN.replace(tzinfo=None)) == MS
    assert datetime_to_epoch_ms(WHEN.astimezone(timezone(timedelta(hours=-5)))) == MS
    assert datetime_to_epoch_ms(date(1970, 1, 2)) == 86_400_000
    assert parse_datetime(datetime_to_epoch_ms(WHEN)) == WHEN


def test_filter_datetime_is_utc_text() -> None:
    """Filter literals are yyyy-MM-dd HH:mm:ss in UTC."""
    east = datetime(2024, 2, 5, 2, 0, tzinfo=timezone(timedelta(hours=2)))
    assert filter_datetime(east) == "2024-02-05 00:00:00"
