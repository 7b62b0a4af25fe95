"""Durable state in containers: a default store in a data directory that would vanish with the
container is refused (exit 2) with what to mount or set; a durable one, or a chosen store,
passes."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.errors import ConfigurationError
from config.settings import load_settings
from sync.store.durable import check_durable_store, ephemeral_reason, mount_at, parse_mountinfo

ROOT_LINE = "1 0 0:30 / / rw,relatime - overlay overlay rw,lowerdir=/l,upperdir=/u\n"


def mountinfo(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "mountinfo"
    path.write_text(ROOT_LINE + "".join(lines), encoding="utf-8")
    return path


def line(mount_point: Path | str, root: str, fstype: str = "ext4") -> str:
    return f"2 1 8:1 {root} {mount_point} rw,relatime - {fstype} /dev/sda1 rw\n"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("TEAMSYNC_"):
            monkeypatch.delenv(key)


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "var-lib-teamsync"
    d.mkdir()
    monkeypatch.setenv("TEAMSYNC_DATA_DIR", str(d))
    return d


def test_parse_mountinfo_unescapes_paths() -> None:
    """Mount points with spaces come back as written; fields after ' - ' are type and source."""
    (m,) = parse_mountinfo(r"36 35 98:0 /mnt1 /data\040dir rw,noatime - ext3 /dev/root rw" + "\n")
    assert m.mount_point == "/data dir"
    assert m.root == "/mnt1"
    assert m.fstype == "ext3"
    assert m.source == "/dev/root"


def test_nothing_mounted_is_refused(tmp_path: Path, data_dir: Path) -> None:
    """No mount at the data directory and no store chosen: exit 2, saying what to do."""
    with pytest.raises(ConfigurationError) as info:
        check_durable_store(load_settings(), mountinfo(tmp_path))
    message = str(info.value)
    assert info.value.exit_code == 2
    assert f"nothing is mounted at {data_dir}" in message
    assert f"-v teamsync-data:{data_dir}" in message
    assert "TEAMSYNC_DATABASE_URL" in message
    assert "PersistentVolumeClaim" in message


@pytest.mark.parametrize(
    ("root", "fstype", "why"),
    [
        ("/", "tmpfs", "tmpfs"),
        ("/var/lib/kubelet/pods/a1/volumes/kubernetes.io~empty-dir/data", "ext4", "emptyDir"),
        ("/var/lib/docker/volumes/" + "ab12" * 16 + "/_data", "ext4", "anonymous Docker volume"),
    ],
    ids=["tmpfs", "emptydir", "anonymous-volume"],
)
def test_mounts_that_die_with_the_container_are_refused(
    tmp_path: Path, data_dir: Path, root: str, fstype: str, why: str
) -> None:
    """A tmpfs, an emptyDir, or the anonymous volume `VOLUME` gives a bare `docker run`."""
    info_file = mountinfo(tmp_path, line(data_dir, root, fstype))
    with pytest.raises(ConfigurationError, match=why):
        check_durable_store(load_settings(), info_file)


@pytest.mark.parametrize(
    "root",
    [
        "/var/lib/docker/volumes/teamsync-data/_data",  # a named Docker volume
        "/var/lib/kubelet/pods/a1/volumes/kubernetes.io~csi/pvc-1/mount",  # a PVC
        "/srv/teamsync",  # a bind mount of a host directory on the same device
    ],
)
def test_durable_mounts_pass(tmp_path: Path, data_dir: Path, root: str) -> None:
    """A named volume, a PersistentVolumeClaim or a host directory is durable."""
    check_durable_store(load_settings(), mountinfo(tmp_path, line(data_dir, root)))


def test_the_last_mount_on_a_path_counts(tmp_path: Path, data_dir: Path) -> None:
    """Mounts stack: a tmpfs over a durable mount hides it."""
    info_file = mountinfo(tmp_path, line(data_dir, "/srv/x"), line(data_dir, "/", "tmpfs"))
    assert mount_at(data_dir, info_file) is not None
    with pytest.raises(ConfigurationError, match="tmpfs"):
        check_durable_store(load_settings(), info_file)


def test_a_chosen_store_needs_no_mount(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TEAMSYNC_DATABASE_URL or TEAMSYNC_DATABASE_URL_FILE: the operator chose the store."""
    empty = mountinfo(tmp_path)
    monkeypatch.setenv("TEAMSYNC_DATABASE_URL", "postgresql://ts@db/ts")
    check_durable_store(load_settings(), empty)
    monkeypatch.delenv("TEAMSYNC_DATABASE_URL")
    url_file = tmp_path / "db-url"
    url_file.write_text("postgresql://ts@db/ts", encoding="utf-8")
    monkeypatch.setenv("TEAMSYNC_DATABASE_URL_FILE", str(url_file))
    check_durable_store(load_settings(), empty)


def test_override_trusts_or_always_refuses(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TEAMSYNC_DATA_DIR_DURABLE=true trusts the directory; false refuses even a real mount."""
    monkeypatch.setenv("TEAMSYNC_DATA_DIR_DURABLE", "true")
    check_durable_store(load_settings(), mountinfo(tmp_path))
    monkeypatch.setenv("TEAMSYNC_DATA_DIR_DURABLE", "false")
    with pytest.raises(ConfigurationError, match="TEAMSYNC_DATA_DIR_DURABLE=false"):
        check_durable_store(load_settings(), mountinfo(tmp_path, line(data_dir, "/srv/x")))


def test_outside_the_image_nothing_is_checked(tmp_path: Path) -> None:
    """Without TEAMSYNC_DATA_DIR (a developer's machine) the default store is not judged."""
    check_durable_store(load_settings(), mountinfo(tmp_path))


def test_ephemeral_reason_names_the_kind() -> None:
    """The refusal says what kind of mount it is."""
    from sync.store.durable import Mount

    assert ephemeral_reason(Mount("/d", "/", "ramfs", "none")) is not None
    assert ephemeral_reason(Mount("/d", "/data", "nfs4", "srv:/export")) is None


def test_real_mountinfo_of_this_machine_is_read() -> None:
    """On Linux the root file system is found as a mount (the parser reads the real file)."""
    if not Path("/proc/self/mountinfo").exists():
        pytest.skip("no /proc/self/mountinfo (not Linux)")
    assert mount_at(Path("/")) is not None
