"""``teamsync emulate``: serve both emulators with a synthetic org until Ctrl-C / SIGTERM.

    serve_forever(accounts=200, seed=7)                  # prints URLs, credentials, exports
    serve_forever(accounts=200, seed=7, tls_dir=Path("certs"), sf_port=8443, gs_port=8444)

With ``tls_dir`` the CA, server certificate and JWT key live there and are reused on the next
start, so a client configured once keeps trusting the emulators.  The credentials printed are
the emulators' own throw-away values, never real ones.
"""

from __future__ import annotations

import contextlib
import shlex
import signal
import ssl
import threading
from pathlib import Path
from types import FrameType

from rich.console import Console
from rich.table import Table

from emulators.runner import RunningEmulators, start_emulators
from emulators.tls import TlsMaterial

READY_LINE = "Ready. Press Ctrl-C to stop."


def load_or_create_tls(directory: Path) -> TlsMaterial:
    """The TLS material in ``directory`` if it is complete, else a new CA written there."""
    directory = Path(directory)
    ca, cert, key = (
        directory / "emulator-ca.pem",
        directory / "emulator-cert.pem",
        directory / "emulator-key.pem",
    )
    if ca.is_file() and cert.is_file() and key.is_file():
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(str(cert), str(key))
        except (ssl.SSLError, OSError):
            pass  # unreadable or mismatched: start over with fresh material
        else:
            return TlsMaterial(ca, cert, key, context)
    return TlsMaterial.create(directory)


def serve_forever(
    accounts: int,
    seed: int,
    host: str = "127.0.0.1",
    sf_port: int = 0,
    gs_port: int = 0,
    tls_dir: Path | None = None,
    *,
    console: Console | None = None,
    profile: str | None = None,
) -> None:
    """Start, print how to connect, block until Ctrl-C or SIGTERM, then stop cleanly."""
    console = console or Console(highlight=False, soft_wrap=True)
    tls = load_or_create_tls(Path(tls_dir)) if tls_dir else None
    with console.status(f"Seeding {accounts:,} accounts (seed {seed})..."):
        running = start_emulators(
            accounts=accounts,
            seed=seed,
            tls=tls,
            workdir=Path(tls_dir) if tls_dir else None,
            host=host,
            sf_port=sf_port,
            gs_port=gs_port,
            profile=profile,
        )
    stop = threading.Event()
    restore = _install_signal_handlers(stop)
    try:
        _print_banner(console, running, accounts, seed)
        # A timed wait: signal handlers run on the main thread between the waits.
        while not stop.wait(0.5):
            pass
    finally:
        running.stop()
        restore()
        console.print("Stopped.")


def _install_signal_handlers(stop: threading.Event) -> _Restore:
    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous: dict[int, object] = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        # Outside the main thread signals cannot be caught: the caller stops us another way.
        with contextlib.suppress(ValueError):
            previous[sig] = signal.signal(sig, handler)
    return _Restore(previous)


class _Restore:
    def __init__(self, previous: dict[int, object]) -> None:
        self.previous = previous

    def __call__(self) -> None:
        for sig, old in self.previous.items():
            signal.signal(sig, old)  # type: ignore[arg-type]


def _print_banner(console: Console, emu: RunningEmulators, accounts: int, seed: int) -> None:
    creds = emu.salesforce.credentials
    console.rule("teamsync emulators")
    where = Table.grid(padding=(0, 2))
    where.add_row("Salesforce", emu.salesforce_url)
    where.add_row("Gainsight", emu.gainsight_url)
    where.add_row("Profile", emu.salesforce.profile.name)
    where.add_row("CA file", str(emu.ca_path))
    where.add_row("JWT private key", str(emu.private_key_path))
    console.print(where)

    console.print("\n[bold]Credentials[/bold] (the emulators' own throw-away values)")
    secrets = Table.grid(padding=(0, 2))
    secrets.add_row("Salesforce client id", creds.client_id)
    secrets.add_row("Salesforce client secret", creds.client_secret)
    secrets.add_row("Salesforce username (JWT)", creds.username)
    secrets.add_row("Salesforce session token", creds.static_token)
    secrets.add_row("Gainsight access key", emu.gainsight.access_key)
    console.print(secrets)

    if emu.org is not None:
        counts = Table(
            title=f"Seeded org: {accounts:,} accounts, seed {seed}", title_justify="left"
        )
        counts.add_column("object")
        counts.add_column("rows", justify="right")
        for name, n in emu.org.counts.items():
            counts.add_row(name, f"{n:,}")
        console.print(counts)
        console.print(f"Scenario accounts: {len(emu.org.scenarios)} (see GET /__emulator/org)")
    else:
        console.print("No synthetic org: both emulators are empty.")

    console.print("\n[bold]Paste into your shell[/bold] (client-credentials flow):")
    for key, value in emu.env("client_credentials").items():
        console.print(f"export {key}={shlex.quote(value)}", markup=False)
    console.print("# or a ready session token instead of the client secret:", markup=False)
    token = emu.env("token")["TEAMSYNC_SALESFORCE_ACCESS_TOKEN"]
    console.print(f"#   export TEAMSYNC_SALESFORCE_ACCESS_TOKEN={shlex.quote(token)}", markup=False)
    console.print("# or the JWT bearer flow:", markup=False)
    jwt_env = emu.env("jwt")
    for key in ("TEAMSYNC_SALESFORCE_USERNAME", "TEAMSYNC_SALESFORCE_PRIVATE_KEY_FILE"):
        console.print(f"#   export {key}={shlex.quote(jwt_env[key])}", markup=False)

    console.print(
        "\nAdmin (no auth, loopback only): GET|DELETE /__emulator/requests, "
        "GET|PUT /__emulator/faults, GET /__emulator/org, POST /__emulator/clock",
        markup=False,
    )
    console.print(READY_LINE, markup=False)
