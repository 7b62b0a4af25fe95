"""Salesforce record Ids: validation, 15 -> 18 character conversion.

>>> to18("001000000000001")
'001000000000001AAA'
>>> normalize("001000000000001aaa")
'001000000000001AAA'

An 18-character Id is the 15-character case-sensitive Id plus a three-character checksum
that encodes which of the first fifteen characters are upper case, so the long form is
safe to compare case-insensitively.  Everything that reaches SOQL goes through
:func:`normalize` first, which also proves the value contains nothing but Id characters.
"""

from __future__ import annotations

import re

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_ID15 = re.compile(r"^[a-zA-Z0-9]{15}$")
_ID18 = re.compile(r"^[a-zA-Z0-9]{18}$")


class InvalidId(ValueError):
    """The value is not a well-formed Salesforce Id."""


def _checksum(id15: str) -> str:
    out = []
    for chunk in range(3):
        bits = 0
        for pos in range(5):
            char = id15[chunk * 5 + pos]
            if "A" <= char <= "Z":
                bits |= 1 << pos
        out.append(_ALPHABET[bits])
    return "".join(out)


def to18(id15: str) -> str:
    """Return the 18-character form of a 15-character Id."""
    if not _ID15.match(id15):
        raise InvalidId(f"not a 15-character Salesforce Id: {id15[:40]!r}")
    return id15 + _checksum(id15)


def is_valid(value: object) -> bool:
    """True for a 15-character Id or an 18-character Id (in any case) with a valid checksum."""
    if not isinstance(value, str):
        return False
    try:
        normalize(value)
    except InvalidId:
        return False
    return True


def _recase(id18: str) -> str | None:
    """Rebuild the case of the first 15 characters from the checksum (None if impossible)."""
    suffix = id18[15:].upper()
    if any(c not in _ALPHABET for c in suffix):
        return None
    chars = []
    for chunk in range(3):
        bits = _ALPHABET.index(suffix[chunk])
        for pos in range(5):
            char = id18[chunk * 5 + pos]
            upper = bool(bits & (1 << pos))
            if upper and not char.isalpha():
                return None  # the checksum marks a digit as upper case: not an Id
            chars.append(char.upper() if upper else char.lower())
    return "".join(chars) + suffix


def normalize(value: str) -> str:
    """Return the canonical 18-character Id for a 15- or 18-character Id.

    An 18-character Id is case-insensitive (that is what its checksum is for): one that went
    through a system that changed its case is restored from the checksum.  A value that
    cannot be an Id is refused rather than silently matching nothing.
    """
    if not isinstance(value, str):
        raise InvalidId(f"not a Salesforce Id: {type(value).__name__}")
    if _ID15.match(value):
        return to18(value)
    if _ID18.match(value):
        if _checksum(value[:15]) == value[15:].upper():
            return value[:15] + value[15:].upper()
        restored = _recase(value)
        if restored is not None and _checksum(restored[:15]) == restored[15:]:
            return restored
    raise InvalidId(f"not a valid Salesforce Id: {value[:40]!r}")


def key_prefix(value: str) -> str:
    """The object key prefix (first three characters) of an Id."""
    return normalize(value)[:3]
