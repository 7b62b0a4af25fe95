"""deploy/: every manifest parses, and the fields operations rely on are there and agree with
each other and with the image (numeric user, exit codes retried, secrets as files, probes)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "kubernetes"
COMPOSE = DEPLOY / "docker-compose.yml"

RETRIED = (3, 5, 75)  # upstream unavailable, store unavailable, lock held / interrupted
NOT_RETRIED = (1, 2, 4)  # partial (next slot retries), configuration, safeguard refused
SECRET_WORDS = ("SECRET", "TOKEN", "ACCESS_KEY", "DATABASE_URL", "WEBHOOK_URL", "HEARTBEAT_URL")


def _docs(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [d for d in yaml.safe_load_all(fh) if d is not None]


def _k8s() -> dict[str, dict[str, Any]]:
    """Every Kubernetes object in deploy/kubernetes, by ``Kind/name``."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in _docs(path):
            out[f"{doc['kind']}/{doc['metadata']['name']}"] = doc
    return out


def _pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    if obj["kind"] == "CronJob":
        return dict(obj["spec"]["jobTemplate"]["spec"]["template"]["spec"])
    return dict(obj["spec"]["template"]["spec"])


def _workloads() -> list[dict[str, Any]]:
    return [o for o in _k8s().values() if o["kind"] in ("CronJob", "Job", "Deployment")]


def _image_uid() -> int:
    users = re.findall(r"^USER\s+(\S+)", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert len(users) == 1, users
    uid = users[0].split(":")[0]
    assert uid.isdigit(), f"USER must be numeric for runAsNonRoot, not {users[0]!r}"
    return int(uid)


def _policy_action(rules: list[dict[str, Any]], code: int, container: str) -> str:
    """What a Job's podFailurePolicy does with a container exit code (first rule that matches;
    no match: the failure counts toward backoffLimit, i.e. it is retried)."""
    for rule in rules:
        on = rule.get("onExitCodes")
        if not on or on.get("containerName", container) != container:
            continue
        hit = code in on["values"]
        if (on["operator"] == "In" and hit) or (on["operator"] == "NotIn" and not hit):
            return str(rule["action"])
    return "Count"


def test_every_manifest_parses() -> None:
    """Every YAML file under deploy/ is valid YAML; Kubernetes objects name their kind."""
    files = sorted(DEPLOY.rglob("*.yaml")) + sorted(DEPLOY.rglob("*.yml"))
    assert COMPOSE in files
    assert len(files) >= 5
    for path in files:
        docs = _docs(path)
        assert docs, f"{path} is empty"
        if K8S in path.parents:
            for doc in docs:
                assert {"apiVersion", "kind", "metadata"} <= set(doc), path
    kinds = sorted(o["kind"] for o in _k8s().values())
    assert kinds == ["ConfigMap", "CronJob", "Deployment", "Job", "Secret", "Service"]


def test_cronjob_schedule_and_concurrency() -> None:
    """The CronJob never runs two syncs at once and skips a slot it cannot start in time."""
    spec = _k8s()["CronJob/teamsync"]["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    assert isinstance(spec["startingDeadlineSeconds"], int)
    assert 0 < spec["startingDeadlineSeconds"] <= 900
    assert spec["timeZone"] == "Etc/UTC"
    from croniter import croniter

    assert croniter.is_valid(spec["schedule"])
    assert _pod_spec(_k8s()["CronJob/teamsync"])["containers"][0]["args"] == ["run"]


@pytest.mark.parametrize("name", ["CronJob/teamsync", "Job/teamsync-migrate"])
def test_pod_failure_policy_retries_only_what_a_retry_can_fix(name: str) -> None:
    """3, 5 and 75 are retried; 2 and 4 (and 1 for the sync) fail the Job at once."""
    obj = _k8s()[name]
    job = obj["spec"]["jobTemplate"]["spec"] if obj["kind"] == "CronJob" else obj["spec"]
    pod = _pod_spec(obj)
    assert pod["restartPolicy"] == "Never"  # podFailurePolicy requires it
    container = pod["containers"][0]["name"]
    rules = job["podFailurePolicy"]["rules"]
    assert job["backoffLimit"] >= 1
    for code in RETRIED:
        assert _policy_action(rules, code, container) == "Count", code
    fail_at_once = NOT_RETRIED if obj["kind"] == "CronJob" else (2,)
    for code in fail_at_once:
        assert _policy_action(rules, code, container) == "FailJob", code
    disruption = [r for r in rules if r.get("onPodConditions")]
    assert disruption
    assert disruption[0]["action"] == "Ignore"
    # Kubernetes refuses 0 in an In list and any rule naming an unknown container.
    for rule in rules:
        if "onExitCodes" in rule:
            assert 0 not in rule["onExitCodes"]["values"]
            assert rule["onExitCodes"]["containerName"] == container


def test_the_image_user_runs_everywhere_non_root_and_read_only() -> None:
    """Pods run as the image's numeric user, non-root, read-only root, no privilege gain."""
    uid = _image_uid()
    for obj in _workloads():
        pod = _pod_spec(obj)
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == uid
        assert pod["automountServiceAccountToken"] is False
        for c in pod["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, obj["metadata"]["name"]
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"]["drop"] == ["ALL"]
            assert sc.get("runAsUser", uid) == uid
            # a writable /tmp on a read-only root
            mounts = {m["mountPath"] for m in c["volumeMounts"]}
            assert "/tmp" in mounts


def test_secrets_are_files_named_by_FILE_variables() -> None:
    """No secret is a literal env value; each *_FILE points into a mounted Secret volume whose
    Secret has that key; the store is PostgreSQL."""
    objects = _k8s()
    secret = objects["Secret/teamsync-secrets"]
    keys = set(secret["stringData"])
    assert secret["stringData"]["database-url"].startswith("postgresql://")
    config = objects["ConfigMap/teamsync-config"]["data"]
    for name in config:
        assert not any(w in name for w in SECRET_WORDS), f"{name} is a secret: not in a ConfigMap"
    for obj in _workloads():
        pod = _pod_spec(obj)
        volumes = {v["name"]: v for v in pod["volumes"]}
        for c in pod["containers"]:
            env = {e["name"]: e for e in c.get("env", [])}
            assert "TEAMSYNC_DATABASE_URL_FILE" in env, obj["metadata"]["name"]
            assert "TEAMSYNC_DATABASE_URL" not in env
            mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
            for name, e in env.items():
                if any(w in name for w in SECRET_WORDS) and not name.endswith("_FILE"):
                    pytest.fail(f"{name} given as a literal value; use {name}_FILE")
                if not name.endswith("_FILE"):
                    continue
                path = Path(e["value"])
                mount = mounts.get(str(path.parent))
                assert mount is not None, (name, path)
                assert mount["readOnly"] is True, (name, path)
                volume = volumes[mount["name"]]
                assert volume["secret"]["secretName"] == "teamsync-secrets"
                items = volume["secret"].get("items")
                available = {i["path"]: i["key"] for i in items} if items else {k: k for k in keys}
                assert path.name in available, (name, path)
                assert available[path.name] in keys, (name, path)


def test_manifests_name_only_settings_teamsync_knows() -> None:
    """Every TEAMSYNC_* variable in the manifests, the compose file and the Dockerfile is a
    setting teamsync reads (Kubernetes would silently pass a typo along)."""
    from config.settings import known_env_names

    files = [*K8S.glob("*.yaml"), COMPOSE, ROOT / "Dockerfile"]
    used = set(re.findall(r"\bTEAMSYNC_[A-Z0-9_]+", "\n".join(p.read_text() for p in files)))
    assert "TEAMSYNC_DATABASE_URL_FILE" in used
    assert sorted(used - known_env_names()) == []


def test_one_image_reference_pinned_to_a_version() -> None:
    """All workloads use the same image, with a version tag (never :latest)."""
    images = {c["image"] for o in _workloads() for c in _pod_spec(o)["containers"]}
    assert len(images) == 1
    (image,) = images
    assert re.search(r":\d+\.\d+\.\d+$", image), image


def test_daemon_probes_are_wired_to_the_metrics_port() -> None:
    """The Deployment's liveness probe is /healthz and readiness /readyz on the metrics port,
    the port the daemon is told to serve, and the Service reaches it even when not ready."""
    objects = _k8s()
    pod = _pod_spec(objects["Deployment/teamsync-daemon"])
    (c,) = pod["containers"]
    assert c["args"] == ["daemon"]
    env = {e["name"]: e.get("value") for e in c["env"]}
    port = int(env["TEAMSYNC_METRICS_PORT"])
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports["metrics"] == port
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for probe in ("livenessProbe", "readinessProbe"):
        assert c[probe]["httpGet"]["port"] in ("metrics", port)
    assert pod["terminationGracePeriodSeconds"] >= 60  # a batch finishes on SIGTERM
    service = objects["Service/teamsync-daemon"]["spec"]
    assert service["publishNotReadyAddresses"] is True
    assert service["ports"][0]["targetPort"] in ("metrics", port)
    selector = service["selector"]
    labels = objects["Deployment/teamsync-daemon"]["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= labels.items()


def test_migration_job_runs_db_upgrade() -> None:
    """The migration Job runs `teamsync db upgrade` against the same store as the runs."""
    pod = _pod_spec(_k8s()["Job/teamsync-migrate"])
    assert pod["containers"][0]["args"] == ["db", "upgrade"]
    config = _k8s()["ConfigMap/teamsync-config"]["data"]
    assert config["TEAMSYNC_AUTO_MIGRATE"] in ("true", "false")


def test_compose_trial_wires_postgres_daemon_and_emulators() -> None:
    """docker-compose.yml: PostgreSQL, a migration, the daemon and the emulators; secrets are
    files whose throw-away values match the emulators' own and the database's password."""
    (compose,) = _docs(COMPOSE)
    services = compose["services"]
    assert {"postgres", "emulators", "migrate", "teamsync"} <= set(services)
    daemon = services["teamsync"]
    assert daemon["command"] == ["daemon"]
    assert daemon["read_only"] is True
    assert daemon["user"].split(":")[0] == str(_image_uid())
    assert daemon["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert daemon["depends_on"]["emulators"]["condition"] == "service_healthy"
    assert services["migrate"]["command"] == ["db", "upgrade"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "healthcheck" in services["postgres"]
    env = daemon["environment"]
    assert env["TEAMSYNC_DATABASE_URL_FILE"] == "/run/secrets/database-url"
    assert "9810:9810" in services["emulators"]["ports"][0]
    assert env["TEAMSYNC_METRICS_PORT"] == "9810"
    for svc in services.values():
        build = svc.get("build")
        if build:
            assert (DEPLOY / build["context"] / build["dockerfile"]).is_file()
    secrets = {
        name: (DEPLOY / spec["file"]).read_text().strip()
        for name, spec in compose["secrets"].items()
    }
    for name, value in env.items():
        if name.endswith("_FILE") and value.startswith("/run/secrets/"):
            assert Path(value).name in daemon["secrets"]
    url = secrets["database-url"]
    assert url.startswith("postgresql://")
    assert "@postgres:5432/" in url
    assert f":{secrets['postgres-password']}@" in url
    from emulators.gainsight.app import GainsightEmulator
    from emulators.salesforce.auth import SalesforceCredentials

    sf_default = SalesforceCredentials.__dataclass_fields__["static_token"].default
    assert secrets["salesforce-access-token"] == sf_default
    gs_default = GainsightEmulator.__init__.__kwdefaults__ or {}
    assert secrets["gainsight-access-key"] == gs_default.get("access_key")
