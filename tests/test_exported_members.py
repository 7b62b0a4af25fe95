"""Public surfaces are pinned (in the spirit of httpx's tests/test_exported_members.py):
every name a module with ``__all__`` defines publicly is exported, every exported name
exists, and the exception tree's two modules export exactly these names."""

from __future__ import annotations

import importlib
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _modules_with_all() -> list[str]:
    names = []
    for package in ("config", "connectors", "mappings", "sync"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if "\n__all__" in path.read_text(encoding="utf-8"):
                parts = path.relative_to(ROOT).with_suffix("").parts
                names.append(".".join(p for p in parts if p != "__init__"))
    return names


MODULES = _modules_with_all()


def test_the_surfaces_are_found() -> None:
    """The scan sees the public surfaces this layout defines."""
    assert {
        "config.errors",
        "connectors.errors",
        "connectors.batching",
        "connectors.dates",
        "connectors.paginators",
        "sync.alerts",
        "sync.store",
        "sync.streams",
        "sync.types",
    } <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_exports_match_definitions(name: str) -> None:
    """``__all__`` lists what exists, and every public class or function defined in the
    module is in it (a new public name is a decision, not an accident)."""
    module = importlib.import_module(name)
    exported = set(module.__all__)
    public = {
        n
        for n, v in vars(module).items()
        if not n.startswith("_") and not isinstance(v, types.ModuleType)
    }
    defined = {n for n in public if getattr(vars(module)[n], "__module__", None) == name}
    assert exported <= public, f"{name}: exported but missing: {sorted(exported - public)}"
    assert defined <= exported, f"{name}: public but not exported: {sorted(defined - exported)}"


def test_exception_tree_root() -> None:
    """config.errors: the root and the cross-cutting errors, nothing else."""
    import config.errors

    assert set(config.errors.__all__) == {
        "STORE_PROBLEMS",
        "ConfigurationError",
        "Interrupted",
        "InvalidRecord",
        "LockHeld",
        "SafeguardRefused",
        "StoreUnavailable",
        "TeamsyncError",
    }


def test_api_faults() -> None:
    """connectors.errors: the API faults only, all under the one root."""
    import connectors.errors
    from config.errors import TeamsyncError

    assert set(connectors.errors.__all__) == {
        "AuthenticationError",
        "ContractViolation",
        "FatalError",
        "QuotaExceeded",
        "RedirectRefused",
        "RequestRejected",
        "RetryableError",
        "UpstreamUnavailable",
    }
    for name in connectors.errors.__all__:
        assert issubclass(getattr(connectors.errors, name), TeamsyncError), name


def test_config_and_mappings_sit_below_the_adapters() -> None:
    """config/ and mappings/ import nothing from connectors/, sync/ or emulators/; product
    packages import emulators only inside the functions that serve the demo."""
    below = ("from connectors", "import connectors", "from sync", "import sync")
    for package in ("config", "mappings"):
        for path in (ROOT / package).rglob("*.py"):
            for line in path.read_text(encoding="utf-8").splitlines():
                code = line.strip()
                assert not code.startswith(below), f"{path}: {code}"
                assert not code.startswith(("from emulators", "import emulators")), path
    for package in ("connectors", "sync"):
        for path in (ROOT / package).rglob("*.py"):
            for line in path.read_text(encoding="utf-8").splitlines():
                # Module level (no indentation): imported with the module.
                assert not line.startswith(("from emulators", "import emulators")), path
