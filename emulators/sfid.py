"""The emulators' own Salesforce Ids (15 and 18 characters), written apart from the client's
``connectors.sfid`` on purpose: a bug there must show up as a test failure against the
emulator, not be shared by both sides.

From Salesforce's description of the 18-character Id: split the 15-character Id into three
blocks of five; for each block, add 2**i for every upper-case letter at position i; the
suffix is the three resulting numbers looked up in ``A-Z0-5``.

>>> to18("001000000000001")
'001000000000001AAA'
>>> normalize("001Tm000000abcdIAA".lower()) == normalize("001Tm000000abcdIAA")
True
"""

from __future__ import annotations

_SUFFIX_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


class InvalidId(ValueError):
    """Not a Salesforce Id (the emulators answer MALFORMED_ID or similar)."""


def _is_id_text(value: str, length: int) -> bool:
    return len(value) == length and value.isascii() and value.isalnum()


def _suffix(id15: str) -> str:
    out = []
    for block in range(3):
        number = 0
        for position, char in enumerate(id15[block * 5 : block * 5 + 5]):
            if "A" <= char <= "Z":
                number += 2**position
        out.append(_SUFFIX_CHARS[number])
    return "".join(out)


def to18(id15: str) -> str:
    """The 18-character form of a 15-character Id."""
    if not _is_id_text(id15, 15):
        raise InvalidId(f"not a 15-character Id: {id15[:40]!r}")
    return id15 + _suffix(id15)


def normalize(value: str) -> str:
    """The 18-character Id, with the case of its first fifteen characters as the suffix says
    (18-character Ids are case-insensitive); InvalidId for anything else."""
    if not isinstance(value, str):
        raise InvalidId(f"not an Id: {type(value).__name__}")
    if _is_id_text(value, 15):
        return to18(value)
    if not _is_id_text(value, 18):
        raise InvalidId(f"not an Id: {value[:40]!r}")
    suffix = value[15:].upper()
    if any(c not in _SUFFIX_CHARS for c in suffix):
        raise InvalidId(f"not an Id (bad suffix): {value[:40]!r}")
    chars = []
    for block, code in enumerate(suffix):
        number = _SUFFIX_CHARS.index(code)
        for position in range(5):
            char = value[block * 5 + position]
            upper = number & 2**position
            if upper and not char.isalpha():
                raise InvalidId(f"not an Id (suffix marks a digit upper case): {value[:40]!r}")
            chars.append(char.upper() if upper else char.lower())
    id15 = "".join(chars)
    if _suffix(id15) != suffix:
        raise InvalidId(f"not an Id (checksum): {value[:40]!r}")
    return id15 + suffix


__all__ = ["InvalidId", "normalize", "to18"]
