"""Durable state in containers: refuse a store that would vanish with the container.

The image sets ``TEAMSYNC_DATA_DIR=/var/lib/teamsync`` and its default store is the SQLite file
there.  When nobody chose a store (no ``TEAMSYNC_DATABASE_URL`` / ``_FILE`` / settings file
entry) and nothing durable is mounted at the data directory, every run would be a first run on
a fresh store (full pulls; history, quarantine and alert state gone), so runs refuse (exit 2)
and say what to mount or set.

    check_durable_store(settings)      # raises ConfigurationError, or returns

"Mounted" is read from ``/proc/self/mountinfo`` (a bind mount of a directory on the same
device is still a mount there, where ``os.path.ismount`` would miss it).  A mount that dies with
the container does not count: tmpfs, a Kubernetes ``emptyDir``, an anonymous Docker volume
(``docker run`` without ``-v``, which the image's ``VOLUME`` creates: the next ``docker run``
gets a new, empty one).  ``TEAMSYNC_DATA_DIR_DURABLE=true`` overrides the detection (a
directory that is durable by other means), ``false`` always refuses.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from config.errors import ConfigurationError
from config.settings import Settings

MOUNTINFO = Path("/proc/self/mountinfo")
_ANONYMOUS_DOCKER_VOLUME = re.compile(r"/volumes/[0-9a-f]{64}/_data/?$")
_EPHEMERAL_FSTYPES = {"tmpfs", "ramfs", "overlay"}


@dataclass(frozen=True)
class Mount:
    mount_point: str
    root: str
    fstype: str
    source: str


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \040 \011 \012 \134
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def parse_mountinfo(text: str) -> list[Mount]:
    mounts: list[Mount] = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        fields = left.split()
        if not sep or len(fields) < 5:
            continue
        tail = right.split()
        mounts.append(
            Mount(
                mount_point=_unescape(fields[4]),
                root=_unescape(fields[3]),
                fstype=tail[0] if tail else "",
                source=_unescape(tail[1]) if len(tail) > 1 else "",
            )
        )
    return mounts


def mount_at(path: Path, mountinfo: Path = MOUNTINFO) -> Mount | None:
    """The mount whose mount point is exactly ``path`` (the last one: mounts stack), or None.

    Without a readable mountinfo (not Linux) ``os.path.ismount`` answers instead."""
    target = os.path.realpath(path)
    try:
        text = mountinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return Mount(target, "/", "unknown", "unknown") if os.path.ismount(target) else None
    found = None
    for mount in parse_mountinfo(text):
        if mount.mount_point == target:
            found = mount
    return found


def ephemeral_reason(mount: Mount) -> str | None:
    """Why a mount dies with the container, or None when it looks durable."""
    if mount.fstype in _EPHEMERAL_FSTYPES:
        return f"a {mount.fstype} file system (memory or the container's own layer)"
    if "kubernetes.io~empty-dir" in mount.root:
        return "a Kubernetes emptyDir (deleted with the pod)"
    if _ANONYMOUS_DOCKER_VOLUME.search(mount.root):
        return "an anonymous Docker volume (the next `docker run` gets a new, empty one)"
    return None


def check_durable_store(settings: Settings, mountinfo: Path = MOUNTINFO) -> None:
    """Refuse (ConfigurationError, exit 2) a default store in a data directory that would be
    lost; a no-op outside the image (no TEAMSYNC_DATA_DIR) or when a store was chosen."""
    data_dir = settings.data_dir
    if data_dir is None or settings.database_url_chosen():
        return
    if settings.data_dir_durable is True:
        return
    where = f"{data_dir}/teamsync.db"
    fix = (
        f"mount a persistent volume at {data_dir} (docker run -v teamsync-data:{data_dir} ..., "
        "or a PersistentVolumeClaim in Kubernetes), or set TEAMSYNC_DATABASE_URL (or "
        "TEAMSYNC_DATABASE_URL_FILE) to a PostgreSQL store, or set "
        "TEAMSYNC_DATA_DIR_DURABLE=true if that directory is durable by other means"
    )
    lost = (
        "every run would start from an empty store (full pulls; run history, quarantine and "
        "alert state lost, every red account alerted again)"
    )
    if settings.data_dir_durable is False:
        raise ConfigurationError(
            f"refusing to keep the store in {where}: TEAMSYNC_DATA_DIR_DURABLE=false", [fix]
        )
    mount = mount_at(Path(data_dir), mountinfo)
    if mount is None:
        raise ConfigurationError(
            f"refusing to keep the store in {where}: nothing is mounted at {data_dir}, so it "
            f"would be lost with this container and {lost}",
            [fix],
        )
    reason = ephemeral_reason(mount)
    if reason is not None:
        raise ConfigurationError(
            f"refusing to keep the store in {where}: {data_dir} is {reason}, so {lost}",
            [fix],
        )
