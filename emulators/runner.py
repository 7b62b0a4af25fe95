"""Start both emulators over HTTPS, seeded with a synthetic org, sharing one clock and one log.

    with start_emulators(accounts=200, seed=7) as emu:
        os.environ.update(emu.env())              # what teamsync reads
        emu.salesforce.faults.fail_next(503)      # or over HTTP, see below
        emu.log.count(api="salesforce", kind="write")

Each server is wrapped in a small admin layer (loopback test controls; no authentication,
because the servers bind to 127.0.0.1 by default and hold throw-away data only):

==========================================  ===============================================
``GET /__emulator/requests``                the request log: ``{"summary", "recent"}``
``DELETE /__emulator/requests``             empty the request log
``GET /__emulator/faults``                  this emulator's fault settings (+ ``scheduled``)
``PUT /__emulator/faults``                  change settings (same keys); ``{"fail_next": [429,
                                            503]}`` schedules statuses; ``{"tamper": [rule,
                                            ...]}`` adds hostile answers (emulators.tamper);
                                            ``{"reset": true}``
``GET /__emulator/org``                     the seeded :class:`OrgSummary` (404 when none)
``GET|POST /__emulator/clock``              ``{"advance_ms": n}`` or ``{"set_ms": n}``; answers
                                            ``{"now_ms"}`` (the clock both emulators share)
==========================================  ===============================================

Admin calls never reach the emulators: they are not logged as API calls, not rate limited and
not fault-injected.  Other ``/__emulator/...`` paths pass through to each emulator's own
controls.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from emulators.faults import Faults
from emulators.gainsight import GainsightEmulator
from emulators.http import App, EmulatorServer, Request, Response
from emulators.profile import Profile, profile_named
from emulators.requestlog import RequestLog
from emulators.salesforce import SalesforceEmulator
from emulators.store import Clock
from emulators.synthetic import OrgSummary, seed_emulators
from emulators.tls import TlsMaterial

API_VERSION = "62.0"
AUTH_MODES = ("client_credentials", "token", "jwt")
ADMIN_PREFIX = "/__emulator/"


class AdminLayer:
    """Answer the runner's admin endpoints; hand every other request to ``app``."""

    def __init__(
        self,
        app: App,
        *,
        faults: Faults,
        log: RequestLog,
        clock: Clock,
        org: Callable[[], OrgSummary | None],
    ) -> None:
        self.app = app
        self.faults = faults
        self.log = log
        self.clock = clock
        self._org = org
        self._routes: dict[tuple[str, str], Callable[[Request], Response]] = {
            ("GET", "requests"): lambda _r: Response.json(self.log.snapshot()),
            ("DELETE", "requests"): self._reset_log,
            ("GET", "faults"): lambda _r: Response.json(self.faults.as_dict()),
            ("PUT", "faults"): self._put_faults,
            ("GET", "org"): self._get_org,
            ("GET", "clock"): lambda _r: Response.json({"now_ms": self.clock.now_ms()}),
            ("POST", "clock"): self._move_clock,
        }

    def __call__(self, request: Request) -> Response:
        if request.path.startswith(ADMIN_PREFIX):
            what = request.path[len(ADMIN_PREFIX) :].strip("/")
            route = self._routes.get((request.method.upper(), what))
            if route is not None:
                return route(request)
            if what in {name for _method, name in self._routes}:
                return _problem(405, f"method {request.method} not allowed on {request.path}")
        return self.app(request)

    def _reset_log(self, _request: Request) -> Response:
        self.log.reset()
        return Response.empty(204)

    def _put_faults(self, request: Request) -> Response:
        try:
            body = request.json()
        except ValueError:
            return _problem(400, "body must be a JSON object")
        if not isinstance(body, dict):
            return _problem(400, "body must be a JSON object")
        settings = dict(body)
        reset = bool(settings.pop("reset", False))
        fail_next = settings.pop("fail_next", [])
        tamper = settings.pop("tamper", [])
        if not isinstance(fail_next, list) or not all(isinstance(s, int) for s in fail_next):
            return _problem(400, "fail_next must be a list of HTTP statuses")
        if reset:
            self.faults.reset()
        try:
            self.faults.configure(**settings)
            self.faults.tamper_from_json(tamper)
        except (TypeError, ValueError) as exc:
            return _problem(400, str(exc))
        self.faults.fail_next(*fail_next)
        return Response.json(self.faults.as_dict())

    def _get_org(self, _request: Request) -> Response:
        org = self._org()
        if org is None:
            return _problem(404, "no synthetic org was seeded")
        return Response.json(org.to_dict())

    def _move_clock(self, request: Request) -> Response:
        try:
            body = request.json()
        except ValueError:
            return _problem(400, "body must be a JSON object")
        if not isinstance(body, dict) or not ({"advance_ms", "set_ms"} & set(body)):
            return _problem(400, 'give {"advance_ms": n} or {"set_ms": n}')
        for key in ("set_ms", "advance_ms"):
            value = body.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                return _problem(400, f"{key} must be an integer number of milliseconds")
        if body.get("set_ms") is not None:
            self.clock.set(body["set_ms"])
        if body.get("advance_ms") is not None:
            self.clock.advance(body["advance_ms"])
        return Response.json({"now_ms": self.clock.now_ms()})


def _problem(status: int, message: str) -> Response:
    return Response.json({"error": message}, status)


@dataclass
class RunningEmulators:
    """Both emulators, their HTTPS servers and what a client needs to reach them."""

    salesforce: SalesforceEmulator
    gainsight: GainsightEmulator
    sf_server: EmulatorServer
    gs_server: EmulatorServer
    tls: TlsMaterial
    clock: Clock
    log: RequestLog
    org: OrgSummary | None
    salesforce_url: str
    gainsight_url: str
    ca_path: Path
    private_key_path: Path
    _cleanup: list[Path] = field(default_factory=list, repr=False)
    _stopped: bool = field(default=False, repr=False)

    def env(self, auth: str = "client_credentials") -> dict[str, str]:
        """The ``TEAMSYNC_*`` variables pointing teamsync at these emulators.

        ``auth``: ``client_credentials`` (client id + secret), ``token`` (a ready session
        token) or ``jwt`` (username + private key file + client id).
        """
        creds = self.salesforce.credentials
        env = {
            "TEAMSYNC_SALESFORCE_INSTANCE_URL": self.salesforce_url,
            "TEAMSYNC_SALESFORCE_API_VERSION": API_VERSION,
            "TEAMSYNC_GAINSIGHT_BASE_URL": self.gainsight_url,
            "TEAMSYNC_GAINSIGHT_ACCESS_KEY": self.gainsight.access_key,
            "TEAMSYNC_CA_BUNDLE": str(self.ca_path),
        }
        if auth == "client_credentials":
            env["TEAMSYNC_SALESFORCE_CLIENT_ID"] = creds.client_id
            env["TEAMSYNC_SALESFORCE_CLIENT_SECRET"] = creds.client_secret
        elif auth == "token":
            env["TEAMSYNC_SALESFORCE_ACCESS_TOKEN"] = creds.static_token
        elif auth == "jwt":
            env["TEAMSYNC_SALESFORCE_CLIENT_ID"] = creds.client_id
            env["TEAMSYNC_SALESFORCE_USERNAME"] = creds.username
            env["TEAMSYNC_SALESFORCE_PRIVATE_KEY_FILE"] = str(self.private_key_path)
        else:
            raise ValueError(f"auth must be one of {', '.join(AUTH_MODES)}, not {auth!r}")
        return env

    def stop(self) -> None:
        """Stop both servers and remove the files the runner created (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        self.sf_server.stop()
        self.gs_server.stop()
        for path in self._cleanup:
            shutil.rmtree(path, ignore_errors=True)

    def __enter__(self) -> RunningEmulators:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_emulators(
    *,
    accounts: int = 0,
    seed: int = 7,
    tls: TlsMaterial | None = None,
    workdir: Path | None = None,
    clock: Clock | None = None,
    host: str = "127.0.0.1",
    sf_port: int = 0,
    gs_port: int = 0,
    profile: Profile | str | None = None,
) -> RunningEmulators:
    """Seed (when ``accounts`` > 0) and serve both emulators; ports 0 pick free ports.

    ``workdir`` receives the TLS material (unless ``tls`` is given) and the JWT private key;
    without one a temporary directory is used and removed again by :meth:`stop`.
    ``profile`` is ``strict`` (the default) or ``lenient`` (see :mod:`emulators.profile`).
    """
    chosen = profile_named(profile)
    cleanup: list[Path] = []
    if workdir is None:
        workdir = Path(tempfile.mkdtemp(prefix="teamsync-emulators-"))
        cleanup.append(workdir)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    tls = tls or TlsMaterial.create(workdir / "tls")
    clock = clock or Clock()
    log = RequestLog()
    salesforce = SalesforceEmulator(clock=clock, log=log, profile=chosen)
    gainsight = GainsightEmulator(clock=clock, log=log, profile=chosen)
    org = seed_emulators(salesforce, gainsight, accounts=accounts, seed=seed) if accounts else None
    private_key_path = salesforce.credentials.write_private_key(workdir / "salesforce-jwt-key.pem")

    def org_summary() -> OrgSummary | None:
        return org

    def serve(app: App, faults: Faults, port: int) -> EmulatorServer:
        layer = AdminLayer(app, faults=faults, log=log, clock=clock, org=org_summary)
        return EmulatorServer(layer, host=host, port=port, ssl_context=tls.server_context)

    sf_server = serve(salesforce, salesforce.faults, sf_port).start()
    try:
        gs_server = serve(gainsight, gainsight.faults, gs_port).start()
    except BaseException:
        sf_server.stop()
        raise
    return RunningEmulators(
        salesforce=salesforce,
        gainsight=gainsight,
        sf_server=sf_server,
        gs_server=gs_server,
        tls=tls,
        clock=clock,
        log=log,
        org=org,
        salesforce_url=_client_url(host, sf_server.port),
        gainsight_url=_client_url(host, gs_server.port),
        ca_path=tls.ca_path,
        private_key_path=private_key_path,
        _cleanup=cleanup,
    )


def _client_url(host: str, port: int) -> str:
    """The URL a local client uses: a wildcard bind address is reached via 127.0.0.1."""
    if host in ("", "0.0.0.0"):  # noqa: S104 - comparing, not binding
        host = "127.0.0.1"
    elif host == "::":
        host = "[::1]"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"https://{host}:{port}"
