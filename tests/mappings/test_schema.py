"""Validation of the mapping file: every problem listed, a clear error, nothing half-loaded."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.errors import ConfigurationError
from mappings.schema import load_mapping

DEFAULT = Path(__file__).resolve().parents[2] / "mappings" / "default.toml"


def test_default_mapping_is_valid() -> None:
    """The shipped mapping loads and declares the handbook's roles and required roles."""
    m = load_mapping(DEFAULT)
    assert set(m.roles) == {"SAE", "AE", "SA", "CSM", "RM", "EXEC_SPONSOR"}
    assert m.required_for("Enterprise") == ["SAE", "SA", "CSM"]
    assert m.required_for("Mid-Market") == ["AE", "CSM"]
    assert m.required_for("SMB") == ["AE"]
    assert m.conditions == {"CSM": "qualifying_customer"}
    assert m.managed_team_roles() == {
        "Strategic Account Executive": "SAE",
        "Account Executive": "AE",
        "Customer Success Manager": "CSM",
        "Renewal Manager": "RM",
    }
    assert m.dci[m.alerts.routing_activity]["CSM"] == "D"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mapping.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_cross_reference_errors_are_all_listed(tmp_path: Path) -> None:
    """Unknown segments and roles anywhere in the file are reported together."""
    text = DEFAULT.read_text(encoding="utf-8")
    text = text.replace('Mid-Market = ["AE", "CSM"]', 'Mid-Market = ["AE", "CSM", "WIZARD"]')
    text = text.replace('default = "SMB"', 'default = "Startup"')
    text = text.replace(
        'role_precedence = ["SAE", "AE", "CSM", "RM"]', 'role_precedence = ["SAE", "AE", "CSM"]'
    )
    with pytest.raises(ConfigurationError) as info:
        load_mapping(_write(tmp_path, text))
    problems = "\n".join(info.value.problems)
    assert "unknown role 'WIZARD'" in problems
    assert "'Startup' is not a segment" in problems
    assert "must list managed role 'RM'" in problems


def test_type_errors_name_their_location(tmp_path: Path) -> None:
    """A wrong type or a bad field name says where it is."""
    text = DEFAULT.read_text(encoding="utf-8")
    text = text.replace("window_days = 120", 'window_days = "soon"')
    text = text.replace('arr_field = "ARR__c"', "arr_field = \"ARR__c' OR Name != '\"")
    with pytest.raises(ConfigurationError) as info:
        load_mapping(_write(tmp_path, text))
    problems = "\n".join(info.value.problems)
    assert "renewal.window_days" in problems
    assert "salesforce.arr_field" in problems


def test_bands_must_increase(tmp_path: Path) -> None:
    """Health bands out of order are refused."""
    text = DEFAULT.read_text(encoding="utf-8").replace(
        '{ band = "Yellow", upto = 75 }', '{ band = "Yellow", upto = 40 }'
    )
    with pytest.raises(ConfigurationError, match="strictly increase"):
        load_mapping(_write(tmp_path, text))


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    """A missing file and broken TOML give clear configuration errors."""
    with pytest.raises(ConfigurationError, match="not found"):
        load_mapping(tmp_path / "nope.toml")
    with pytest.raises(ConfigurationError, match="not valid TOML"):
        load_mapping(_write(tmp_path, "version = [1"))
