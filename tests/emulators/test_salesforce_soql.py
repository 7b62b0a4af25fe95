"""Salesforce emulator: the SOQL parser and evaluator."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from emulators.salesforce import SalesforceEmulator
from emulators.salesforce.soql import SoqlError, compile_query, relative_range, tokenize
from emulators.salesforce.testing import serve, shared_credentials, simple_salesforce_client
from emulators.store import Clock
from emulators.tls import TlsMaterial

NOW = dt.datetime(2024, 5, 15, 10, 30, tzinfo=dt.UTC)


def ms(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).timestamp() * 1000)


@pytest.fixture(scope="module")
def sf_emu() -> SalesforceEmulator:
    """Five accounts with hand-picked values (nulls, quotes, stamps) and their owners."""
    emulator = SalesforceEmulator(
        clock=Clock(int(NOW.timestamp() * 1000)), credentials=shared_credentials()
    )
    users = emulator.tables["User"]
    ann, bob = users.new_id(), users.new_id()
    emulator.load(
        "User",
        [
            {"Id": ann, "Username": "ann@x", "FirstName": "Ann", "LastName": "Lee",
             "Email": "Ann@Example.com", "IsActive": True},
            {"Id": bob, "Username": "bob@x", "FirstName": "Bob", "LastName": "Ray",
             "Email": "bob@example.com", "IsActive": False},
        ],
    )  # fmt: skip
    rows = [
        # name, owner, segment, employees, ARR, flags, modstamp
        ("Acme", ann, "Enterprise", 5000, 120000.0, "NO_CSM;RED_HEALTH", "2024-05-01T12:00:00Z"),
        ("acme labs", bob, "SMB", 40, None, None, "2024-05-14T23:59:59Z"),
        ("Beta_Co", ann, "Mid-Market", 300, 60000.0, "RED_HEALTH", "2024-05-15T08:00:00Z"),
        ("O'Brien & Sons", bob, None, None, 49999.5, "HANDOFF_DUE", "2024-04-01T00:00:00Z"),
        ("Zeta 100%", ann, "SMB", 10, 0.0, None, "2024-03-10T09:30:00Z"),
    ]  # fmt: skip
    accounts = emulator.tables["Account"]
    ids = [accounts.new_id() for _ in rows]
    emulator.load(
        "Account",
        [
            {"Id": aid, "Name": name, "OwnerId": owner, "Sales_Segment__c": seg,
             "NumberOfEmployees": emp, "ARR__c": arr, "Risk_Flags__c": flags,
             "SystemModstamp": ms(stamp), "CreatedDate": ms("2024-01-01T00:00:00+00:00")}
            for aid, (name, owner, seg, emp, arr, flags, stamp) in zip(ids, rows, strict=True)
        ],
    )  # fmt: skip
    opps = emulator.tables["Opportunity"]
    emulator.load(
        "Opportunity",
        [
            {"Id": opps.new_id(), "Name": "Renewal", "AccountId": ids[0], "OwnerId": bob,
             "StageName": "Negotiation/Review", "CloseDate": "2024-05-15"},
            {"Id": opps.new_id(), "Name": "Upsell", "AccountId": ids[0], "OwnerId": ann,
             "StageName": "Closed Won", "CloseDate": "2024-05-01"},
            {"Id": opps.new_id(), "Name": "Later", "AccountId": ids[2], "OwnerId": ann,
             "StageName": "Prospecting", "CloseDate": "2024-08-01"},
            {"Id": opps.new_id(), "Name": "Orphan", "AccountId": None, "OwnerId": ann,
             "StageName": "Closed Lost", "CloseDate": "2024-05-16"},
        ],
    )  # fmt: skip
    return emulator


@pytest.fixture(scope="module")
def ids(sf_emu: SalesforceEmulator) -> list[str]:
    """Account Ids in load order (Acme, acme labs, Beta_Co, O'Brien & Sons, Zeta 100%)."""
    return list(sf_emu.tables["Account"].rows)


def names(sf_emu: SalesforceEmulator, soql: str, *, include_deleted: bool = False) -> list[str]:
    plan = compile_query(soql, sf_emu.tables, now_ms=sf_emu.clock.now_ms())
    rows = plan.table.rows
    return [rows[i][plan.table.pos["name"]] for i in plan.execute(include_deleted=include_deleted)]


ACC = "SELECT Name FROM Account"


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("Name = 'acme'", ["Acme"]),  # equality is case-insensitive
        ("Name != 'Acme'", ["acme labs", "Beta_Co", "O'Brien & Sons", "Zeta 100%"]),
        ("Name <> 'Acme'", ["acme labs", "Beta_Co", "O'Brien & Sons", "Zeta 100%"]),
        ("Name = 'O\\'Brien & Sons'", ["O'Brien & Sons"]),  # escaped quote
        ("Name LIKE 'acme%'", ["Acme", "acme labs"]),
        ("Name LIKE '%CO'", ["Beta_Co"]),
        ("Name LIKE 'Beta\\_Co'", ["Beta_Co"]),  # \_ is a literal underscore
        ("Name LIKE 'Bet__Co'", ["Beta_Co"]),  # _ matches one character
        ("Name LIKE '%100\\%'", ["Zeta 100%"]),
        ("NumberOfEmployees > 300", ["Acme"]),
        ("NumberOfEmployees >= 300", ["Acme", "Beta_Co"]),
        ("NumberOfEmployees < 40", ["Zeta 100%"]),  # null never compares
        ("NumberOfEmployees <= 40", ["acme labs", "Zeta 100%"]),
        ("NumberOfEmployees = null", ["O'Brien & Sons"]),
        ("NumberOfEmployees != null", ["Acme", "acme labs", "Beta_Co", "Zeta 100%"]),
        ("ARR__c >= 49999.5", ["Acme", "Beta_Co", "O'Brien & Sons"]),
        ("ARR__c = 0", ["Zeta 100%"]),
        ("ARR__c > -1.5", ["Acme", "Beta_Co", "O'Brien & Sons", "Zeta 100%"]),
        ("Sales_Segment__c != 'SMB'", ["Acme", "Beta_Co", "O'Brien & Sons"]),  # != keeps nulls
        ("Sales_Segment__c IN ('smb', 'Enterprise')", ["Acme", "acme labs", "Zeta 100%"]),
        ("Sales_Segment__c NOT IN ('SMB')", ["Acme", "Beta_Co", "O'Brien & Sons"]),
        ("Sales_Segment__c IN ('SMB', null)", ["acme labs", "O'Brien & Sons", "Zeta 100%"]),
        ("Risk_Flags__c INCLUDES ('RED_HEALTH')", ["Acme", "Beta_Co"]),
        ("Risk_Flags__c INCLUDES ('NO_CSM;RED_HEALTH', 'HANDOFF_DUE')",
         ["Acme", "O'Brien & Sons"]),
        ("Risk_Flags__c EXCLUDES ('RED_HEALTH')", ["acme labs", "O'Brien & Sons", "Zeta 100%"]),
        ("Risk_Flags__c = 'RED_HEALTH;NO_CSM'", ["Acme"]),  # order-insensitive equality
        ("Owner.IsActive = false", ["acme labs", "O'Brien & Sons"]),
        ("Owner.Email = 'ann@example.com'", ["Acme", "Beta_Co", "Zeta 100%"]),
        ("Owner.Name LIKE 'bob%'", ["acme labs", "O'Brien & Sons"]),
        # precedence: parentheses decide; NOT binds to the following condition
        ("Name = 'Acme' OR (Sales_Segment__c = 'SMB' AND NumberOfEmployees < 20)",
         ["Acme", "Zeta 100%"]),
        ("(Name = 'Acme' OR Sales_Segment__c = 'SMB') AND NumberOfEmployees < 20",
         ["Zeta 100%"]),
        ("NOT Name LIKE 'a%'", ["Beta_Co", "O'Brien & Sons", "Zeta 100%"]),
        ("NOT (Sales_Segment__c = 'SMB' OR Sales_Segment__c = null)", ["Acme", "Beta_Co"]),
        ("Name = 'Acme' AND (NOT NumberOfEmployees > 100)", []),
        ("Name = 'x' OR Name = 'y' OR Name = 'beta_co'", ["Beta_Co"]),
        # datetimes: Z, offsets, milliseconds
        ("SystemModstamp > 2024-05-14T23:59:59Z", ["Beta_Co"]),
        ("SystemModstamp >= 2024-05-14T23:59:59.000Z", ["acme labs", "Beta_Co"]),
        ("SystemModstamp = 2024-05-15T01:59:59+02:00", ["acme labs"]),
        ("SystemModstamp < 2024-03-10T04:30:00-05:00", []),
        ("SystemModstamp <= 2024-03-10T04:30:00-0500", ["Zeta 100%"]),
        # relative date literals (now = 2024-05-15T10:30Z)
        ("SystemModstamp = TODAY", ["Beta_Co"]),
        ("SystemModstamp = YESTERDAY", ["acme labs"]),
        ("SystemModstamp > YESTERDAY", ["Beta_Co"]),
        ("SystemModstamp < YESTERDAY", ["Acme", "O'Brien & Sons", "Zeta 100%"]),
        ("SystemModstamp = LAST_N_DAYS:14", ["Acme", "acme labs", "Beta_Co"]),
        ("SystemModstamp = THIS_MONTH", ["Acme", "acme labs", "Beta_Co"]),
        ("SystemModstamp = LAST_90_DAYS", ["Acme", "acme labs", "Beta_Co", "O'Brien & Sons",
                                           "Zeta 100%"]),
        ("CreatedDate = THIS_YEAR AND SystemModstamp >= LAST_MONTH", ["Acme", "acme labs",
                                                                     "Beta_Co", "O'Brien & Sons"]),
        # Ids: 15 or 18 characters
        ("Id = '{id0_15}'", ["Acme"]),
        ("Id IN ('{id0}', '{id2_15}')", ["Acme", "Beta_Co"]),
        ("OwnerId != '{owner0}'", ["acme labs", "O'Brien & Sons"]),
    ],
)  # fmt: skip
def test_where_clauses(sf_emu, ids, where, expected):
    """WHERE operators, literals, null rules and precedence select the right rows."""
    owner0 = sf_emu.tables["Account"].value(ids[0], "OwnerId")
    where = where.format(id0=ids[0], id0_15=ids[0][:15], id2_15=ids[2][:15], owner0=owner0)
    assert names(sf_emu, f"{ACC} WHERE {where}") == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("SELECT Name FROM Opportunity WHERE CloseDate = TODAY", ["Renewal"]),
        ("SELECT Name FROM Opportunity WHERE CloseDate > 2024-05-15", ["Later", "Orphan"]),
        ("SELECT Name FROM Opportunity WHERE CloseDate = NEXT_N_DAYS:1", ["Orphan"]),
        ("SELECT Name FROM Opportunity WHERE CloseDate = NEXT_90_DAYS", ["Later", "Orphan"]),
        ("SELECT Name FROM Opportunity WHERE CloseDate < THIS_MONTH", []),
        ("SELECT Name FROM Opportunity WHERE IsWon = true", ["Upsell"]),
        ("SELECT Name FROM Opportunity WHERE IsClosed = false AND Probability >= 80",
         ["Renewal"]),
        ("SELECT Name FROM Opportunity WHERE Account.Name = 'ACME'", ["Renewal", "Upsell"]),
        ("SELECT Name FROM Opportunity WHERE Account.Owner.Email = 'ann@example.com'",
         ["Renewal", "Upsell", "Later"]),
        ("SELECT Name FROM Opportunity WHERE AccountId = null", ["Orphan"]),
        ("SELECT Name FROM Opportunity WHERE AccountId = '{id0}' AND IsWon = false", ["Renewal"]),
    ],
)  # fmt: skip
def test_dates_booleans_and_relationships(sf_emu, ids, query, expected):
    """Date literals, booleans and parent paths (two levels) filter Opportunities."""
    assert names(sf_emu, query.format(id0=ids[0])) == expected


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        ("Name", ["Acme", "acme labs", "Beta_Co", "O'Brien & Sons", "Zeta 100%"]),
        ("Name DESC", ["Zeta 100%", "O'Brien & Sons", "Beta_Co", "acme labs", "Acme"]),
        ("NumberOfEmployees", ["O'Brien & Sons", "Zeta 100%", "acme labs", "Beta_Co", "Acme"]),
        ("NumberOfEmployees NULLS LAST", ["Zeta 100%", "acme labs", "Beta_Co", "Acme",
                                          "O'Brien & Sons"]),
        ("NumberOfEmployees DESC", ["Acme", "Beta_Co", "acme labs", "Zeta 100%",
                                    "O'Brien & Sons"]),
        ("NumberOfEmployees DESC NULLS FIRST", ["O'Brien & Sons", "Acme", "Beta_Co",
                                                "acme labs", "Zeta 100%"]),
        ("Sales_Segment__c ASC, Name DESC", ["O'Brien & Sons", "Acme", "Beta_Co", "Zeta 100%",
                                             "acme labs"]),
        ("Owner.LastName DESC, SystemModstamp", ["O'Brien & Sons", "acme labs", "Zeta 100%",
                                                 "Acme", "Beta_Co"]),
        ("Name LIMIT 2", ["Acme", "acme labs"]),
        ("Name LIMIT 2 OFFSET 3", ["O'Brien & Sons", "Zeta 100%"]),
        ("Name OFFSET 4", ["Zeta 100%"]),
    ],
)  # fmt: skip
def test_order_by_limit_offset(sf_emu, order, expected):
    """ORDER BY several keys, ASC/DESC, NULLS FIRST/LAST (nulls first by default), LIMIT/OFFSET."""
    assert names(sf_emu, f"{ACC} ORDER BY {order}") == expected


def test_keywords_and_field_names_are_case_insensitive(sf_emu):
    """Keywords and field names match in any case; results use the canonical names."""
    plan = compile_query(
        "select NAME, owner.EMAIL from ACCOUNT where name = 'beta_co' order by NAME asc",
        sf_emu.tables,
        now_ms=sf_emu.clock.now_ms(),
    )
    (rid,) = plan.execute(include_deleted=False)
    record = plan.render(plan.table.rows[rid], "62.0")
    assert list(record) == ["attributes", "Name", "Owner"]
    assert record["Owner"]["Email"] == "Ann@Example.com"
    assert record["Owner"]["attributes"]["type"] == "User"


@pytest.mark.parametrize(
    ("query", "code", "fragment"),
    [
        ("SELECT Id FROM Foo", "INVALID_TYPE", "sObject type 'Foo' is not supported."),
        ("SELECT Nmae FROM Account", "INVALID_FIELD", "No such column 'Nmae' on entity 'Account'"),
        ("SELECT Id FROM Account WHERE Foo__c = 1", "INVALID_FIELD", "No such column 'Foo__c'"),
        ("SELECT Boss.Name FROM Account", "INVALID_FIELD", "Didn't understand relationship 'Boss'"),
        ("SELECT Id FROM Account WHERE", "MALFORMED_QUERY", "unexpected token: <EOF>"),
        ("SELECT Id FROM Account WHERE Name = 'a' AND Name = 'b' OR Name = 'c'",
         "MALFORMED_QUERY", "unexpected token: OR"),
        ("SELECT Id FROM Account WHERE Name = 'a' AND NOT Name = 'b'", "MALFORMED_QUERY",
         "unexpected token: NOT"),
        ("SELECT Id FROM Account WHERE Name = 'open", "MALFORMED_QUERY", "unexpected token"),
        ("SELECT Id, FROM Account", "MALFORMED_QUERY", "unexpected token: FROM"),
        ("SELECT Id FROM Account GROUP BY Name", "MALFORMED_QUERY", "GROUP BY"),
        ("SELECT Id, (SELECT Id FROM Opportunities) FROM Account", "MALFORMED_QUERY",
         "subqueries"),
        ("SELECT MAX(NumberOfEmployees) FROM Account", "MALFORMED_QUERY", "only COUNT()"),
        ("SELECT COUNT(Id) FROM Account", "MALFORMED_QUERY", "only COUNT()"),
        ("SELECT TYPEOF Owner WHEN User THEN Name END FROM Account", "MALFORMED_QUERY",
         "TYPEOF"),
        ("SELECT Id FROM Account WHERE Id IN (SELECT AccountId FROM Opportunity)",
         "MALFORMED_QUERY", "semi-join"),
        ("SELECT Id FROM Account WHERE SystemModstamp > 2024-05-01",
         "INVALID_QUERY_FILTER_OPERATOR",
         "must be of type dateTime and should not be enclosed in quotes"),
        ("SELECT Id FROM Opportunity WHERE CloseDate > 2024-05-01T00:00:00Z",
         "INVALID_QUERY_FILTER_OPERATOR", "must be of type date"),
        ("SELECT Id FROM Account WHERE NumberOfEmployees = '5'", "INVALID_QUERY_FILTER_OPERATOR",
         "must be of type int"),
        ("SELECT Id FROM Account WHERE Name = 5", "INVALID_QUERY_FILTER_OPERATOR",
         "must be of type string and should be enclosed in quotes"),
        ("SELECT Id FROM Account WHERE Id = '001abc'", "INVALID_QUERY_FILTER_OPERATOR",
         "invalid ID field: 001abc"),
        ("SELECT Id FROM Account WHERE Name LIKE 5", "INVALID_QUERY_FILTER_OPERATOR", "LIKE"),
        ("SELECT Id FROM Account OFFSET 2001", "NUMBER_OUTSIDE_VALID_RANGE", "2000"),
        ("SELECT Id, Id FROM Account", "MALFORMED_QUERY", "duplicate field selected: Id"),
        ("SELECT Id FROM Account WHERE Name = 'a\\q'", "MALFORMED_QUERY", "Illegal character"),
    ],
)  # fmt: skip
def test_errors_carry_the_right_code(sf_emu, query, code, fragment):
    """Bad queries raise the real error codes with the expected message text."""
    with pytest.raises(SoqlError) as info:
        compile_query(query, sf_emu.tables, now_ms=sf_emu.clock.now_ms())
    assert info.value.code == code
    assert fragment in info.value.message(query)


def test_error_message_points_at_row_and_column(sf_emu):
    """MALFORMED_QUERY messages quote the line and give ERROR at Row:N:Column:M."""
    query = "SELECT Id\nFROM Account\nWHERE Name = 'a' AND Name = 'b' OR Name = 'c'"
    with pytest.raises(SoqlError) as info:
        compile_query(query, sf_emu.tables, now_ms=sf_emu.clock.now_ms())
    message = info.value.message(query)
    assert "ERROR at Row:3:Column:33" in message
    assert message.startswith("\nWHERE Name = 'a' AND Name = 'b' OR Name = 'c'\n")


def test_tokenizer_reads_literals():
    """Strings unescape, numbers, dates and datetimes become typed values."""
    tokens = tokenize("'it\\'s \\\\ \\n' -12 3.5 2024-05-01 2024-05-01T10:00:00.5Z")
    kinds = [(t.kind, t.value) for t in tokens[:-1]]
    assert kinds == [
        ("STRING", "it's \\ \n"),
        ("NUMBER", -12),
        ("NUMBER", 3.5),
        ("DATE", "2024-05-01"),
        ("DATETIME", ms("2024-05-01T10:00:00.500+00:00")),
    ]


@pytest.mark.parametrize(
    ("literal", "n", "start", "end"),
    [
        ("TODAY", None, "2024-05-15", "2024-05-16"),
        ("YESTERDAY", None, "2024-05-14", "2024-05-15"),
        ("TOMORROW", None, "2024-05-16", "2024-05-17"),
        ("THIS_WEEK", None, "2024-05-12", "2024-05-19"),  # weeks start on Sunday
        ("LAST_MONTH", None, "2024-04-01", "2024-05-01"),
        ("NEXT_MONTH", None, "2024-06-01", "2024-07-01"),
        ("THIS_QUARTER", None, "2024-04-01", "2024-07-01"),
        ("LAST_90_DAYS", None, "2024-02-15", "2024-05-16"),
        ("NEXT_90_DAYS", None, "2024-05-16", "2024-08-14"),
        ("LAST_N_DAYS", 1, "2024-05-14", "2024-05-16"),
        ("NEXT_N_DAYS", 7, "2024-05-16", "2024-05-23"),
        ("THIS_YEAR", None, "2024-01-01", "2025-01-01"),
    ],
)
def test_relative_date_ranges(literal, n, start, end):
    """Relative date literals cover the documented day ranges."""
    lo, hi = relative_range(literal, n, NOW.date())
    assert (lo.isoformat(), hi.isoformat()) == (start, end)


@pytest.fixture(scope="module")
def served(sf_emu: SalesforceEmulator, tls: TlsMaterial) -> Iterator[Salesforce]:
    with serve(sf_emu, tls) as server:
        yield simple_salesforce_client(server, tls, sf_emu.issue_token())


def test_query_errors_over_http_are_error_lists(served):
    """Over HTTP a bad query is a 400 with [{message, errorCode}] (simple-salesforce raises)."""
    with pytest.raises(SalesforceMalformedRequest) as info:
        served.query("SELECT Nmae FROM Account")
    assert info.value.status == 400
    (error,) = info.value.content
    assert error["errorCode"] == "INVALID_FIELD"
    assert "ERROR at Row:1:Column:8" in error["message"]


def test_query_renders_types_and_parent_objects(served, sf_emu):
    """Records carry attributes, nested parents (or null), datetimes, dates and numbers."""
    result = served.query(
        "SELECT Name, CloseDate, Amount, Probability, IsWon, SystemModstamp, Account.Name, "
        "Account.Owner.Email FROM Opportunity ORDER BY Name"
    )
    assert result["totalSize"] == 4
    assert result["done"] is True
    later, orphan = result["records"][0], result["records"][1]
    assert later["attributes"]["type"] == "Opportunity"
    assert later["attributes"]["url"].startswith("/services/data/v62.0/sobjects/Opportunity/006")
    assert later["CloseDate"] == "2024-08-01"
    assert later["Amount"] is None
    assert later["Probability"] == 10.0
    assert later["IsWon"] is False
    assert later["SystemModstamp"].endswith(".000+0000")
    assert later["Account"]["Name"] == "Beta_Co"
    assert later["Account"]["Owner"]["Email"] == "Ann@Example.com"
    assert orphan["Name"] == "Orphan"
    assert orphan["Account"] is None
    count = served.query("SELECT COUNT() FROM Opportunity WHERE IsClosed = true")
    assert count == {"totalSize": 2, "done": True, "records": []}
