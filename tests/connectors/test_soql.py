"""connectors.soql: literals, ids, names and query reading."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from connectors import soql
from connectors.sfid import InvalidId, to18
from emulators.salesforce.soql import tokenize

HOSTILE = [
    "O'Brien",
    "' OR Name != '",
    "\\' OR Name != \\'",
    "back\\slash",
    "trailing backslash\\",
    'double "quotes"',
    "new\nline",
    "cr\rtab\tbell\bfeed\f",
    "'; DELETE FROM Account; --",
    "50% _off",
    "ünïcødé ✓",
    "",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_quote_round_trips_through_a_soql_tokenizer(value: str) -> None:
    """A quoted hostile string is exactly one STRING token whose value is the input."""
    tokens = tokenize(f"Name = {soql.quote(value)}")
    kinds = [t.kind for t in tokens]
    assert kinds == ["IDENT", "OP", "STRING", "EOF"]
    assert tokens[2].value == value


def test_quote_escapes_each_special_character() -> None:
    """Backslash, quotes and the control characters get backslash escapes."""
    assert soql.quote("a'b") == "'a\\'b'"
    assert soql.quote('a"b') == "'a\\\"b'"
    assert soql.quote("a\\b") == "'a\\\\b'"
    assert soql.quote("\n\r\t\b\f") == "'\\n\\r\\t\\b\\f'"


def test_quote_refuses_non_strings_and_nul() -> None:
    """quote() takes only text, and text without NUL."""
    with pytest.raises(TypeError):
        soql.quote(5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="NUL"):
        soql.quote("a\x00b")


def test_like_escapes_wildcards() -> None:
    """like() makes % and _ literal and adds only the wildcards asked for."""
    pattern = soql.like("50%_off'", prefix=True, suffix=True)
    assert pattern == "'%50\\%\\_off\\'%'"
    token = tokenize(f"Name LIKE {pattern}")[2]
    assert token.value == "%50%_off'%"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "null"),
        (True, "true"),
        (False, "false"),
        (0, "0"),
        (-42, "-42"),
        (1.5, "1.5"),
        (1e20, "100000000000000000000"),
        (1e-7, "0.0000001"),
        (-0.0, "0"),
        (Decimal("12.50"), "12.50"),
        ("x'y", "'x\\'y'"),
        (dt.date(2024, 3, 31), "2024-03-31"),
        (dt.datetime(2024, 5, 1, 12, 0, 3, 999_999, tzinfo=dt.UTC), "2024-05-01T12:00:03Z"),
        (
            dt.datetime(2024, 5, 1, 1, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))),
            "2024-04-30T23:30:00Z",
        ),
    ],
)
def test_literal_renders_each_type(value: object, expected: str) -> None:
    """literal() renders Python values the way SOQL spells them."""
    assert soql.literal(value) == expected


def test_datetime_literal_floors_to_the_second() -> None:
    """A datetime literal never rounds up (an inclusive lower bound must not skip a row)."""
    value = dt.datetime(2024, 12, 31, 23, 59, 59, 999_999, tzinfo=dt.UTC)
    assert soql.literal(value) == "2024-12-31T23:59:59Z"


@pytest.mark.parametrize(
    "value",
    [dt.datetime(2024, 5, 1), float("nan"), float("inf"), Decimal("NaN"), object(), [1]],
)
def test_literal_refuses_ambiguous_or_unknown_values(value: object) -> None:
    """Naive datetimes, non-finite numbers and unknown types are refused."""
    with pytest.raises((TypeError, ValueError)):
        soql.literal(value)


def test_id_literal_normalises_and_validates() -> None:
    """15-character ids become 18; bad checksums and junk raise InvalidId."""
    id15 = "001Tm00000AbCdE"
    id18 = to18(id15)
    assert soql.id_literal(id15) == f"'{id18}'"
    assert soql.id_literal(id18[:15] + id18[15:].lower()) == f"'{id18}'"
    for bad in ["001Tm00000AbCdEZZZ", "001' OR Id != '", "001", "", "001Tm00000AbCd\n"]:
        with pytest.raises(InvalidId):
            soql.id_literal(bad)


def test_id_list_dedupes_keeping_order() -> None:
    """id_list() validates, normalises, drops duplicates and keeps first-seen order."""
    a, b = to18("001Tm00000000Aa"), to18("001Tm00000000Bb")
    assert soql.id_list([b, a, b[:15], a]) == f"('{b}','{a}')"
    with pytest.raises(ValueError, match="at least one"):
        soql.id_list([])
    with pytest.raises(InvalidId):
        soql.id_list([a, "nope"])


@pytest.mark.parametrize(
    "name", ["Id", "Owner.Email", "Account.Owner.Email", "ARR__c", "ns__Thing__c", "Foo__r.Bar__c"]
)
def test_field_accepts_api_names(name: str) -> None:
    """Field API names and relationship paths pass unchanged."""
    assert soql.field(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "1a",
        "_a",
        "a_",
        "a__",
        "a b",
        "Name,Id",
        "Name\n",
        "Name)",
        "a..b",
        "*",
        "a.b.c.d.e.f.g",
    ],
)
def test_field_refuses_anything_else(name: str) -> None:
    """Anything that is not an API name is a ValueError."""
    with pytest.raises(ValueError, match="not a SOQL field name"):
        soql.field(name)


def test_select_assembles_validated_parts() -> None:
    """select() builds the query from validated names and keeps the caller's WHERE."""
    where = f"Name = {soql.quote(chr(39) + ' OR Name != ' + chr(39))}"
    text = soql.select(
        "Account",
        ["Id", "Name", "Owner.Email", "id"],
        where,
        order_by=["SystemModstamp", "Id desc nulls last"],
        limit=10,
    )
    assert text == (
        "SELECT Id, Name, Owner.Email FROM Account WHERE Name = '\\' OR Name != \\'' "
        "ORDER BY SystemModstamp, Id DESC NULLS LAST LIMIT 10"
    )
    assert soql.select("User", ["Id"]) == "SELECT Id FROM User"


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"object_name": "Account; x", "fields": ["Id"]}, ValueError),
        ({"object_name": "Account", "fields": []}, ValueError),
        ({"object_name": "Account", "fields": "Id"}, TypeError),
        ({"object_name": "Account", "fields": ["Id"], "order_by": ["Id; x"]}, ValueError),
        ({"object_name": "Account", "fields": ["Id"], "order_by": ["Id SIDEWAYS"]}, ValueError),
        ({"object_name": "Account", "fields": ["Id"], "limit": -1}, ValueError),
        ({"object_name": "Account", "fields": ["Id"], "limit": True}, ValueError),
    ],
)
def test_select_refuses_bad_parts(kwargs: dict[str, object], error: type[Exception]) -> None:
    """Bad object names, empty or stringly field lists, bad ORDER BY or LIMIT are refused."""
    with pytest.raises(error):
        soql.select(**kwargs)  # type: ignore[arg-type]


def test_select_fields_reads_the_top_level_list() -> None:
    """select_fields() splits the SELECT list at top-level commas only."""
    text = "SELECT Id, (SELECT Id FROM Contacts), Owner.Email FROM Account WHERE Name = 'a, b'"
    assert soql.select_fields(text) == ["Id", "(SELECT Id FROM Contacts)", "Owner.Email"]
    assert soql.select_fields("select COUNT() from Account") == ["COUNT()"]


def test_count_query_keeps_where_and_drops_order_by() -> None:
    """count_query() swaps the SELECT list for COUNT() and drops ORDER BY (not LIMIT)."""
    text = "SELECT Id FROM Account WHERE Name = 'x ORDER BY y' ORDER BY Name DESC LIMIT 5"
    assert soql.count_query(text) == (
        "SELECT COUNT() FROM Account WHERE Name = 'x ORDER BY y' LIMIT 5"
    )
    assert soql.count_query("SELECT COUNT() FROM User") == "SELECT COUNT() FROM User"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("SELECT Id, Name FROM Account WHERE Name = 'GROUP BY' ORDER BY Id", None),
        ("SELECT Id, Max__c, Owner.Count__c FROM Account", None),
        ("SELECT COUNT() FROM Account", "aggregate function"),
        ("SELECT OwnerId, COUNT(Id) FROM Account GROUP BY OwnerId", "aggregate function"),
        ("SELECT Id FROM Account LIMIT 5 OFFSET 10", "OFFSET"),
        ("SELECT Id, (SELECT Id FROM Contacts) FROM Account", "subquery"),
        ("SELECT TYPEOF What WHEN Account THEN Name END FROM Event", "TYPEOF"),
    ],
)
def test_bulk_incompatibility(text: str, reason: str | None) -> None:
    """Queries Bulk 2.0 cannot run are recognised; string contents are ignored."""
    assert soql.bulk_incompatibility(text) == reason


def test_id_chunks_fill_the_query_uri_budget_and_no_more() -> None:
    """The team re-read asks for as many accounts per query as the REST URI limit allows."""
    from urllib.parse import urlencode

    from connectors.sfid import to18

    ids = [to18(f"001{i:012d}") for i in range(2000)]

    def render(in_list: str) -> str:
        return soql.select(
            "AccountTeamMember", ("Id", "AccountId"), where=f"AccountId IN {in_list}"
        )

    chunks = list(soql.id_chunks(ids, render))
    assert [i for c in chunks for i in c] == ids
    sizes = [len(urlencode({"q": render(soql.id_list(c))})) for c in chunks]
    assert max(sizes) <= soql.MAX_QUERY_URI_BYTES + 2
    # full chunks: one more Id would not have fitted
    assert len(urlencode({"q": render(soql.id_list([*chunks[0], ids[-1]]))})) > (
        soql.MAX_QUERY_URI_BYTES + 2
    )
    assert len(chunks) == 5  # 200 Ids a query would have taken 10
    assert list(soql.id_chunks([], render)) == []
    assert list(soql.id_chunks(ids[:3], render, budget=10)) == [[i] for i in ids[:3]]
