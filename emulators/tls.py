"""Throw-away TLS material for the emulators (trustme).

tls = TlsMaterial.create(Path("/tmp/certs"))
tls.ca_path        # PEM file to hand to requests / httpx (TEAMSYNC_CA_BUNDLE)
tls.server_context # ssl.SSLContext for EmulatorServer
"""

from __future__ import annotations

import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

import requests
import trustme


@dataclass(frozen=True)
class TlsMaterial:
    ca_path: Path
    cert_path: Path
    key_path: Path
    server_context: ssl.SSLContext

    @classmethod
    def create(cls, directory: Path | None = None) -> TlsMaterial:
        """Create a new CA and a server certificate for 127.0.0.1 / localhost / ::1."""
        directory = Path(directory or tempfile.mkdtemp(prefix="teamsync-tls-"))
        directory.mkdir(parents=True, exist_ok=True)
        ca = trustme.CA(organization_name="teamsync emulator CA")
        cert = ca.issue_cert("127.0.0.1", "localhost", "::1")
        ca_path = directory / "emulator-ca.pem"
        cert_path = directory / "emulator-cert.pem"
        key_path = directory / "emulator-key.pem"
        ca.cert_pem.write_to_path(str(ca_path))
        cert.cert_chain_pems[0].write_to_path(str(cert_path))
        for extra in cert.cert_chain_pems[1:]:
            extra.write_to_path(str(cert_path), append=True)
        cert.private_key_pem.write_to_path(str(key_path))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(cert_path), str(key_path))
        return cls(ca_path, cert_path, key_path, context)


def requests_session(ca_path: Path) -> requests.Session:
    """A requests session that trusts the emulator CA, whatever ``REQUESTS_CA_BUNDLE`` or
    ``SSL_CERT_FILE`` say (``trust_env`` off: no environment CA bundle, no proxies)."""
    session = requests.Session()
    session.trust_env = False
    session.verify = str(ca_path)
    return session
