"""Salesforce emulator, strict profile: what real orgs do that a lenient emulator hides
(``reference/real-tenants.md`` S1-S7), and that the lenient profile keeps today's answers."""

from __future__ import annotations

import time

import jwt
import pytest
import requests
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest, SalesforceResourceNotFound

from emulators.http import EmulatorServer
from emulators.salesforce import SalesforceEmulator
from emulators.salesforce.testing import SmallOrg, http_session, seed_small_org, shared_credentials
from emulators.tls import TlsMaterial

V = "/services/data/v62.0"
CSM = "Customer Success Manager"


@pytest.fixture
def sf_emu() -> SalesforceEmulator:
    return SalesforceEmulator(credentials=shared_credentials(), profile="strict")


@pytest.fixture
def org(sf_emu: SalesforceEmulator) -> SmallOrg:
    return seed_small_org(sf_emu, accounts=3)


@pytest.fixture
def http(tls: TlsMaterial) -> requests.Session:
    return http_session(tls)


def atm(org: SmallOrg, account: int, user: int, role: str = CSM, **levels: str) -> dict[str, str]:
    return {
        "AccountId": org.accounts[account],
        "UserId": org.users[user],
        "TeamMemberRole": role,
        "AccountAccessLevel": "Edit",
        "OpportunityAccessLevel": "Read",
        "CaseAccessLevel": "Read",
        **levels,
    }


def collection_create(sf: Salesforce, records: list[dict[str, str]]) -> list[dict[str, object]]:
    body = {
        "allOrNone": False,
        "records": [{"attributes": {"type": "AccountTeamMember"}, **r} for r in records],
    }
    result = sf.restful("composite/sobjects", method="POST", json=body)
    assert isinstance(result, list)
    return result


def test_a_new_org_has_only_the_default_team_roles(sf: Salesforce) -> None:
    """Strict: the Team Role picklist holds a default org's values (S2) until an admin adds."""
    fields = {f["name"]: f for f in sf.AccountTeamMember.describe()["fields"]}
    values = {v["value"] for v in fields["TeamMemberRole"]["picklistValues"]}
    assert "Executive Sponsor" in values
    assert CSM not in values
    assert "Strategic Account Executive" not in values


def test_missing_team_role_is_refused_per_record(
    sf_emu: SalesforceEmulator, sf: Salesforce
) -> None:
    """A role the admin removed fails its own record; the others in the call are created."""
    org = seed_small_org(sf_emu, accounts=3)
    sf_emu.remove_picklist_values("AccountTeamMember", "TeamMemberRole", CSM)
    results = collection_create(sf, [atm(org, 0, 0), atm(org, 1, 1, "Executive Sponsor")])
    assert results[0]["success"] is False
    assert results[0]["errors"][0]["statusCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"  # type: ignore[index]
    assert results[1]["success"] is True
    sf_emu.add_picklist_values("AccountTeamMember", "TeamMemberRole", CSM)
    assert collection_create(sf, [atm(org, 0, 0)])[0]["success"] is True


def test_org_wide_defaults_are_queryable_and_enforced(
    sf_emu: SalesforceEmulator, org: SmallOrg, sf: Salesforce
) -> None:
    """Organization carries the defaults (S1); a level below a default is refused, and at
    least one level must be above its default."""
    sf_emu.set_org_defaults(Opportunity="Edit", Case="Read")
    row = sf.query(
        "SELECT DefaultAccountAccess, DefaultOpportunityAccess, DefaultCaseAccess, "
        "DefaultContactAccess, IsSandbox FROM Organization"
    )["records"][0]
    assert (row["DefaultAccountAccess"], row["DefaultOpportunityAccess"]) == ("Read", "Edit")
    assert (row["DefaultCaseAccess"], row["DefaultContactAccess"]) == ("Read", "ControlledByParent")
    assert row["IsSandbox"] is False
    below, raised = collection_create(
        sf, [atm(org, 0, 0), atm(org, 1, 1, OpportunityAccessLevel="Edit")]
    )
    assert below["errors"][0]["statusCode"] == "FIELD_INTEGRITY_EXCEPTION"  # type: ignore[index]
    assert below["errors"][0]["fields"] == ["OpportunityAccessLevel"]  # type: ignore[index]
    assert raised["success"] is True
    sf_emu.set_org_defaults(Account="Edit", Opportunity="Edit", Case="Edit")
    (none_above,) = collection_create(
        sf, [atm(org, 2, 0, AccountAccessLevel="Edit", OpportunityAccessLevel="Edit",
                 CaseAccessLevel="Edit")]
    )  # fmt: skip
    assert "greater than the organization-wide default" in none_above["errors"][0]["message"]  # type: ignore[index]


def test_contact_access_cannot_be_sent_when_controlled_by_parent(
    org: SmallOrg, sf: Salesforce
) -> None:
    """DefaultContactAccess Controlled by Parent: ContactAccessLevel is refused (S1)."""
    (result,) = collection_create(sf, [atm(org, 0, 0, ContactAccessLevel="Read")])
    assert result["success"] is False
    assert result["errors"][0]["fields"] == ["ContactAccessLevel"]  # type: ignore[index]


def test_unreadable_field_is_invisible_and_read_only_field_refuses_writes(
    sf_emu: SalesforceEmulator, org: SmallOrg, sf: Salesforce
) -> None:
    """Field-level security (S3): no read access hides the field from describe and SOQL;
    read-only access shows it with updateable false and refuses writes per record."""
    sf_emu.set_field_access("Account", "Risk_Flags__c", readable=False)
    sf_emu.set_field_access("Account", "Health_Score__c", editable=False)
    fields = {f["name"]: f for f in sf.Account.describe()["fields"]}
    assert "Risk_Flags__c" not in fields
    assert fields["Health_Score__c"]["updateable"] is False
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query("SELECT Id, Risk_Flags__c FROM Account")
    assert info.value.content[0]["errorCode"] == "INVALID_FIELD"
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.Account.update(org.accounts[0], {"Health_Score__c": 40})
    assert refused.value.content[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    assert sf_emu.get("Account", org.accounts[0])["Health_Score__c"] is None  # type: ignore[index]


def test_account_teams_disabled_hides_the_object(
    sf_emu: SalesforceEmulator, org: SmallOrg, sf: Salesforce
) -> None:
    """Without Account Teams AccountTeamMember is not describable nor queryable (S4)."""
    sf_emu.account_teams_enabled = False
    with pytest.raises(SalesforceResourceNotFound):
        sf.AccountTeamMember.describe()
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query("SELECT Id FROM AccountTeamMember")
    assert info.value.content[0]["errorCode"] == "INVALID_TYPE"
    assert "AccountTeamMember" not in {o["name"] for o in sf.describe()["sobjects"]}


def test_client_credentials_refused_on_a_login_host(
    sf_emu: SalesforceEmulator, server: EmulatorServer, http: requests.Session
) -> None:
    """Client credentials only work on the My Domain host (S5)."""
    creds = sf_emu.credentials
    form = {
        "grant_type": "client_credentials",
        "client_id": creds.client_id,
        "client_secret": creds.client_secret,
    }
    url = f"{server.url}/services/oauth2/token"
    refused = http.post(url, data=form, headers={"Host": "login.salesforce.com"}, timeout=10)
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_grant"
    assert http.post(url, data=form, timeout=10).status_code == 200


def test_lenient_accepts_client_credentials_on_a_login_host(
    tls: TlsMaterial, http: requests.Session
) -> None:
    """The lenient profile keeps the old answer (no My Domain rule)."""
    sf_emu = SalesforceEmulator(credentials=shared_credentials(), profile="lenient")
    creds = sf_emu.credentials
    form = {
        "grant_type": "client_credentials",
        "client_id": creds.client_id,
        "client_secret": creds.client_secret,
    }
    with EmulatorServer(sf_emu, ssl_context=tls.server_context) as server:
        answer = http.post(
            f"{server.url}/services/oauth2/token",
            data=form,
            headers={"Host": "login.salesforce.com"},
            timeout=10,
        )
    assert answer.status_code == 200


@pytest.mark.parametrize(("sandbox", "accepted"), [(False, "login"), (True, "test")])
def test_jwt_audience_must_fit_the_org(
    sf_emu: SalesforceEmulator,
    server: EmulatorServer,
    http: requests.Session,
    sandbox: bool,
    accepted: str,
) -> None:
    """A sandbox takes aud https://test.salesforce.com, production https://login... (S5)."""
    sf_emu.is_sandbox = sandbox
    outcomes = {}
    for host in ("login", "test"):
        claims = {
            "iss": sf_emu.credentials.client_id,
            "sub": sf_emu.credentials.username,
            "aud": f"https://{host}.salesforce.com",
            "exp": int(time.time()) + 180,
        }
        assertion = jwt.encode(claims, sf_emu.credentials.private_key_pem, algorithm="RS256")
        answer = http.post(
            f"{server.url}/services/oauth2/token",
            data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                  "assertion": assertion},
            timeout=10,
        )  # fmt: skip
        outcomes[host] = answer.status_code
    assert outcomes == {h: 200 if h == accepted else 400 for h in ("login", "test")}


def test_owner_change_deletes_the_team_unless_kept(
    sf_emu: SalesforceEmulator, org: SmallOrg, sf: Salesforce
) -> None:
    """An API owner change deletes the whole account team (S7); KeepAccountTeam keeps it."""
    team = sf_emu.tables["AccountTeamMember"]
    assert len(team.find("AccountId", org.accounts[0])) == 1
    sf.Account.update(org.accounts[0], {"OwnerId": org.users[2]})
    assert team.find("AccountId", org.accounts[0]) == set()
    assert len(team.find("AccountId", org.accounts[1])) == 1
    sf_emu.update("Account", org.accounts[1], {"OwnerId": org.users[0]}, keep_account_team=True)
    assert len(team.find("AccountId", org.accounts[1])) == 1
    sf.Account.update(org.accounts[1], {"Name": "Renamed"})  # no owner change: team kept
    assert len(team.find("AccountId", org.accounts[1])) == 1


def test_lenient_owner_change_keeps_the_team() -> None:
    """The lenient profile keeps today's behaviour: owner changes leave the team alone."""
    sf_emu = SalesforceEmulator(credentials=shared_credentials(), profile="lenient")
    org = seed_small_org(sf_emu, accounts=1)
    sf_emu.update("Account", org.accounts[0], {"OwnerId": org.users[1]})
    assert len(sf_emu.tables["AccountTeamMember"].find("AccountId", org.accounts[0])) == 1


def bulk_query(http: requests.Session, server: EmulatorServer, token: str, soql: str) -> dict:
    auth = {"Authorization": f"Bearer {token}"}
    created = http.post(
        f"{server.url}{V}/jobs/query",
        json={"operation": "query", "query": soql},
        headers=auth,
        timeout=10,
    ).json()
    return http.get(f"{server.url}{V}/jobs/query/{created['id']}", headers=auth, timeout=10).json()


def test_bulk_query_with_order_by_above_the_size_times_out(
    sf_emu: SalesforceEmulator, server: EmulatorServer, http: requests.Session
) -> None:
    """ORDER BY disables PK chunking: above the profile's size the job fails (S6); the same
    query without ORDER BY completes."""
    seed_small_org(sf_emu, accounts=3)
    sf_emu.load("Account", [{"Name": f"Bulk {i}"} for i in range(2_001)])
    token = sf_emu.issue_token()
    failed = bulk_query(http, server, token, "SELECT Id FROM Account ORDER BY Id")
    assert failed["state"] == "Failed"
    assert "QUERY_TIMEOUT" in failed["errorMessage"]
    done = bulk_query(http, server, token, "SELECT Id FROM Account")
    assert (done["state"], done["numberRecordsProcessed"]) == ("JobComplete", 2_004)
