"""The Gainsight objects the emulator serves (Company, GsUser, CTA), with the default fields of
``shared/gainsight-defaults.md``.  Types use Gainsight's data-type names.

Dates and datetimes are stored as epoch milliseconds and returned that way by the data
APIs; the Cockpit (CTA) APIs return ISO strings.
"""

from __future__ import annotations

from emulators.store import FieldDef as F
from emulators.store import ObjectSchema

_AUDIT = [
    F("CreatedDate", "DATETIME", createable=False, updateable=False),
    F("ModifiedDate", "DATETIME", createable=False, updateable=False),
    F(
        "CreatedBy",
        "LOOKUP",
        createable=False,
        updateable=False,
        reference_to="GsUser",
        relationship_name="CreatedBy__gr",
    ),
    F(
        "ModifiedBy",
        "LOOKUP",
        createable=False,
        updateable=False,
        reference_to="GsUser",
        relationship_name="ModifiedBy__gr",
    ),
]


def _lookup(name: str, target: str = "GsUser", *, custom: bool = False) -> F:
    return F(name, "LOOKUP", reference_to=target, relationship_name=f"{name}__gr", custom=custom)


GSUSER = ObjectSchema(
    "GsUser",
    "1P01",
    [
        F("Gsid", "GSID", createable=False, updateable=False, nillable=False),
        F("Name", "STRING"),
        F("FirstName", "STRING"),
        F("LastName", "STRING"),
        F("Email", "EMAIL"),
        F("IsActiveUser", "BOOLEAN", default=True),
        F("SfdcUserId", "STRING"),
        F("SFDCUserName", "STRING"),
        F("LicenseType", "STRING", default="Full"),
        *_AUDIT,
    ],
    soft_delete=False,
    indexes=("Email",),
)

COMPANY = ObjectSchema(
    "Company",
    "1P02",
    [
        F("Gsid", "GSID", createable=False, updateable=False, nillable=False),
        F("Name", "STRING", required=True),
        F("SfdcAccountId", "STRING"),
        F("Industry", "STRING"),
        F("Arr", "CURRENCY"),
        F("Mrr", "CURRENCY"),
        F("Employees", "NUMBER"),
        F("Stage", "DROPDOWN"),
        F("Status", "DROPDOWN"),
        F("RenewalDate", "DATE"),
        F("OriginalContractDate", "DATE"),
        _lookup("Csm"),
        F("CurrentScore", "NUMBER"),
        F("PreviousScore", "NUMBER"),
        F("Trend", "STRING"),
        F("ScorecardId", "GSID"),
        _lookup("AccountExecutive__gc", custom=True),
        _lookup("SolutionsArchitect__gc", custom=True),
        _lookup("RenewalManager__gc", custom=True),
        _lookup("ExecutiveSponsor__gc", custom=True),
        F("RiskFlags__gc", "STRING", custom=True, length=4000),
        *_AUDIT,
    ],
    soft_delete=False,
    indexes=("SfdcAccountId", "Name"),
)

CTA = ObjectSchema(
    "CallToAction",
    "1S01",
    [
        F("Gsid", "GSID", createable=False, updateable=False, nillable=False),
        F("Name", "STRING", required=True),
        _lookup("CompanyId", "Company"),
        _lookup("OwnerId"),
        F("TypeId", "DROPDOWN", relationship_name="TypeId__gr"),
        F("ReasonId", "DROPDOWN", relationship_name="ReasonId__gr"),
        F("StatusId", "DROPDOWN", relationship_name="StatusId__gr"),
        F("PriorityId", "DROPDOWN", relationship_name="PriorityId__gr"),
        F("DueDate", "DATE"),
        F("IsClosed", "BOOLEAN", createable=False, updateable=False, default=False),
        F("ClosedDate", "DATETIME", createable=False, updateable=False),
        F("IsImportant", "BOOLEAN", default=False),
        F("EntityType", "STRING", default="COMPANY"),
        F("Comments", "RICHTEXTAREA"),  # the Cockpit's comments are rich text
        F("ExternalReferenceId", "STRING"),
        *_AUDIT,
    ],
    soft_delete=False,
    indexes=("CompanyId",),
)

# G1: on Scorecards 2.0 tenants the Company score fields look up the scoring scheme definition
# (one row per possible score: Name, Score, Color).  OBSERVED (Gainsight Community; Scorecard
# Objects glossary).  The object's API name is UNVERIFIED; clients only use the lookup path
# ``CurrentScore__gr.Score`` and the target named by describe.
SCORING_SCHEME = ObjectSchema(
    "ScoringSchemeDefinition",
    "1P0S",
    [
        F("Gsid", "GSID", createable=False, updateable=False, nillable=False),
        F("Name", "STRING"),
        F("Score", "NUMBER"),
        F("Color", "STRING"),
        F("SchemeType", "STRING", default="NUMERIC"),
        *_AUDIT,
    ],
    soft_delete=False,
    indexes=("Score",),
)

# The strict profile's Company: score fields as lookups (G1).
COMPANY_SCORE_LOOKUPS = (
    _lookup("CurrentScore", SCORING_SCHEME.name),
    _lookup("PreviousScore", SCORING_SCHEME.name),
)

OBJECTS: dict[str, ObjectSchema] = {
    s.name.lower(): s for s in (GSUSER, COMPANY, CTA, SCORING_SCHEME)
}

# Cockpit picklists: name -> (GSID, closed?) for statuses; name -> GSID for the others.
CTA_TYPES = ("Risk", "Opportunity", "Lifecycle", "Activity", "Objective")
CTA_REASONS = (
    "Red Health",
    "Renewal at Risk",
    "Support Risk",
    "Low Usage",
    "Other",
    "Sales to CS Handoff",
    "Health Triage",
)
CTA_PRIORITIES = ("High", "Medium", "Low")
CTA_STATUSES: dict[str, bool] = {
    "New": False,
    "Open": False,
    "Work In Progress": False,
    "Closed Success": True,
    "Closed Lost": True,
    "Closed Invalid": True,
}

# Company dropdowns (common defaults per the reference §6; tenant-configurable in reality).
COMPANY_STAGES = ("New Customer", "Kicked Off", "Launched", "Adopting", "Will Churn", "Churn")
COMPANY_STATUSES = ("Active", "Inactive", "Churn")
