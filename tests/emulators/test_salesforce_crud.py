"""Salesforce emulator: single-record CRUD, validation, describe and limits."""

from __future__ import annotations

import datetime as dt

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest, SalesforceResourceNotFound

from connectors.sfid import to18
from emulators.salesforce import SalesforceApiError, SalesforceEmulator
from emulators.salesforce.testing import SmallOrg, seed_small_org

GOOD_ATM = {
    "TeamMemberRole": "Account Executive",
    "AccountAccessLevel": "Edit",
    "OpportunityAccessLevel": "Read",
    "CaseAccessLevel": "Read",
}


# Every test runs against the seeded org, also where it does not name ``org``.
pytestmark = pytest.mark.usefixtures("org")


@pytest.fixture
def org(sf_emu: SalesforceEmulator) -> SmallOrg:
    return seed_small_org(sf_emu, accounts=3)


def error_of(info: pytest.ExceptionInfo[SalesforceMalformedRequest]) -> dict[str, object]:
    (error,) = info.value.content
    return error


def test_create_get_update_delete_roundtrip(sf_emu, org, sf):
    """POST 201 {id, success, errors}; GET renders; PATCH and DELETE answer 204."""
    created = sf.Account.create({"Name": "Fresh", "OwnerId": org.users[0], "Type": "Prospect"})
    assert created["success"] is True
    assert created["errors"] == []
    rid = created["id"]
    assert rid.startswith("001")
    assert len(rid) == 18
    record = sf.Account.get(rid)
    assert record["attributes"] == {
        "type": "Account",
        "url": f"/services/data/v62.0/sobjects/Account/{rid}",
    }
    assert record["Name"] == "Fresh"
    assert record["IsDeleted"] is False
    assert record["CreatedDate"].endswith(".000+0000")
    assert sf.Account.update(rid[:15], {"ARR__c": 75000}) == 204
    assert sf_emu.get("Account", rid)["ARR__c"] == 75000.0
    partial = sf.Account.get(rid, params={"fields": "Name,ARR__c"})
    assert set(partial) == {"attributes", "Name", "ARR__c"}
    assert sf.Account.delete(rid) == 204
    assert sf_emu.get("Account", rid)["IsDeleted"] is True
    with pytest.raises(SalesforceResourceNotFound) as info:
        sf.Account.get(rid)
    assert info.value.content == [
        {"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}
    ]


def test_stamps_move_on_every_write_in_whole_seconds(sf_emu, org, sf):
    """SystemModstamp / LastModifiedDate move on update; stamps are whole seconds."""
    sf_emu.clock.set(1_714_564_800_123)
    rid = sf.Account.create({"Name": "Stamped"})["id"]
    created = sf_emu.get("Account", rid)
    assert created["SystemModstamp"] == 1_714_564_800_000
    sf_emu.clock.advance(5_000)
    sf.Account.update(rid, {"Name": "Stamped again"})
    updated = sf_emu.get("Account", rid)
    assert updated["SystemModstamp"] == updated["LastModifiedDate"] == 1_714_564_805_000
    assert updated["CreatedDate"] == 1_714_564_800_000


def test_bad_and_missing_ids(sf_emu, org, sf):
    """Malformed or wrong-object ids answer 400 MALFORMED_ID; unknown ids 404 NOT_FOUND."""
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.Account.get("not-an-id")
    assert error_of(info)["errorCode"] == "MALFORMED_ID"
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.Account.get(org.opportunities[0])
    assert error_of(info)["message"] == (
        f"Account ID: id value of incorrect type: {org.opportunities[0]}"
    )
    unknown = sf_emu.tables["Account"].new_id()
    with pytest.raises(SalesforceResourceNotFound):
        sf.Account.update(unknown, {"Name": "x"})
    with pytest.raises(SalesforceResourceNotFound):
        sf.Foo__c.create({"Name": "x"})


@pytest.mark.parametrize(
    ("obj", "values", "code", "fields", "message"),
    [
        ("Account", {"Type": "Other"}, "REQUIRED_FIELD_MISSING", ["Name"],
         "Required fields are missing: [Name]"),
        ("Opportunity", {"Name": "x"}, "REQUIRED_FIELD_MISSING", ["StageName", "CloseDate"],
         "Required fields are missing: [StageName, CloseDate]"),
        ("Account", {"Name": "x", "Colour__c": "red"}, "INVALID_FIELD", None,
         "No such column 'Colour__c' on sobject of type Account"),
        ("Opportunity", {"Name": "x", "StageName": "Prospecting", "CloseDate": "2024-01-01",
                         "IsWon": True}, "INVALID_FIELD_FOR_INSERT_UPDATE", ["IsWon"],
         "Unable to create/update fields: IsWon."),
        ("Account", {"Name": "x", "Sales_Segment__c": "Huge"},
         "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", ["Sales_Segment__c"],
         "bad value for restricted picklist field: Huge"),
        ("Account", {"Name": "x", "Risk_Flags__c": "NO_CSM;BOGUS"},
         "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", ["Risk_Flags__c"],
         "bad value for restricted picklist field: BOGUS"),
        ("Account", {"Name": "x", "NumberOfEmployees": "many"},
         "INVALID_TYPE_ON_FIELD_IN_RECORD", ["NumberOfEmployees"], "value not of required type"),
        ("Account", {"Name": "x" * 256}, "STRING_TOO_LONG", ["Name"], "max length=255"),
        ("Account", {"Name": "x", "OwnerId": "garbage"}, "MALFORMED_ID", ["OwnerId"],
         "Owner ID: id value of incorrect type: garbage"),
        ("Opportunity", {"Name": "x", "StageName": "Prospecting", "CloseDate": "2024-01-01",
                         "AccountId": to18("001Tm0000009999")},
         "INVALID_CROSS_REFERENCE_KEY", ["AccountId"], "invalid cross reference id"),
    ],
)  # fmt: skip
def test_create_validation(sf_emu, org, sf, obj, values, code, fields, message):
    """Creates are validated with the real error codes; nothing is written on failure."""
    before = len(sf_emu.tables[obj])
    with pytest.raises(SalesforceMalformedRequest) as info:
        getattr(sf, obj).create(values)
    error = error_of(info)
    assert error["errorCode"] == code
    assert message in error["message"]
    assert error.get("fields") == fields
    assert len(sf_emu.tables[obj]) == before


def test_inactive_users_cannot_own_records_or_join_teams(sf_emu, org, sf):
    """An inactive owner or team member is refused with INACTIVE_OWNER_OR_USER."""
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.Account.update(org.accounts[0], {"OwnerId": org.inactive_user})
    error = error_of(info)
    assert error["errorCode"] == "INACTIVE_OWNER_OR_USER"
    assert error["message"] == (
        f"operation performed with inactive user [{org.inactive_user}] as owner of account"
    )
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.AccountTeamMember.create(
            {"AccountId": org.accounts[0], "UserId": org.inactive_user, **GOOD_ATM}
        )
    assert error_of(info)["errorCode"] == "INACTIVE_OWNER_OR_USER"
    assert error_of(info)["fields"] == ["UserId"]


def test_team_member_rules(sf_emu, org, sf):
    """Duplicates, access levels at org defaults, create-only fields and Title from the user."""
    account = org.accounts[0]
    user = org.users[0]  # account 0's existing member is users[2]
    created = sf.AccountTeamMember.create({"AccountId": account, "UserId": user, **GOOD_ATM})
    member = sf_emu.get("AccountTeamMember", created["id"])
    assert member["Title"] == "Title 0"
    assert member["ContactAccessLevel"] == "None"

    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.AccountTeamMember.create({"AccountId": account, "UserId": user, **GOOD_ATM})
    error = error_of(info)
    assert error["errorCode"] == "DUPLICATE_VALUE"
    assert error["message"].startswith("duplicate value found: UserId duplicates value")
    assert created["id"] in error["message"]

    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.AccountTeamMember.create(
            {"AccountId": org.accounts[1], "UserId": org.users[1], "AccountAccessLevel": "Read",
             "OpportunityAccessLevel": "None", "CaseAccessLevel": "None"}
        )  # fmt: skip
    assert error_of(info)["errorCode"] == "FIELD_INTEGRITY_EXCEPTION"

    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.AccountTeamMember.update(created["id"], {"UserId": org.users[1]})
    assert error_of(info)["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    assert error_of(info)["fields"] == ["UserId"]

    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.AccountTeamMember.update(created["id"], {"TeamMemberRole": "Wizard"})
    assert error_of(info)["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"

    assert sf.AccountTeamMember.update(created["id"], {"TeamMemberRole": "Sales Rep"}) == 204
    assert sf.AccountTeamMember.delete(created["id"]) == 204
    assert sf_emu.get("AccountTeamMember", created["id"]) is None  # hard delete
    with pytest.raises(SalesforceResourceNotFound):
        sf.AccountTeamMember.delete(created["id"])


def test_opportunity_stage_drives_calculated_fields(sf_emu, org, sf):
    """IsClosed/IsWon/Probability/ForecastCategoryName follow StageName."""
    rid = sf.Opportunity.create(
        {"Name": "Deal", "StageName": "Qualification", "CloseDate": "2024-06-30",
         "AccountId": org.accounts[0]}
    )["id"]  # fmt: skip
    opp = sf.Opportunity.get(rid)
    assert (opp["IsClosed"], opp["IsWon"], opp["Probability"], opp["ForecastCategoryName"]) == (
        False,
        False,
        20.0,
        "Pipeline",
    )
    sf.Opportunity.update(rid, {"StageName": "Closed Won"})
    opp = sf.Opportunity.get(rid)
    assert (opp["IsClosed"], opp["IsWon"], opp["Probability"], opp["ForecastCategoryName"]) == (
        True,
        True,
        100.0,
        "Closed",
    )
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.Opportunity.update(rid, {"IsWon": False})
    assert error_of(info)["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"


def test_recycle_bin_rows_cannot_be_changed(sf_emu, org, sf):
    """Updating or deleting a soft-deleted row answers ENTITY_IS_DELETED."""
    rid = org.opportunities[0]
    sf.Opportunity.delete(rid)
    for action in (
        lambda: sf.Opportunity.update(rid, {"Name": "zombie"}),
        lambda: sf.Opportunity.delete(rid),
    ):
        with pytest.raises(SalesforceMalformedRequest) as info:
            action()
        assert error_of(info)["errorCode"] == "ENTITY_IS_DELETED"


def test_account_delete_cascades(sf_emu, org, sf):
    """Deleting an Account moves its Opportunities to the Recycle Bin and removes its team."""
    sf.Account.delete(org.accounts[1])
    assert sf_emu.get("Opportunity", org.opportunities[2])["IsDeleted"] is True
    assert sf_emu.get("Opportunity", org.opportunities[3])["IsDeleted"] is True
    assert sf_emu.get("AccountTeamMember", org.members[1]) is None
    assert sf_emu.get("AccountTeamMember", org.members[0]) is not None


def test_direct_helpers_validate_without_logging(sf_emu, org):
    """create/update/delete helpers apply API validation, are not logged and not counted."""
    rid = sf_emu.create("Account", {"Name": "UI made"})
    sf_emu.update("Account", rid, {"Health_Status__c": "Red"})
    with pytest.raises(SalesforceApiError) as info:
        sf_emu.update("Account", rid, {"Health_Status__c": "Purple"})
    assert info.value.status == 400
    assert info.value.errors[0]["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    with pytest.raises(SalesforceApiError) as info:
        sf_emu.update("Account", sf_emu.tables["Account"].new_id(), {"Name": "x"})
    assert info.value.status == 404
    sf_emu.delete("Account", rid)
    assert sf_emu.log.count() == 0
    assert sf_emu.api_usage == 0


def test_describe_global_and_object(sf):
    """Global describe lists the objects; object describe gives field properties."""
    names = {o["name"] for o in sf.describe()["sobjects"]}
    assert names == {"User", "Account", "Opportunity", "AccountTeamMember", "Organization"}
    described = sf.AccountTeamMember.describe()
    assert described["keyPrefix"] == "01M"
    fields = {f["name"]: f for f in described["fields"]}
    assert fields["UserId"]["createable"] is True
    assert fields["UserId"]["updateable"] is False
    assert fields["UserId"]["referenceTo"] == ["User"]
    assert fields["UserId"]["relationshipName"] == "User"
    role = fields["TeamMemberRole"]
    assert role["restrictedPicklist"] is True
    assert {"value": "Account Executive", "label": "Account Executive", "active": True,
            "defaultValue": False, "validFor": None} in role["picklistValues"]  # fmt: skip
    account = sf.Account.describe()
    children = {c["childSObject"]: c for c in account["childRelationships"]}
    assert children["AccountTeamMember"]["relationshipName"] == "AccountTeamMembers"
    assert {f["name"]: f for f in account["fields"]}["Risk_Flags__c"]["type"] == "multipicklist"


def test_limits_reflect_api_usage(sf_emu, sf):
    """/limits reports DailyApiRequests Max/Remaining from the emulator's counter."""
    sf.query("SELECT Id FROM Account")
    limits = sf.limits()
    assert limits["DailyApiRequests"] == {"Max": 5_000_000, "Remaining": 5_000_000 - 2}
    assert limits["DailyBulkV2QueryJobs"]["Max"] == 10_000
    assert "DailyBulkApiBatches" in limits
    assert sf_emu.api_usage == 2
    assert sf.api_usage["api-usage"].used == 2


def test_updated_and_deleted_windows(sf_emu, org, sf):
    """sobjects/{obj}/updated and /deleted list ids changed or deleted inside [start, end)."""
    sf_emu.clock.advance(3_600_000)  # an hour after seeding
    now_ms = sf_emu.clock.now_ms()
    start = dt.datetime.fromtimestamp(now_ms // 1000 - 60, dt.UTC)
    end = start + dt.timedelta(hours=1)
    sf_emu.update("Account", org.accounts[0], {"Name": "Touched"})
    sf_emu.delete("Account", org.accounts[1])
    updated = sf.Account.updated(start, end)
    assert updated["ids"] == [org.accounts[0]]
    assert updated["latestDateCovered"] == end.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    deleted = sf.Account.deleted(start, end)
    stamp = dt.datetime.fromtimestamp(now_ms // 1000, dt.UTC)
    assert deleted["deletedRecords"] == [
        {"id": org.accounts[1], "deletedDate": stamp.strftime("%Y-%m-%dT%H:%M:%S.000+0000")}
    ]
