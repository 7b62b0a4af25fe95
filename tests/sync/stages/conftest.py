"""Stage unit tests: the default mapping."""

from __future__ import annotations

import pytest

from mappings.schema import MappingFile, load_mapping
from tests.mappings.test_rules import DEFAULT


@pytest.fixture(scope="module")
def mapping() -> MappingFile:
    return load_mapping(DEFAULT)
