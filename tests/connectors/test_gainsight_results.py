"""Mapping every plausible Gainsight write-result shape back to input order (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.gainsight import UNCONFIRMED, WriteResult, map_write_results

G = [f"1P02GSID{i:028d}" for i in range(6)]


def upd(n: int) -> list[dict[str, Any]]:
    return [{"Gsid": G[i], "RiskFlags__gc": f"F{i}"} for i in range(n)]


def ins(n: int) -> list[dict[str, Any]]:
    return [{"Name": f"Acme {i}", "Arr": 1000 * i} for i in range(n)]


def summary(results: list[WriteResult]) -> list[tuple[int, str | None, bool, str | None]]:
    return [(r.index, r.id, r.success, r.code) for r in results]


def test_update_all_confirmed_by_gsid_echo() -> None:
    """Echoed records (as sent, plus Gsid) confirm every update."""
    records = upd(3)
    data = {"count": 3, "errors": None, "records": [dict(r) for r in records]}
    out = map_write_results(records, [10, 11, 12], data, update=True, keys=["Gsid"])
    assert summary(out) == [(10, G[0], True, None), (11, G[1], True, None), (12, G[2], True, None)]


def test_errors_by_index_with_field_details() -> None:
    """data.errors entries with index/errorCode/errorDesc and nested fieldName fail that record."""
    records = upd(3)
    data = {
        "count": 2,
        "records": [records[0], records[2]],
        "errors": [
            {
                "index": 1,
                "record": {"Gsid": G[1]},
                "errorCode": "GSOBJ_1004",
                "errorDesc": "Either the Gainsight ID is invalid or missing",
                "errors": [{"errorMessage": "bad", "errorCode": "GSOBJ_1004", "fieldName": "Csm"}],
            }
        ],
    }
    out = map_write_results(records, [0, 1, 2], data, update=True, keys=["Gsid"])
    assert summary(out) == [
        (0, G[0], True, None),
        (1, G[1], False, "GSOBJ_1004"),
        (2, G[2], True, None),
    ]
    assert out[1].fields == ("Csm",)
    assert (out[1].message or "").startswith("Either the Gainsight ID")


@pytest.mark.parametrize(
    "entry",
    [
        {"Gsid": G[1], "code": "GSOBJ_1001", "message": "too long"},
        {"record": {"Gsid": G[1], "RiskFlags__gc": "F1"}, "errorCode": "GSOBJ_1001"},
        {"gsid": G[1], "errorCode": "GSOBJ_1001", "errorDesc": "too long"},
        {"index": "1", "errorCode": "GSOBJ_1001"},
    ],
    ids=["by Gsid + code/message", "by record echo", "lower-case gsid", "index as text"],
)
def test_error_entries_are_located_every_way(entry: dict[str, Any]) -> None:
    """An error names its record by index, Gsid or echoed record; all are understood."""
    records = upd(3)
    data = {"count": 2, "records": [{"Gsid": G[0]}, {"Gsid": G[2]}], "errors": [entry]}
    out = map_write_results(records, [0, 1, 2], data, update=True, keys=["Gsid"])
    assert [r.success for r in out] == [True, False, True]
    assert out[1].code == "GSOBJ_1001"


def test_short_count_on_gsid_update_marks_unlisted_unconfirmed() -> None:
    """count < batch with records listing Gsids: matched by Gsid, the rest UNCONFIRMED."""
    records = upd(4)
    data = {"count": 2, "records": [{"Gsid": G[3]}, {"Gsid": G[1]}]}
    out = map_write_results(records, [0, 1, 2, 3], data, update=True, keys=["Gsid"])
    assert [(r.success, r.code) for r in out] == [
        (False, UNCONFIRMED), (True, None), (False, UNCONFIRMED), (True, None),
    ]  # fmt: skip
    assert out[0].id == G[0]  # a failed update still names its record


def test_update_on_other_keys_matches_echo_by_key_values() -> None:
    """An update keyed on Name is confirmed by the echoed Name (case-insensitive)."""
    records = [{"Name": "Acme", "Arr": 1}, {"Name": "Globex", "Arr": 2}]
    data = {"count": 1, "records": [{"Name": "GLOBEX", "Arr": 2, "Gsid": G[4]}]}
    out = map_write_results(records, [0, 1], data, update=True, keys=["Name"])
    assert summary(out) == [(0, None, False, UNCONFIRMED), (1, G[4], True, None)]


def test_insert_new_gsids_in_order() -> None:
    """Insert answers bare Gsids; with none failed they map in input order."""
    data = {"count": 3, "errors": None, "records": [{"Gsid": G[0]}, {"Gsid": G[1]}, {"Gsid": G[2]}]}
    out = map_write_results(ins(3), [0, 1, 2], data, update=False)
    assert [r.id for r in out] == G[:3]
    assert all(r.success for r in out)


def test_insert_partial_failure_maps_gsids_to_the_survivors() -> None:
    """Insert with one indexed error: the new Gsids go to the other records, in order."""
    data = {
        "count": 2,
        "records": [{"Gsid": G[0]}, {"Gsid": G[2]}],
        "errors": [{"index": 1, "errorCode": "GSOBJ_1007", "errorDesc": "Invalid field value"}],
    }
    out = map_write_results(ins(3), [5, 6, 7], data, update=False)
    assert summary(out) == [
        (5, G[0], True, None),
        (6, None, False, "GSOBJ_1007"),
        (7, G[2], True, None),
    ]


def test_insert_short_count_without_errors_is_unconfirmed() -> None:
    """Insert with fewer Gsids than records and no errors: nothing can be attributed."""
    data = {"count": 1, "records": [{"Gsid": G[0]}]}
    out = map_write_results(ins(3), [0, 1, 2], data, update=False)
    assert [r.code for r in out] == [UNCONFIRMED] * 3
    assert not any(r.success for r in out)


def test_insert_echo_with_fields_is_matched_by_content() -> None:
    """Inserted records echoed with their fields are matched even when some are missing."""
    records = ins(3)
    data = {"count": 1, "records": [{"Gsid": G[5], "Name": "Acme 2", "Arr": 2000}]}
    out = map_write_results(records, [0, 1, 2], data, update=False)
    assert summary(out) == [
        (0, None, False, UNCONFIRMED), (1, None, False, UNCONFIRMED), (2, G[5], True, None),
    ]  # fmt: skip


def test_result_false_with_data_fails_every_record_with_the_call_code() -> None:
    """result:false + data: unattributed records fail with the call's code."""
    data = {"count": 0, "records": [], "errors": [{"index": 0, "errorCode": "GSOBJ_1011"}]}
    out = map_write_results(
        upd(3), [0, 1, 2], data, update=True, keys=["Gsid"],
        failed_code="GSOBJ_1011", failed_message="No entity matches the given criteria",
    )  # fmt: skip
    assert [r.code for r in out] == ["GSOBJ_1011"] * 3
    assert not any(r.success for r in out)
    assert out[2].message == "No entity matches the given criteria"


def test_result_false_without_data() -> None:
    """result:false with data null (the no-match case) fails the whole batch with that code."""
    out = map_write_results(upd(2), [3, 4], None, update=True, keys=["Gsid"], failed_code="X_1")
    assert summary(out) == [(3, G[0], False, "X_1"), (4, G[1], False, "X_1")]


def test_result_true_with_errors_only_means_the_rest_went_through() -> None:
    """data.errors alone (no records list, no count): the unfaulted records succeeded."""
    data = {"errors": [{"Gsid": G[1], "errorCode": "GSOBJ_1001"}]}
    out = map_write_results(upd(3), [0, 1, 2], data, update=True, keys=["Gsid"])
    assert [r.success for r in out] == [True, False, True]


@pytest.mark.parametrize(
    ("data", "ok"),
    [(None, True), ({}, True), ({"count": 2}, True), ({"count": 1}, False)],
    ids=["data null", "empty dict", "count matches", "count short"],
)
def test_count_only_responses(data: Any, ok: bool) -> None:
    """With nothing listed, result:true succeeds unless the count says fewer were written."""
    out = map_write_results(upd(2), [0, 1], data, update=True, keys=["Gsid"])
    assert all(r.success is ok for r in out)
    if not ok:
        assert {r.code for r in out} == {UNCONFIRMED}


def test_unlocatable_errors_matching_the_open_count_are_assigned_in_order() -> None:
    """Errors that name no record, as many as the unconfirmed records, are taken in order."""
    data = {"records": [{"Gsid": G[0]}], "errors": [{"errorCode": "E1"}, {"errorCode": "E2"}]}
    out = map_write_results(upd(3), [0, 1, 2], data, update=True, keys=["Gsid"])
    assert [r.code for r in out] == [None, "E1", "E2"]


# -- Cockpit shapes ------------------------------------------------------------------------


def cta(n: int) -> list[dict[str, Any]]:
    return [{"Name": f"Red health: A{i}", "CompanyId": G[i], "type": "Risk"} for i in range(n)]


REFS = ["0", "1", "2"]


def test_cta_list_of_items_by_reference_id() -> None:
    """data as a list of per-item results, out of order, mapped by referenceId."""
    data = [
        {"referenceId": "2", "Gsid": "1S03", "success": True, "errors": []},
        {"referenceId": "0", "Gsid": "1S01", "success": True, "errors": []},
        {"referenceId": "1", "Gsid": None, "success": False,
         "errors": [{"errorCode": "GSOBJ_1012", "errorDesc": "Bad picklist",
                     "fieldName": "reason"}]},
    ]  # fmt: skip
    out = map_write_results(cta(3), [0, 1, 2], data, update=False, refs=REFS)
    assert summary(out) == [
        (0, "1S01", True, None),
        (1, None, False, "GSOBJ_1012"),
        (2, "1S03", True, None),
    ]
    assert out[1].fields == ("reason",)


def test_cta_dict_keyed_by_reference_id() -> None:
    """data as {referenceId: result} with dict, string and list values."""
    data = {
        "0": {"Gsid": "1S01", "success": True},
        "1": "1S02",
        "2": [{"success": False, "errors": [{"code": "COCKPIT_5102", "message": "bad"}]}],
    }
    out = map_write_results(cta(3), [0, 1, 2], data, update=False, refs=REFS)
    assert summary(out) == [
        (0, "1S01", True, None),
        (1, "1S02", True, None),
        (2, None, False, "COCKPIT_5102"),
    ]


def test_cta_data_records_with_reference_ids() -> None:
    """data.records carrying referenceId/Gsid, data.errors carrying referenceId."""
    data = {
        "records": [{"referenceId": "0", "Gsid": "1S01"}, {"referenceId": "2", "Gsid": "1S03"}],
        "errors": [{"referenceId": "1", "errorCode": "GSOBJ_1007"}],
    }
    out = map_write_results(cta(3), [0, 1, 2], data, update=False, refs=REFS)
    assert summary(out) == [
        (0, "1S01", True, None),
        (1, None, False, "GSOBJ_1007"),
        (2, "1S03", True, None),
    ]


def test_cta_items_without_reference_ids_are_positional() -> None:
    """A list of bare results (Gsid strings or items without referenceId) maps by position."""
    out = map_write_results(cta(2), [0, 1], ["1S01", {"Gsid": "1S02"}], update=False, refs=REFS[:2])
    assert summary(out) == [(0, "1S01", True, None), (1, "1S02", True, None)]


def test_cta_update_items_by_gsid_and_string_success_flag() -> None:
    """Update results carrying only the CTA Gsid and success as text are mapped by Gsid."""
    records = [
        {"Gsid": "1S01", "status": "Closed Success"},
        {"Gsid": "1S02", "status": "Closed Success"},
    ]
    data = [
        {"Gsid": "1S02", "success": "true"},
        {"Gsid": "1S01", "success": "false", "error": "locked"},
    ]
    out = map_write_results(records, [0, 1], data, update=True, keys=["Gsid"], refs=REFS[:2])
    assert summary(out) == [(0, "1S01", False, "FAILED"), (1, "1S02", True, None)]
    assert out[0].message == "locked"


def test_cta_create_without_ids_is_success_without_id() -> None:
    """result:true with data null: created, but the id is unknown (the engine dedupes by list)."""
    out = map_write_results(cta(2), [0, 1], None, update=False, refs=REFS[:2])
    assert [(r.success, r.id) for r in out] == [(True, None), (True, None)]
