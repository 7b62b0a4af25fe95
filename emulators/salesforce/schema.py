"""The sObjects the Salesforce emulator serves, with the fields DESIGN.md names.

Field properties follow the Object Reference (reference/salesforce-api.md section 11):
read-only and create-only fields, restricted picklists, references with relationship names.
"""

from __future__ import annotations

from emulators.store import FieldDef as F
from emulators.store import ObjectSchema

# The Team Role values of a new org (Setup > Account Teams > Team Roles): what an admin starts
# from under the strict profile.  OBSERVED (the standard values in Salesforce Help; the exact
# list of a given org depends on its edition and history).
DEFAULT_TEAM_ROLES: tuple[str, ...] = (
    "Account Manager",
    "Channel Manager",
    "Executive Sponsor",
    "Lead Qualifier",
    "Pre-Sales Consultant",
    "Sales Manager",
    "Sales Rep",
    "Technical Sales",
)

# Every value the lenient profile (and a prepared org) offers.
TEAM_ROLES: tuple[str, ...] = (
    "Strategic Account Executive",
    "Account Executive",
    "Solutions Architect",
    "Customer Success Manager",
    "Renewal Manager",
    "Executive Sponsor",
    "Account Manager",
    "Channel Manager",
    "Lead Qualifier",
    "Pre-Sales Consultant",
    "Sales Manager",
    "Sales Rep",
    "Technical Sales",
)

SEGMENTS: tuple[str, ...] = ("Enterprise", "Mid-Market", "SMB")
HEALTH_STATUSES: tuple[str, ...] = ("Green", "Yellow", "Red", "Unknown")
RISK_FLAGS: tuple[str, ...] = (
    "RED_HEALTH",
    "HEALTH_DROP",
    "RENEWAL_AT_RISK",
    "NO_CSM",
    "HANDOFF_DUE",
    "MISSING_SAE",
    "MISSING_AE",
    "MISSING_SA",
    "MISSING_CSM",
    "MISSING_RM",
    "MISSING_EXEC_SPONSOR",
    "INACTIVE_MEMBER",
    "OVERSTAFFED",
    "TEAM_WIPED",
    "YELLOW_HEALTH",
    "OVERDUE_SAE",
    "OVERDUE_AE",
    "OVERDUE_SA",
    "OVERDUE_CSM",
    "OVERDUE_RM",
    "OVERDUE_EXEC_SPONSOR",
)

# Organization-wide defaults (Organization.Default*Access).  VERIFIED: field names and the
# None/Read/Edit values; UNVERIFIED: the API spelling of "Controlled by Parent" and of
# "Public Read/Write/Transfer" (cases), taken as below.
ACCESS_DEFAULT_VALUES: tuple[str, ...] = ("None", "Read", "Edit", "ReadEditTransfer", "All")
CONTACT_ACCESS_DEFAULT_VALUES: tuple[str, ...] = ("None", "Read", "Edit", "ControlledByParent")

# Stage -> (IsClosed, IsWon, Probability, ForecastCategoryName)
OPPORTUNITY_STAGES: dict[str, tuple[bool, bool, int, str]] = {
    "Prospecting": (False, False, 10, "Pipeline"),
    "Qualification": (False, False, 20, "Pipeline"),
    "Needs Analysis": (False, False, 30, "Pipeline"),
    "Value Proposition": (False, False, 40, "Pipeline"),
    "Id. Decision Makers": (False, False, 50, "Pipeline"),
    "Perception Analysis": (False, False, 60, "Pipeline"),
    "Proposal/Price Quote": (False, False, 70, "Pipeline"),
    "Negotiation/Review": (False, False, 80, "Commit"),
    "Closed Won": (True, True, 100, "Closed"),
    "Closed Lost": (True, False, 0, "Omitted"),
}

_AUDIT = [
    F("IsDeleted", "boolean", createable=False, updateable=False, nillable=False, default=False),
    F("CreatedDate", "datetime", createable=False, updateable=False, nillable=False),
    F(
        "CreatedById",
        "reference",
        createable=False,
        updateable=False,
        reference_to="User",
        relationship_name="CreatedBy",
    ),
    F("LastModifiedDate", "datetime", createable=False, updateable=False, nillable=False),
    F(
        "LastModifiedById",
        "reference",
        createable=False,
        updateable=False,
        reference_to="User",
        relationship_name="LastModifiedBy",
    ),
    F("SystemModstamp", "datetime", createable=False, updateable=False, nillable=False),
]


def _id() -> F:
    return F("Id", "id", createable=False, updateable=False, nillable=False)


USER = ObjectSchema(
    "User",
    "005",
    [
        _id(),
        F("Username", "string", required=True, nillable=False, length=80),
        F("Name", "string", createable=False, updateable=False, calculated=True, length=121),
        F("FirstName", "string", length=40),
        F("LastName", "string", required=True, nillable=False, length=80),
        F("Email", "email", required=True, nillable=False, length=128),
        F("IsActive", "boolean", nillable=False, default=True),
        F("Title", "string", length=80),
        F("Department", "string", length=80),
        F(
            "UserType",
            "picklist",
            createable=False,
            updateable=False,
            default="Standard",
            picklist=("Standard",),
        ),
        F("ManagerId", "reference", reference_to="User", relationship_name="Manager"),
        F("TimeZoneSidKey", "picklist", default="America/Los_Angeles"),
        *_AUDIT,
    ],
    soft_delete=False,
    label_plural="Users",
)

ACCOUNT = ObjectSchema(
    "Account",
    "001",
    [
        _id(),
        F("Name", "string", required=True, nillable=False, length=255),
        F("OwnerId", "reference", nillable=False, reference_to="User", relationship_name="Owner"),
        F(
            "Type",
            "picklist",
            picklist=(
                "Prospect",
                "Customer - Direct",
                "Customer - Channel",
                "Channel Partner / Reseller",
                "Installation Partner",
                "Technology Partner",
                "Other",
            ),
        ),
        F("Industry", "picklist"),
        F("NumberOfEmployees", "int"),
        F("AnnualRevenue", "currency"),
        F("ParentId", "reference", reference_to="Account", relationship_name="Parent"),
        F("Sales_Segment__c", "picklist", picklist=SEGMENTS, restricted=True, custom=True),
        F("ARR__c", "currency", custom=True),
        F("Health_Score__c", "double", custom=True),
        F("Health_Status__c", "picklist", picklist=HEALTH_STATUSES, restricted=True, custom=True),
        F(
            "Risk_Flags__c",
            "multipicklist",
            picklist=RISK_FLAGS,
            restricted=True,
            custom=True,
            length=4099,
        ),
        *_AUDIT,
    ],
    label_plural="Accounts",
)

OPPORTUNITY = ObjectSchema(
    "Opportunity",
    "006",
    [
        _id(),
        F("Name", "string", required=True, nillable=False, length=120),
        F("AccountId", "reference", reference_to="Account", relationship_name="Account"),
        F("OwnerId", "reference", nillable=False, reference_to="User", relationship_name="Owner"),
        F(
            "StageName",
            "picklist",
            required=True,
            nillable=False,
            picklist=tuple(OPPORTUNITY_STAGES),
            restricted=True,
        ),
        F("CloseDate", "date", required=True, nillable=False),
        F("Amount", "currency"),
        F("Type", "picklist", picklist=("New Business", "Renewal", "Upsell", "Existing Business")),
        F(
            "IsClosed",
            "boolean",
            createable=False,
            updateable=False,
            calculated=True,
            nillable=False,
            default=False,
        ),
        F(
            "IsWon",
            "boolean",
            createable=False,
            updateable=False,
            calculated=True,
            nillable=False,
            default=False,
        ),
        F("Probability", "percent"),
        F(
            "ForecastCategoryName",
            "picklist",
            picklist=("Pipeline", "Best Case", "Commit", "Omitted", "Closed"),
        ),
        *_AUDIT,
    ],
    indexes=("AccountId",),
    label_plural="Opportunities",
)

ACCOUNT_TEAM_MEMBER = ObjectSchema(
    "AccountTeamMember",
    "01M",
    [
        _id(),
        F(
            "AccountId",
            "reference",
            required=True,
            nillable=False,
            updateable=False,
            reference_to="Account",
            relationship_name="Account",
        ),
        F(
            "UserId",
            "reference",
            required=True,
            nillable=False,
            updateable=False,
            reference_to="User",
            relationship_name="User",
        ),
        F("TeamMemberRole", "picklist", picklist=TEAM_ROLES, restricted=True),
        F(
            "AccountAccessLevel",
            "picklist",
            picklist=("Read", "Edit", "All"),
            restricted=True,
            default="Read",
        ),
        F(
            "OpportunityAccessLevel",
            "picklist",
            picklist=("None", "Read", "Edit"),
            restricted=True,
            default="None",
        ),
        F(
            "CaseAccessLevel",
            "picklist",
            picklist=("None", "Read", "Edit"),
            restricted=True,
            default="None",
        ),
        F(
            "ContactAccessLevel",
            "picklist",
            picklist=("None", "Read", "Edit"),
            restricted=True,
            default="None",
        ),
        F("Title", "string", createable=False, updateable=False, calculated=True),
        F("PhotoUrl", "url", createable=False, updateable=False, calculated=True),
        *_AUDIT,
    ],
    # Direct deletes of team members are hard deletes: not in the Recycle Bin, not in queryAll.
    soft_delete=False,
    indexes=("AccountId",),
    label_plural="Account Team Members",
)


def _org_default(name: str, values: tuple[str, ...]) -> F:
    return F(name, "picklist", createable=False, updateable=False, picklist=values, restricted=True)


# The org itself: one row, read only through the API (admins change it in Setup).
ORGANIZATION = ObjectSchema(
    "Organization",
    "00D",
    [
        _id(),
        F("Name", "string", createable=False, updateable=False, length=80),
        F("OrganizationType", "string", createable=False, updateable=False, length=40),
        F("IsSandbox", "boolean", createable=False, updateable=False, default=False),
        F("InstanceName", "string", createable=False, updateable=False, length=5),
        _org_default("DefaultAccountAccess", ACCESS_DEFAULT_VALUES),
        _org_default("DefaultOpportunityAccess", ACCESS_DEFAULT_VALUES),
        _org_default("DefaultCaseAccess", ACCESS_DEFAULT_VALUES),
        _org_default("DefaultContactAccess", CONTACT_ACCESS_DEFAULT_VALUES),
        *_AUDIT,
    ],
    soft_delete=False,
    label_plural="Organizations",
)

OBJECTS: dict[str, ObjectSchema] = {
    s.name: s for s in (USER, ACCOUNT, OPPORTUNITY, ACCOUNT_TEAM_MEMBER, ORGANIZATION)
}
