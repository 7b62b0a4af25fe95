"""The one date-time parser: every form the APIs send, and junk refused."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from connectors.dates import parse_datetime

WHEN = datetime(2018, 3, 22, 18, 23, 38, 667000, tzinfo=UTC)
MS = 1_521_743_018_667


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (MS, WHEN),
        (float(MS), WHEN),
        (str(MS), WHEN),
        ("1521743018667.0", WHEN),
        ("2018-03-22T18:23:38.667Z", WHEN),
        ("2018-03-22T18:23:38.667000000Z", WHEN),
        ("2018-03-22T20:23:38.667+02:00", WHEN),
        ("2018-03-22 18:23:38.667", WHEN),
        ("2020-04-14", datetime(2020, 4, 14, tzinfo=UTC)),
        ("03-22-2018", datetime(2018, 3, 22, tzinfo=UTC)),
        (date(2020, 4, 14), datetime(2020, 4, 14, tzinfo=UTC)),
        (datetime(2020, 4, 14, 1, 2, 3), datetime(2020, 4, 14, 1, 2, 3, tzinfo=UTC)),
        (0, datetime(1970, 1, 1, tzinfo=UTC)),
        ("2024-05-01T12:00:03.000+0000", datetime(2024, 5, 1, 12, 0, 3, tzinfo=UTC)),
        (None, None),
        ("", None),
        ("  ", None),
    ],
)
def test_parses_epoch_ms_iso_and_the_doc_forms(value: object, expected: datetime | None) -> None:
    """Epoch ms as number or text, ISO (Z, +0000, nine fraction digits) and the doc forms parse
    to aware UTC; None and blank are no value."""
    assert parse_datetime(value) == expected


@pytest.mark.parametrize("value", ["soon", True, [1521743018667], "2018-13-45", "9" * 16 + "9"])
def test_junk_is_a_value_error(value: object) -> None:
    """Anything that is not a date-time raises ValueError (callers quarantine or skip it)."""
    with pytest.raises(ValueError, match=r"."):
        parse_datetime(value)
