"""`tarcza serve` over TLS and mutual TLS, with API clients bound to their certificates.

Real certificates made here with ``cryptography`` (a CA, a server certificate for
127.0.0.1, two client certificates and one the CA never signed), a real `tarcza serve`
process on a free port, and httpx with and without a client certificate.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from api.auth import identity_transaction
from api.cli.identity import operator_actor
from api.runtime import Runtime
from audit.repository import EntryFilter
from core.errors import InvalidInputError
from core.settings import load_settings
from identity.clients import certificate_sha256
from tests.serving import free_port, tarcza_serve

NOW = dt.datetime.now(dt.UTC)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Tarcza test"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _issue(subject: str, issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None, *, ca: bool = False,
           server: bool = False) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    issuer_name, issuer_key = issuer or (_name(subject), key)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(issuer_name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(NOW - dt.timedelta(minutes=5)).not_valid_after(NOW + dt.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(
            "127.0.0.1"))]), critical=False).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                                                           critical=False)
    elif not ca:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False, encipher_only=False,
            decipher_only=False), critical=True)
    return builder.sign(issuer_key, hashes.SHA256()), key


def _write(directory: Path, name: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> tuple[Path, Path]:
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@dataclass(frozen=True)
class Pki:
    ca: Path
    server: tuple[Path, Path]
    alice: tuple[Path, Path]  # client certificates issued by the CA
    bob: tuple[Path, Path]
    stranger: tuple[Path, Path]  # self-signed: the CA never vouched for it

    def client(self, pair: tuple[Path, Path] | None = None) -> httpx.Client:
        """An httpx client that trusts the test CA and presents ``pair`` (or no certificate)."""
        context = ssl.create_default_context(cafile=self.ca)
        if pair is not None:
            context.load_cert_chain(*pair)
        return httpx.Client(verify=context, timeout=10)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ca_cert, ca_key = _issue("Tarcza test CA", None, ca=True)
    (directory / "ca.pem").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    issuer = (ca_cert.subject, ca_key)
    return Pki(
        ca=directory / "ca.pem",
        server=_write(directory, "server", *_issue("127.0.0.1", issuer, server=True)),
        alice=_write(directory, "alice", *_issue("dialer-alice", issuer)),
        bob=_write(directory, "bob", *_issue("crm-bob", issuer)),
        stranger=_write(directory, "stranger", *_issue("stranger", None)),
    )


@dataclass(frozen=True)
class TlsServer:
    url: str
    runtime: Runtime
    env: dict[str, str]


@pytest.fixture(scope="module")
def tls_server(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsServer]:
    """`tarcza serve` with HTTPS and client certificates verified against the test CA (SQLite)."""
    from api.cli.common import initialise_runtime

    data_dir = tmp_path_factory.mktemp("tls") / "var"
    data_dir.mkdir(mode=0o700)
    database_url = f"sqlite:///{data_dir / 'tarcza.db'}"
    runtime = Runtime(load_settings(data_dir=data_dir, database_url=database_url))
    initialise_runtime(runtime)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TARCZA_")}
    env.update({"TARCZA_DATA_DIR": str(data_dir), "TARCZA_DATABASE_URL": database_url})
    args = ["--tls-cert", str(pki.server[0]), "--tls-key", str(pki.server[1]), "--tls-client-ca", str(pki.ca)]

    def ready(url: str) -> bool:
        try:
            with pki.client() as client:
                return bool(client.get(url + "/healthz").status_code == 200)
        except httpx.TransportError:  # not listening yet
            return False

    try:
        with tarcza_serve(env, data_dir.parent / "server.log", args=args, scheme="https", timeout=60,
                          ready=ready) as (url, _proc):
            yield TlsServer(url, runtime, env)
    finally:
        runtime.close()


def _client(server: TlsServer, name: str, certificate: Path | None = None) -> tuple[str, str]:
    """A new API client with scope audit:read (bound to ``certificate`` if given): (client_id, secret)."""
    with identity_transaction(server.runtime) as identity:
        issued = identity.clients.create(name, ["audit:read"], actor=operator_actor(),
                                         certificate=certificate.read_bytes() if certificate else None)
    return issued.client.id, issued.secret


def _token(client: httpx.Client, server: TlsServer, client_id: str, secret: str) -> dict[str, str]:
    response = client.post(server.url + "/v1/oauth/token", data={
        "grant_type": "client_credentials", "client_id": client_id, "client_secret": secret})
    assert response.status_code == 200, response.text
    return {"Authorization": "Bearer " + response.json()["access_token"]}


READ_PATH = "/v1/audit/checkpoints"


class TestServeOverTls:
    def test_https_answers_with_hsts(self, tls_server: TlsServer, pki: Pki) -> None:
        """Over HTTPS every answer carries Strict-Transport-Security."""
        with pki.client() as client:
            response = client.get(tls_server.url + "/healthz")
        assert response.status_code == 200
        assert response.headers["strict-transport-security"] == "max-age=31536000"

    def test_certificate_the_ca_did_not_issue_fails_the_handshake(self, tls_server: TlsServer, pki: Pki) -> None:
        """A client certificate the configured CA does not vouch for ends the connection."""
        with pki.client(pki.stranger) as client, pytest.raises(httpx.TransportError):
            client.get(tls_server.url + "/healthz")


class TestCertificateBinding:
    def test_bound_client_works_with_its_certificate(self, tls_server: TlsServer, pki: Pki) -> None:
        """A client bound to a certificate is served when the connection presents that certificate."""
        client_id, secret = _client(tls_server, "dialer", pki.alice[0])
        with pki.client(pki.alice) as alice:
            response = alice.get(tls_server.url + READ_PATH, headers=_token(alice, tls_server, client_id, secret))
        assert response.status_code == 200

    def test_bound_client_token_is_refused_with_another_certificate_or_none(
            self, tls_server: TlsServer, pki: Pki) -> None:
        """The bound client's token is a 401 problem from a connection with another certificate or without one."""
        client_id, secret = _client(tls_server, "dialer-2", pki.alice[0])
        with pki.client(pki.alice) as alice:
            headers = _token(alice, tls_server, client_id, secret)
        for pair in (pki.bob, None):
            with pki.client(pair) as other:
                response = other.get(tls_server.url + READ_PATH, headers=headers)
            assert response.status_code == 401
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["type"] == "urn:tarcza:problem:client-certificate-required"
            assert 'error="invalid_token"' in response.headers["www-authenticate"]
        refusals = [e.event["payload"]["reason"] for e in tls_server.runtime.audit.query(
            EntryFilter(event_type="identity.login_failed"), limit=1000).items
            if e.event["payload"].get("client_id") == client_id]
        assert refusals == ["certificate_mismatch", "certificate_missing"]

    def test_unbound_client_needs_no_certificate(self, tls_server: TlsServer, pki: Pki) -> None:
        """A client without a binding is served over TLS without a client certificate."""
        client_id, secret = _client(tls_server, "crm")
        with pki.client() as plain:
            response = plain.get(tls_server.url + READ_PATH, headers=_token(plain, tls_server, client_id, secret))
        assert response.status_code == 200

    def test_cli_binds_a_certificate_to_a_running_servers_client(self, tls_server: TlsServer, pki: Pki) -> None:
        """`tarcza client bind-cert` binds at once: the same token then needs the certificate."""
        client_id, secret = _client(tls_server, "field-app")
        with pki.client() as plain:
            headers = _token(plain, tls_server, client_id, secret)
            assert plain.get(tls_server.url + READ_PATH, headers=headers).status_code == 200
            done = subprocess.run([sys.executable, "-m", "api", "client", "bind-cert", client_id,
                                   "--cert", str(pki.bob[0])], env=tls_server.env, capture_output=True, text=True,
                                  check=False, timeout=120)
            assert done.returncode == 0, done.stderr
            der = x509.load_pem_x509_certificate(pki.bob[0].read_bytes()).public_bytes(serialization.Encoding.DER)
            assert certificate_sha256(der) in done.stdout
            assert plain.get(tls_server.url + READ_PATH, headers=headers).status_code == 401
        with pki.client(pki.bob) as bob:
            assert bob.get(tls_server.url + READ_PATH, headers=headers).status_code == 200

    def test_a_key_is_not_a_certificate(self, tls_server: TlsServer, pki: Pki) -> None:
        """Binding refuses a file that is not an X.509 certificate (here, a private key)."""
        with pytest.raises(InvalidInputError, match="certificate"):
            _client(tls_server, "mistake", pki.alice[1])


class TestServeRefuses:
    def _serve(self, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "api", "serve", "--port", str(free_port()), *args],
                              env=env, capture_output=True, text=True, check=False, timeout=120)

    def test_missing_key_file_is_a_one_line_error(self, tls_server: TlsServer, pki: Pki, tmp_path: Path) -> None:
        """A TLS key that does not exist stops `serve` with one `error:` line naming it, exit 1."""
        missing = tmp_path / "no-such-key.pem"
        done = self._serve(tls_server.env, "--tls-cert", str(pki.server[0]), "--tls-key", str(missing))
        assert done.returncode == 1
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1
        assert lines[0].startswith("error: TLS key")
        assert str(missing) in lines[0]

    def test_key_of_another_certificate_is_refused(self, tls_server: TlsServer, pki: Pki) -> None:
        """A certificate with a key that is not its own stops `serve` with one `error:` line."""
        done = self._serve(tls_server.env, "--tls-cert", str(pki.server[0]), "--tls-key", str(pki.alice[1]))
        assert done.returncode == 1
        assert done.stderr.strip().startswith("error: TLS certificate")
        assert len(done.stderr.strip().splitlines()) == 1

    def test_plain_http_on_a_public_address_needs_an_explicit_flag(self, tls_server: TlsServer) -> None:
        """Without TLS, `serve` refuses a non-loopback host unless --insecure-http is given."""
        done = self._serve(tls_server.env, "--host", "0.0.0.0")  # noqa: S104 - refused before binding
        assert done.returncode == 1
        assert done.stderr.startswith("error: refusing plain HTTP on 0.0.0.0")
        assert len(done.stderr.strip().splitlines()) == 1
