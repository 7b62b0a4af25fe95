"""The emulators' own Salesforce Ids: hand-worked examples, and agreement with the client's
independent implementation (a bug on either side fails here)."""

from __future__ import annotations

import random
import string

import pytest

from connectors import sfid as client_sfid
from emulators.sfid import InvalidId, normalize, to18


@pytest.mark.parametrize(
    ("id15", "id18"),
    [
        ("001000000000001", "001000000000001AAA"),  # no upper-case letter: A A A
        ("ABCDE00000abcde", "ABCDE00000abcde5AA"),  # block 1 all upper: 31 -> "5"
        ("aBcDe00000abcde", "aBcDe00000abcdeKAA"),  # positions 1 and 3: 2 + 8 = 10 -> "K"
        ("00000A000000000", "00000A000000000ABA"),  # block 2, position 0: 1 -> "B"
    ],
)
def test_suffix_by_hand(id15: str, id18: str) -> None:
    """The suffix encodes, block by block, which characters are upper case."""
    assert to18(id15) == id18
    assert normalize(id15) == id18
    assert normalize(id18.lower()) == id18  # 18-character Ids are case-insensitive


@pytest.mark.parametrize(
    "bad", ["", "001", "001000000000001AA", "00100000000000!", "001000000000001AA9", "ä" * 15]
)
def test_not_ids_are_refused(bad: str) -> None:
    """Wrong length, non-Id characters and impossible suffixes raise InvalidId."""
    with pytest.raises(InvalidId):
        normalize(bad)


def test_agrees_with_the_client() -> None:
    """On random Ids, in every case, the emulator and the client say the same."""
    rng = random.Random(7)
    alphabet = string.ascii_letters + string.digits
    for _ in range(2000):
        id15 = "".join(rng.choice(alphabet) for _ in range(15))
        assert to18(id15) == client_sfid.to18(id15)
        for value in (id15, to18(id15).lower(), to18(id15).upper()):
            assert normalize(value) == client_sfid.normalize(value)
