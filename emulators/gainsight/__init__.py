"""Gainsight CS (NXT) REST API emulator: ``GainsightEmulator`` (see :mod:`.app`)."""

from emulators.gainsight.app import GainsightEmulator, RateLimiter
from emulators.gainsight.picklists import Picklists

__all__ = ["GainsightEmulator", "Picklists", "RateLimiter"]
