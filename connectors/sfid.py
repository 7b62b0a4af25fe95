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
import string
from functools import lru_cache

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_ID15 = re.compile(r"^[a-zA-Z0-9]{15}$")
_ID18 = re.compile(r"^[a-zA-Z0-9]{18}$")
# Upper-case letters -> "1", everything else an Id may hold -> "0" (see _checksum).
_CASE_BITS = str.maketrans(
    dict.fromkeys(string.ascii_uppercase, "1")
    | dict.fromkeys(string.ascii_lowercase + string.digits, "0")
)
# "10100" (character 0 and 2 upper case) -> _ALPHABET[0b00101]
_CHUNK = {
    "".join("1" if n & (1 << pos) else "0" for pos in range(5)): _ALPHABET[n] for n in range(32)
}


class InvalidId(ValueError):
    """The value is not a well-formed Salesforce Id."""


def _checksum(id15: str) -> str:
    """Three characters; each encodes which of five characters are upper case (bit i for
    character i).  ``id15`` holds only Id characters."""
    bits = id15[:15].translate(_CASE_BITS)
    return _CHUNK[bits[0:5]] + _CHUNK[bits[5:10]] + _CHUNK[bits[10:15]]


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
    return _normalize(value)


@lru_cache(maxsize=65_536)
def _normalize(value: str) -> str:
    """:func:`normalize` of a string, remembered: the same Ids (owners, parent accounts, users)
    come back on every page and in every chunk.  A refused value raises and is not cached."""
    if _ID15.match(value):
        return to18(value)
    if _ID18.match(value):
        if _checksum(value[:15]) == value[15:].upper():
            return value[:15] + value[15:].upper()
        restored = _recase(value)
        if restored is not None and _checksum(restored[:15]) == restored[15:]:
            return restored
    raise InvalidId(f"not a valid Salesforce Id: {value[:40]!r}")


def normalize_or_none(value: object) -> str | None:
    """:func:`normalize` for values that may not be Ids at all (a pulled field, an API's
    answer): None instead of an error."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return _normalize(value)
    except InvalidId:
        return None


def key_prefix(value: str) -> str:
    """The object key prefix (first three characters) of an Id."""
    return normalize(value)[:3]
