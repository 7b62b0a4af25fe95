"""teamsync's version, from the installed package metadata.

from sync.version import VERSION
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def _version() -> str:
    try:
        return version("teamsync")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree, uninstalled
        return "0+unknown"


VERSION = _version()
