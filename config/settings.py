"""teamsync settings: environment variables (``TEAMSYNC_*``) over an optional TOML file.

    settings = load_settings()                 # env + $TEAMSYNC_CONFIG
    settings = load_settings(config_file=path) # env + path (the environment still wins)
    settings.require("salesforce", "gainsight")  # every missing value listed at once

Secrets (tokens, client secret, access key, webhook secret and Slack URL) are only taken from
the environment, or from a file the environment names (``TEAMSYNC_<NAME>_FILE``); a secret in
the TOML file is refused.  Secrets are ``SecretStr``: masked in reprs, logs and errors.

The TOML file may use sections: ``[salesforce] instance_url = ...`` is the same as
``salesforce_instance_url = ...``.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import ssl
import tomllib
import zoneinfo
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from config.errors import ConfigurationError

ENV_PREFIX = "TEAMSYNC_"
SECRET_FIELDS = (
    "salesforce_access_token",
    "salesforce_client_secret",
    "gainsight_access_key",
    "alert_webhook_secret",
    "alert_slack_webhook_url",
    "heartbeat_url",
)
# Settings that may also be read from a file the environment names (``TEAMSYNC_<NAME>_FILE``):
# every secret, and the database URL (it carries the password).
FILE_FIELDS = (*SECRET_FIELDS, "database_url")
# TEAMSYNC_* variables that are not settings but are read all the same.
OTHER_ENV = ("TEAMSYNC_CONFIG", "TEAMSYNC_TEST_DATABASE_URL", "TEAMSYNC_DEMO_LOG_LEVEL")
DEFAULT_DATABASE_URL = "sqlite:///teamsync.db"

_DEFAULT_MAPPING = Path(__file__).resolve().parent.parent / "mappings" / "default.toml"


class _TomlFileSource(PydanticBaseSettingsSource):
    """Reads the optional TOML settings file, flattening one level of sections."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path | None) -> None:
        super().__init__(settings_cls)
        self._path = path
        self._data: dict[str, Any] = self._load() if path else {}

    def _load(self) -> dict[str, Any]:
        assert self._path is not None
        try:
            raw = tomllib.loads(self._path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigurationError(f"settings file not found: {self._path}") from exc
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigurationError(
                f"settings file {self._path} is not valid TOML: {exc}"
            ) from exc
        flat: dict[str, Any] = {}
        for key, value in raw.items():
            if isinstance(value, dict):
                for sub, subvalue in value.items():
                    flat[f"{key}_{sub}".lower()] = subvalue
            else:
                flat[key.lower()] = value
        known = set(self.settings_cls.model_fields)
        problems = [
            f"unknown setting {k!r} in {self._path}" for k in sorted(flat) if k not in known
        ]
        problems += [
            f"{k!r} is a secret: set {ENV_PREFIX}{k.upper()} (or {ENV_PREFIX}{k.upper()}_FILE) in "
            "the environment instead of the settings file"
            for k in sorted(flat)
            if k in SECRET_FIELDS
        ]
        if problems:
            raise ConfigurationError("invalid settings file", problems)
        return flat

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


class _SecretFileSource(PydanticBaseSettingsSource):
    """``TEAMSYNC_<SECRET>_FILE=/run/secrets/x`` reads the secret from that file."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in FILE_FIELDS:
            path = os.environ.get(f"{ENV_PREFIX}{name.upper()}_FILE")
            if path:
                try:
                    out[name] = Path(path).read_text(encoding="utf-8").strip()
                except OSError as exc:
                    raise ConfigurationError(
                        f"cannot read {ENV_PREFIX}{name.upper()}_FILE ({path}): {exc.strerror}"
                    ) from exc
        return out


SalesforceAuth = Literal["token", "client_credentials", "jwt"]


def salesforce_auth(
    *,
    access_token: bool,
    client_id: bool,
    client_secret: bool,
    username: bool,
    private_key_file: bool,
) -> SalesforceAuth | None:
    """How the first Salesforce session is obtained, from which credentials are given (the one
    rule: the settings check and the connector's configuration both use it).  A ready token
    wins; JWT bearer takes username + private key (+ client id); client credentials take
    client id + secret."""
    if access_token:
        return "token"
    return salesforce_oauth_flow(
        client_id=client_id,
        client_secret=client_secret,
        username=username,
        private_key_file=private_key_file,
    )


def salesforce_oauth_flow(
    *, client_id: bool, client_secret: bool, username: bool, private_key_file: bool
) -> Literal["client_credentials", "jwt"] | None:
    """The OAuth flow the credentials allow (it also renews an expired token), if any."""
    if username and private_key_file:
        return "jwt"
    if client_id and client_secret:
        return "client_credentials"
    return None


def salesforce_credential_problems(
    *,
    access_token: bool,
    client_id: bool,
    client_secret: bool,
    username: bool,
    private_key_file: bool,
    name: Callable[[str], str],
) -> list[str]:
    """What is wrong with the given Salesforce credentials; ``name(field)`` names a setting
    (``client_id`` -> ``TEAMSYNC_SALESFORCE_CLIENT_ID`` or ``client_id``)."""
    flow = salesforce_oauth_flow(
        client_id=client_id,
        client_secret=client_secret,
        username=username,
        private_key_file=private_key_file,
    )
    if flow == "jwt" and not client_id:
        return [f"the JWT bearer flow also needs {name('client_id')}"]
    if flow is None and not access_token:
        return [
            f"no Salesforce credentials: set {name('access_token')}, or {name('client_id')} + "
            f"{name('client_secret')}, or {name('username')} + {name('private_key_file')} + "
            f"{name('client_id')}"
        ]
    return []


MAX_NUMBER = 1_000_000_000  # no setting needs more; beyond it dates and sleeps overflow


class Settings(BaseSettings):
    """Every setting teamsync reads, with its default."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="ignore",
        hide_input_in_errors=True,
        validate_default=True,
    )

    # --- store and model ------------------------------------------------------------
    # Default: sqlite:///teamsync.db, or the SQLite file in ``data_dir`` when that is set.
    database_url: str = DEFAULT_DATABASE_URL
    # The image's data directory (TEAMSYNC_DATA_DIR=/var/lib/teamsync): its default store lives
    # there, and a run refuses when it is not durable (see sync/store/durable.py).
    data_dir: Path | None = None
    # None: detect (a durable mount at data_dir); true / false: trust / always refuse.
    data_dir_durable: bool | None = None
    # Apply pending migrations at the start of a run (under the run lock).
    auto_migrate: bool = False
    # Runs, operations and health history older than this are pruned after a run (0: never).
    retention_days: int = Field(180, ge=0, le=36_500)
    retention_batch_size: int = Field(5000, ge=1, le=100_000)
    mapping: Path = _DEFAULT_MAPPING

    # --- Salesforce -------------------------------------------------------------------
    salesforce_instance_url: str | None = None
    salesforce_access_token: SecretStr | None = None
    salesforce_client_id: str | None = None
    salesforce_client_secret: SecretStr | None = None
    salesforce_username: str | None = None
    salesforce_private_key_file: Path | None = None
    # None: derived from the instance host (https://test.salesforce.com for sandboxes).
    salesforce_jwt_audience: str | None = None
    salesforce_api_version: str = "62.0"
    # teamsync stops (exit 3) rather than take the org's API usage above this share of the
    # daily allocation, leaving room for the org's other integrations.
    salesforce_api_budget: float = Field(0.9, gt=0, le=1)
    salesforce_bulk_threshold: int = Field(2000, ge=1)  # writes of one kind above this: Bulk 2.0
    salesforce_bulk_query_threshold: int = Field(20_000, ge=1)  # rows above this: Bulk 2.0 query

    # --- Gainsight --------------------------------------------------------------------
    gainsight_base_url: str | None = None
    gainsight_access_key: SecretStr | None = None
    gainsight_rate_limit_per_minute: int = Field(100, ge=1)
    gainsight_page_size: int = Field(5000, ge=1, le=5000)
    # Gainsight reads date filters in a time zone it does not document (G3): its incremental
    # reads look back a day (not minutes), and can be backed by a periodic full read of the
    # Gainsight streams only (0: never; e.g. 24 for daily).
    gainsight_lookback_seconds: int = Field(86_400, ge=0)
    gainsight_full_read_hours: float = Field(0, ge=0)

    # --- both APIs --------------------------------------------------------------------
    ca_bundle: Path | None = None
    connect_timeout_seconds: float = Field(10.0, gt=0, le=3600)
    read_timeout_seconds: float = Field(120.0, gt=0, le=3600)
    retry_max_attempts: int = Field(6, ge=1, le=100)
    retry_max_wait_seconds: float = Field(120.0, ge=0, le=86_400)

    # --- sync behaviour ---------------------------------------------------------------
    lookback_seconds: int = Field(300, ge=0, le=30 * 86_400)
    chunk_size: int = Field(500, ge=1, le=10_000)
    mass_change_percent: float = Field(10.0, ge=0, le=100)
    mass_change_min: int = Field(25, ge=0)
    lock_lease_seconds: int = Field(900, ge=30, le=7 * 86_400)
    # `run --plan`: an approved plan older than this is refused (exit 4).
    plan_max_age_seconds: int = Field(86_400, ge=60, le=3650 * 86_400)
    # A run re-checks the cheap preflight (describes, org defaults, Cockpit picklists) when
    # its stored report is older than this, or after a field error.
    preflight_max_age_hours: float = Field(24, ge=0, le=10 * 365 * 24)
    daemon_cron: str = "*/15 * * * *"

    # --- alerts -----------------------------------------------------------------------
    alert_webhook_url: str | None = None
    alert_webhook_secret: SecretStr | None = None
    alert_slack_webhook_url: SecretStr | None = None
    # Comma-separated in the environment (``log,slack``); default: log plus every configured URL.
    alert_sinks: Annotated[list[Literal["log", "slack", "webhook"]] | None, NoDecode] = None
    alert_reminder_days: int = Field(7, ge=1, le=3650)
    alert_yellow_to_red_only: bool = False
    alert_digest_threshold: int = Field(25, ge=1)
    alert_max_attempts: int = Field(10, ge=1)
    # One delivery within a run: short, so that an unreachable sink never stalls the run (the
    # outbox retries it on later runs).
    alert_retry_max_attempts: int = Field(3, ge=1, le=100)
    alert_retry_max_wait_seconds: float = Field(10.0, ge=0, le=3600)
    # The first run on an empty store: one digest of the accounts already Red, or nothing.
    alert_first_run: Literal["digest", "none"] = "digest"
    # Partial runs (exit 1) in a row before a sync-health alert.
    alert_partial_runs: int = Field(3, ge=1)

    # --- operations -------------------------------------------------------------------
    daemon_tz: str = "UTC"  # the daemon's cron is read in this time zone
    metrics_host: str = "127.0.0.1"  # `teamsync daemon`: /metrics, /healthz, /readyz
    metrics_port: int = Field(9810, ge=0, le=65535)  # 0: not served
    metrics_file: Path | None = None  # `run`: node-exporter textfile (*.prom)
    pushgateway_url: str | None = None  # `run`: push the metrics there
    heartbeat_url: SecretStr | None = None  # pinged after each completed run

    # --- logging ----------------------------------------------------------------------
    log_format: Literal["json", "console"] | None = None  # default: json unless a terminal
    # Default: INFO, or WARNING when stderr is a terminal (``-v`` for INFO).
    log_level: str | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # --config on the command line wins over TEAMSYNC_CONFIG.
        config_file = _CONFIG_FILE_OVERRIDE.get("path") or os.environ.get(f"{ENV_PREFIX}CONFIG")
        return (
            init_settings,
            env_settings,
            _SecretFileSource(settings_cls),
            _TomlFileSource(settings_cls, Path(config_file) if config_file else None),
        )

    @field_validator("salesforce_instance_url", "gainsight_base_url", "alert_webhook_url")
    @classmethod
    def _https_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        value = value.strip().rstrip("/")
        if not re.match(r"^https://[A-Za-z0-9.\-\[\]:]+(/.*)?$", value):
            raise ValueError("must be an https:// URL")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        return normalize_database_url(value)

    @field_validator("pushgateway_url")
    @classmethod
    def _pushgateway_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        value = value.strip().rstrip("/")
        if not re.match(r"^https?://[A-Za-z0-9.\-\[\]:]+(/.*)?$", value):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("heartbeat_url")
    @classmethod
    def _heartbeat_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        if not value.get_secret_value().strip().startswith("https://"):
            raise ValueError("must be an https:// URL")
        return SecretStr(value.get_secret_value().strip())

    @field_validator("daemon_tz")
    @classmethod
    def _time_zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError("is not a known time zone (e.g. UTC, Europe/Berlin)") from None
        return value

    @field_validator("alert_sinks", mode="before")
    @classmethod
    def _split_sinks(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip().lower() for part in value.split(",") if part.strip()]
        return value

    @field_validator("salesforce_api_version")
    @classmethod
    def _api_version(cls, value: str) -> str:
        value = value.strip().lstrip("vV")
        if not re.match(r"^\d{2}\.\d$", value):
            raise ValueError("must look like 62.0")
        return value

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.upper()
        if value not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return value

    @field_validator("daemon_cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        from croniter import croniter

        if not croniter.is_valid(value):
            raise ValueError("is not a valid cron expression")
        return value

    @model_validator(mode="after")
    def _data_dir_store(self) -> Settings:
        if self.data_dir is not None and not self.database_url_chosen():
            self.database_url = f"sqlite:///{Path(self.data_dir) / 'teamsync.db'}"
            # A default, not a choice: the durable-store check must still see it as unset.
            self.__pydantic_fields_set__.discard("database_url")
        return self

    @field_validator("*", mode="after")
    @classmethod
    def _no_garbage_numbers(cls, value: Any) -> Any:
        # inf / NaN pass "greater than 0" checks and huge numbers overflow the dates and
        # sleeps they become: refused with the other problems, in the same pass.
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("must be a finite number")
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_NUMBER:
            raise ValueError(f"is too large (at most {MAX_NUMBER:,})")
        return value

    @field_validator("mapping", "salesforce_private_key_file")
    @classmethod
    def _file_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not Path(value).is_file():
            raise ValueError(f"file not found: {value}")
        return value

    @field_validator("ca_bundle")
    @classmethod
    def _ca_bundle(cls, value: Path | None) -> Path | None:
        """An extra CA: a PEM file of certificates (or a c_rehash directory) that loads."""
        if value is None:
            return None
        path = Path(value)
        if path.is_dir():
            return value
        if not path.is_file():
            raise ValueError(f"file not found: {value}")
        try:
            text = path.read_bytes()[:1_000_000]
        except OSError as exc:
            raise ValueError(f"cannot read {value}: {exc.strerror}") from None
        if b"-----BEGIN CERTIFICATE-----" not in text:
            raise ValueError(f"{value} is not a PEM certificate bundle")
        try:
            ssl.create_default_context().load_verify_locations(cafile=str(path))
        except (ssl.SSLError, ValueError):
            raise ValueError(f"{value} holds no certificate that can be loaded") from None
        return value

    # --- checks used by commands ------------------------------------------------------
    def database_url_chosen(self) -> bool:
        """True when someone set the store (environment, ``_FILE``, settings file, argument)."""
        return "database_url" in self.model_fields_set

    def salesforce_auth_mode(self) -> SalesforceAuth | None:
        """How the first Salesforce session is obtained (:func:`salesforce_auth`)."""
        return salesforce_auth(
            access_token=self.salesforce_access_token is not None,
            client_id=bool(self.salesforce_client_id),
            client_secret=self.salesforce_client_secret is not None,
            username=bool(self.salesforce_username),
            private_key_file=self.salesforce_private_key_file is not None,
        )

    def require(self, *systems: str) -> None:
        """Raise ConfigurationError listing every missing setting for these systems."""
        problems: list[str] = []
        if "salesforce" in systems:
            if not self.salesforce_instance_url:
                problems.append(f"{ENV_PREFIX}SALESFORCE_INSTANCE_URL is not set")
            problems += salesforce_credential_problems(
                access_token=self.salesforce_access_token is not None,
                client_id=bool(self.salesforce_client_id),
                client_secret=self.salesforce_client_secret is not None,
                username=bool(self.salesforce_username),
                private_key_file=self.salesforce_private_key_file is not None,
                name=lambda field: f"{ENV_PREFIX}SALESFORCE_{field.upper()}",
            )
        if "gainsight" in systems:
            if not self.gainsight_base_url:
                problems.append(f"{ENV_PREFIX}GAINSIGHT_BASE_URL is not set")
            if self.gainsight_access_key is None:
                problems.append(f"{ENV_PREFIX}GAINSIGHT_ACCESS_KEY is not set")
        if problems:
            raise ConfigurationError("incomplete settings", problems)

    def effective_alert_sinks(self) -> list[str]:
        if self.alert_sinks is not None:
            return list(self.alert_sinks)
        sinks = ["log"]
        if self.alert_slack_webhook_url is not None:
            sinks.append("slack")
        if self.alert_webhook_url:
            sinks.append("webhook")
        return sinks


def normalize_database_url(url: str) -> str:
    """``postgres://`` and ``postgresql://`` mean PostgreSQL through psycopg 3 (the driver the
    ``postgres`` extra installs); any other URL is left as it is."""
    url = url.strip()
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url


def known_env_names() -> set[str]:
    """Every ``TEAMSYNC_*`` variable teamsync reads."""
    names = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields}
    names |= {f"{ENV_PREFIX}{name.upper()}_FILE" for name in FILE_FIELDS}
    names |= set(OTHER_ENV)
    return names


def unknown_env_names(environ: Mapping[str, str] | None = None) -> list[tuple[str, str | None]]:
    """``TEAMSYNC_*`` variables that are no setting, each with the closest known name."""
    environ = os.environ if environ is None else environ
    known = known_env_names()
    # Compare without the shared prefix, which would make every name look close.
    suffixes = sorted(n.removeprefix(ENV_PREFIX) for n in known)
    out: list[tuple[str, str | None]] = []
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name in known:
            continue
        close = difflib.get_close_matches(name.removeprefix(ENV_PREFIX), suffixes, n=1, cutoff=0.6)
        out.append((name, ENV_PREFIX + close[0] if close else None))
    return out


# Set by ``--config FILE`` on the command line (it wins over TEAMSYNC_CONFIG).
_CONFIG_FILE_OVERRIDE: dict[str, str] = {}


def load_settings(config_file: Path | str | None = None, **overrides: Any) -> Settings:
    """Load and validate settings once; every problem is listed in one ConfigurationError."""
    if config_file is not None:
        _CONFIG_FILE_OVERRIDE["path"] = str(config_file)
    else:
        _CONFIG_FILE_OVERRIDE.pop("path", None)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "settings"
            env_name = f"{ENV_PREFIX}{loc.upper()}" if loc != "settings" else loc
            problems.append(f"{env_name}: {err['msg']}")
        raise ConfigurationError("invalid settings", problems) from None
