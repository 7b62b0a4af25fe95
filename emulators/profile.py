"""Emulator profiles: how strict the emulated org and tenant are (``reference/real-tenants.md``).

    SalesforceEmulator(profile=STRICT)      # the default for tests, ``demo`` and ``emulate``
    GainsightEmulator(profile=profile_named("lenient"))

``strict`` models every VERIFIED and OBSERVED fact of ``real-tenants.md`` and the stricter
reading of the UNVERIFIED ones that have no switch of their own.  ``lenient`` is how the
emulators answered before the strict profile existed; a test that needs it says why.

Facts whose reading is unknown either way are *tenant switches*, off in both profiles and set
on a running emulator (``gs.gsid_sortable = False``, ``gs.filter_time_zone = "..."``), so a
client's tests can run both readings.  ``emulators/README.md`` lists every guess with its status.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

ProfileName = Literal["strict", "lenient"]
PROFILE_NAMES: tuple[ProfileName, ...] = ("strict", "lenient")


@dataclass(frozen=True)
class Profile:
    """One reading of the vendors' behaviour; each flag names the fact it models."""

    name: str
    # -- Salesforce -------------------------------------------------------------------------
    # S2: the Team Role picklist holds a default org's values until an admin adds more.
    default_team_roles_only: bool
    # S5: client credentials only on a My Domain host; the JWT audience must fit the org.
    my_domain_rule: bool
    # S7: an owner change made through the API deletes the account team (no KeepAccountTeam).
    owner_change_wipes_team: bool
    # S6: a Bulk 2.0 query with ORDER BY matching more rows than this fails as a timeout.
    bulk_order_by_max_rows: int | None
    # S1: DefaultContactAccess is Controlled by Parent (ContactAccessLevel may not be sent).
    contact_controlled_by_parent: bool
    # -- Gainsight --------------------------------------------------------------------------
    # G1: Company.CurrentScore / PreviousScore are lookups to the scoring scheme definition.
    score_lookup: bool
    # G2: a write in which any record fails validation fails whole, without per-record data.
    whole_batch_rejection: bool
    # G6 (UNVERIFIED, stricter reading): a CTA needs an owner.
    cta_owner_required: bool

    def but(self, **changes: object) -> Profile:
        """A copy with some flags changed (``STRICT.but(score_lookup=False)``)."""
        return replace(self, name=f"{self.name}*", **changes)  # type: ignore[arg-type]


STRICT = Profile(
    name="strict",
    default_team_roles_only=True,
    my_domain_rule=True,
    owner_change_wipes_team=True,
    bulk_order_by_max_rows=2_000,
    contact_controlled_by_parent=True,
    score_lookup=True,
    whole_batch_rejection=True,
    cta_owner_required=True,
)

LENIENT = Profile(
    name="lenient",
    default_team_roles_only=False,
    my_domain_rule=False,
    owner_change_wipes_team=False,
    bulk_order_by_max_rows=None,
    contact_controlled_by_parent=False,
    score_lookup=False,
    whole_batch_rejection=False,
    cta_owner_required=False,
)

# The default profile of every emulator (the runner, ``demo``, ``emulate`` and the tests).
DEFAULT_PROFILE: ProfileName = "strict"


def profile_named(name: str | Profile | None) -> Profile:
    """``strict`` / ``lenient`` (or a Profile, passed through); None is the default."""
    if isinstance(name, Profile):
        return name
    key = (name or DEFAULT_PROFILE).strip().lower()
    if key == "strict":
        return STRICT
    if key == "lenient":
        return LENIENT
    raise ValueError(f"unknown emulator profile {name!r} (known: {', '.join(PROFILE_NAMES)})")


__all__ = ["DEFAULT_PROFILE", "LENIENT", "PROFILE_NAMES", "STRICT", "Profile", "profile_named"]
