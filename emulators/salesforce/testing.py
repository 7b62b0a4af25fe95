"""Helpers for tests that talk to the Salesforce emulator through real clients.

emu = SalesforceEmulator(credentials=shared_credentials())
org = seed_small_org(emu)
with serve(emu, tls) as server:
    sf = simple_salesforce_client(server, tls, emu.issue_token())
    sf.query("SELECT Id FROM Account")
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import requests
from simple_salesforce.api import Salesforce

from emulators.http import EmulatorServer
from emulators.salesforce.app import SalesforceEmulator
from emulators.salesforce.auth import SalesforceCredentials
from emulators.tls import TlsMaterial, requests_session

API_VERSION = "62.0"


@functools.cache
def shared_credentials() -> SalesforceCredentials:
    """One credentials object (RSA key included) reused across tests: key generation is slow."""
    return SalesforceCredentials()


@contextmanager
def serve(emu: SalesforceEmulator, tls: TlsMaterial) -> Iterator[EmulatorServer]:
    """Run the emulator over HTTPS for the duration of the block."""
    with EmulatorServer(emu, ssl_context=tls.server_context) as server:
        yield server


def http_session(tls: TlsMaterial) -> requests.Session:
    """A requests session trusting the emulator CA (whatever REQUESTS_CA_BUNDLE says)."""
    return requests_session(tls.ca_path)


def simple_salesforce_client(
    server: EmulatorServer, tls: TlsMaterial, token: str, version: str = API_VERSION
) -> Salesforce:
    """The real simple-salesforce client, pointed at the emulator with a session id."""
    return Salesforce(
        instance_url=server.url, session_id=token, session=http_session(tls), version=version
    )


@dataclass
class SmallOrg:
    """Ids of a small deterministic org (see :func:`seed_small_org`)."""

    users: list[str]
    inactive_user: str
    accounts: list[str]
    opportunities: list[str] = field(default_factory=list)
    members: list[str] = field(default_factory=list)


def seed_small_org(emu: SalesforceEmulator, *, accounts: int = 5) -> SmallOrg:
    """Three active users and one inactive, ``accounts`` accounts each with one opportunity
    per stage family (open / won) and one team member.  The org is prepared the way the admin
    checklist asks (teamsync's Team Role values added)."""
    emu.prepare_for_teamsync()
    users = [emu.tables["User"].new_id() for _ in range(4)]
    emu.load(
        "User",
        [
            {
                "Id": uid,
                "Username": f"user{i}@teamsync.example",
                "FirstName": f"First{i}",
                "LastName": f"Last{i}",
                "Email": f"user{i}@teamsync.example",
                "Title": f"Title {i}",
                "IsActive": i < 3,
            }
            for i, uid in enumerate(users)
        ],
    )
    account_ids = [emu.tables["Account"].new_id() for _ in range(accounts)]
    emu.load(
        "Account",
        [
            {
                "Id": aid,
                "Name": f"Account {i:03d}",
                "OwnerId": users[i % 3],
                "Sales_Segment__c": ("Enterprise", "Mid-Market", "SMB")[i % 3],
                "NumberOfEmployees": 50 * (i + 1),
            }
            for i, aid in enumerate(account_ids)
        ],
    )
    opp_rows: list[dict[str, Any]] = []
    for i, aid in enumerate(account_ids):
        opp_rows.append(
            {"Name": f"Renewal {i:03d}", "AccountId": aid, "OwnerId": users[(i + 1) % 3],
             "StageName": "Prospecting", "CloseDate": "2024-09-30", "Amount": 1000.0 * (i + 1)}
        )  # fmt: skip
        opp_rows.append(
            {"Name": f"New {i:03d}", "AccountId": aid, "OwnerId": users[i % 3],
             "StageName": "Closed Won", "CloseDate": "2024-01-15", "Amount": 500.0}
        )  # fmt: skip
    opp_ids = [emu.tables["Opportunity"].new_id() for _ in opp_rows]
    emu.load(
        "Opportunity", [{"Id": oid, **row} for oid, row in zip(opp_ids, opp_rows, strict=True)]
    )
    member_ids = [emu.tables["AccountTeamMember"].new_id() for _ in account_ids]
    emu.load(
        "AccountTeamMember",
        [
            {
                "Id": mid,
                "AccountId": aid,
                "UserId": users[(i + 2) % 3],
                "TeamMemberRole": "Solutions Architect",
                "AccountAccessLevel": "Edit",
                "OpportunityAccessLevel": "Read",
                "CaseAccessLevel": "Read",
                "ContactAccessLevel": "None",
            }
            for i, (mid, aid) in enumerate(zip(member_ids, account_ids, strict=True))
        ],
    )
    return SmallOrg(users[:3], users[3], account_ids, opp_ids, member_ids)
