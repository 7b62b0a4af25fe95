"""Salesforce Ids: checksums, 15 -> 18 conversion, case restored from the checksum."""

from __future__ import annotations

import pytest

from connectors.sfid import InvalidId, is_valid, key_prefix, normalize, to18


@pytest.mark.parametrize(
    ("id15", "id18"),
    [
        ("001000000000001", "001000000000001AAA"),
        ("001Tm00000AbCdE", "001Tm00000AbCdEIAV"),
        ("005D0000001a2Bc", "005D0000001a2BcIAI"),
    ],
)
def test_checksum_encodes_upper_case_positions(id15: str, id18: str) -> None:
    """The three suffix characters say which of the 15 characters are upper case."""
    assert to18(id15) == id18
    assert normalize(id15) == id18
    assert normalize(id18) == id18


def test_eighteen_character_ids_are_case_insensitive() -> None:
    """An 18-character Id whose case was changed by another system is restored."""
    canonical = to18("001Tm00000AbCdE")
    assert normalize(canonical.lower()) == canonical
    assert normalize(canonical.upper()) == canonical
    assert key_prefix(canonical.lower()) == "001"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "001",
        "001Tm00000AbCdE1",
        "001Tm00000AbCdEIA!",
        "001Tm00000AbCdE' OR '1",
        "0011111111111119ZZ",
        "00111111111111111B",
    ],
)
def test_malformed_ids_are_refused(bad: str) -> None:
    """Wrong lengths, foreign characters and impossible checksums are not Ids."""
    assert not is_valid(bad)
    with pytest.raises(InvalidId):
        normalize(bad)


def test_non_strings_are_refused() -> None:
    """Only strings can be Ids."""
    assert not is_valid(None)
    with pytest.raises(InvalidId):
        normalize(12345)  # type: ignore[arg-type]
