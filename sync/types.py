"""The vocabulary of a run, as types: systems, statuses, operation kinds.

Values are ``StrEnum`` members, so they are stored, logged and compared as the plain strings
they always were (``System.SALESFORCE == "salesforce"``).
"""

from __future__ import annotations

from enum import StrEnum


class System(StrEnum):
    SALESFORCE = "salesforce"
    GAINSIGHT = "gainsight"


__all__ = ["System"]
