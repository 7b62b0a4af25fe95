"""The records layer, table-driven: a raw row of each stream (fields named as the mapping
names them) in, its typed record out, or InvalidRecord naming what is wrong."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from config.errors import InvalidRecord
from mappings.schema import MappingFile
from sync.streams import Catalogue, Stream, catalogue

MS_2026_03_02 = int(datetime(2026, 3, 2, tzinfo=UTC).timestamp() * 1000)


@pytest.fixture(scope="module")
def streams(mapping: MappingFile) -> Catalogue:
    return catalogue(mapping)


def raw(stream: Stream[Any], **attrs: Any) -> dict[str, Any]:
    """A raw row with the API field names the stream maps these attributes from."""
    fields = {c.attr: c.field for c in stream.columns if c.attr and not c.group}
    return {fields[name]: value for name, value in attrs.items()}


CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    # stream, attributes given (raw), attributes expected on the record
    (
        "sf_user",
        {"id": "005000000000001", "email": "  Pat@Example.COM ", "active": None, "name": ""},
        {"id": "005000000000001AAA", "email": "pat@example.com", "active": True, "name": None},
    ),
    ("sf_user", {"id": "005000000000001AAA", "active": False}, {"active": False}),
    (
        "sf_account",
        {"id": "001000000000001", "name": "Acme", "employees": "", "segment": "", "arr": 1200.5},
        {"id": "001000000000001AAA", "employees": None, "segment": None, "arr": 1200.5},
    ),
    (
        "sf_account",
        {"id": "001000000000001", "name": "Acme", "is_deleted": True},
        {"is_deleted": True},
    ),
    (
        "sf_opportunity",
        {"id": "006000000000001", "is_won": True, "is_closed": True, "close_date": ""},
        {"is_won": True, "is_closed": True, "close_date": None},
    ),
    (
        "sf_opportunity",
        {"id": "006000000000001", "close_date": "2026-05-31", "type": "Renewal"},
        {"close_date": date(2026, 5, 31), "type": "Renewal", "is_won": False},
    ),
    (
        "sf_team_member",
        {
            "id": "01M000000000001",
            "user_id": "005000000000001",
            "team_role": "Account Executive",
            "created": "2026-03-02T10:00:00.000+0000",
        },
        {"user_id": "005000000000001AAA", "created": datetime(2026, 3, 2, 10, tzinfo=UTC)},
    ),
    (
        "gs_user",
        {"gsid": "1P01X", "email": "A@B.C", "active": None},
        {"email": "a@b.c", "active": True},
    ),
    (
        "gs_company",
        {"gsid": "1P02X", "score": 42, "renewal_date": MS_2026_03_02, "risk_flags": ""},
        {"score": 42.0, "renewal_date": date(2026, 3, 2), "risk_flags": None},
    ),
]


@pytest.mark.parametrize(("name", "given", "expected"), CASES)
def test_parse(
    streams: Catalogue, name: str, given: dict[str, Any], expected: dict[str, Any]
) -> None:
    """Ids become 18 characters, e-mails lower case, blanks None, dates dates."""
    stream = getattr(streams, name)
    record = stream.parse(raw(stream, **given))
    assert isinstance(record, stream.model)
    assert {k: getattr(record, k) for k in expected} == expected


INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("sf_account", {"id": "001000000000001"}, "name"),  # an account without a name
    ("sf_account", {"id": "not-an-id!", "name": "Acme"}, "id"),
    ("sf_team_member", {"id": "01M000000000001", "user_id": None}, "user_id"),
    ("gs_company", {"gsid": "1P02X", "score": 120}, "score"),  # scores are 0-100
    ("sf_opportunity", {"id": "006000000000001", "close_date": "soon"}, "close_date"),
]


@pytest.mark.parametrize(("name", "given", "field"), INVALID)
def test_invalid_rows_are_refused_with_a_reason(
    streams: Catalogue, name: str, given: dict[str, Any], field: str
) -> None:
    """A row that does not validate raises InvalidRecord naming the stream, the record and
    the attribute (the mapper quarantines it)."""
    stream = getattr(streams, name)
    data = raw(stream, **given)
    with pytest.raises(InvalidRecord) as info:
        stream.parse(data)
    exc = info.value
    assert (exc.system, exc.object_name) == (stream.system, stream.object)
    assert exc.record_id == str(data.get(stream.key))
    assert field in exc.reason


def test_company_team_fields_are_grouped(streams: Catalogue, mapping: MappingFile) -> None:
    """The Company lookups teamsync manages are read into one dict, blanks as None."""
    stream = streams.gs_company
    names = list(mapping.gainsight_team_fields())
    data = {"Gsid": "1P02X", names[0]: "1P01AE", names[1]: ""}
    record = stream.parse(data)
    assert record.team_fields[names[0]] == "1P01AE"
    assert record.team_fields[names[1]] is None
    assert set(record.team_fields) == set(names)


def test_every_parsed_field_is_pulled(streams: Catalogue) -> None:
    """What a record reads is what the puller selects: one declaration per stream."""
    for stream in streams:
        read = {c.field for c in stream.columns if c.attr}
        assert read <= set(stream.fields), stream.name
        assert stream.key in stream.fields
        assert stream.stamp_field in stream.fields


@pytest.mark.parametrize(
    ("record", "expected", "problems"),
    [
        ({"Id": "001", "n": 1, "x": 1.5, "b": True, "z": None}, None, []),
        ({"Name": "Café Zoë"}, None, []),
        ({"Name": "a\x00b"}, {"Name": "a\ufffdb"}, ["Name: NUL byte in text"]),
        ({"Name": "bad \ud800"}, {"Name": "bad ?"}, ["Name: text that is not valid Unicode"]),
        ({"ARR": float("nan")}, {"ARR": None}, ["ARR: not a finite number"]),
        ({"ARR": float("inf")}, {"ARR": None}, ["ARR: not a finite number"]),
        (
            {"Owner": {"Name": "x\x00"}},
            {"Owner": {"Name": "x\ufffd"}},
            ["Owner.Name: NUL byte in text"],
        ),
        ({"k\x00": 1}, {"k\ufffd": 1}, [": NUL byte in text"]),
        ({"tags": ["a", "b\x00"]}, {"tags": ["a", "b\ufffd"]}, ["tags[1]: NUL byte in text"]),
    ],
)
def test_storable_replaces_what_a_database_refuses_and_names_it(
    record: dict[str, Any], expected: dict[str, Any] | None, problems: list[str]
) -> None:
    """Flat, clean records come back as an equal copy (the fast path); NUL bytes, lone
    surrogates and non-finite numbers anywhere - values, keys, nested, lists - are replaced
    and named."""
    from sync.stages.records import storable

    out, found = storable(record)
    assert out == (record if expected is None else expected)
    assert out is not record
    assert found == problems
