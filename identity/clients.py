"""API clients: OAuth 2.0 client credentials with hashed secrets, scopes, purposes and an IP allow-list.

A client has an id (public, ``cl_`` + 64 bits) and one or more secrets (``tzc_`` + 256
bits, shown once, stored as SHA-256). Rotation adds a new secret and lets the old ones
live for an overlap period, so a system can switch without downtime. The token endpoint
exchanges id + secret for a short-lived access token (``tza_``, stored as SHA-256) that
carries the granted scopes. Revoking a client ends its secrets and tokens at once.

A client may be bound to a TLS client certificate (RFC 8705 style, by the SHA-256 of the
certificate's DER bytes): its access tokens then work only on a mutual-TLS connection that
presented that very certificate (see docs/adr/0011-transport-security.md). The binding
holds for every token the client has, old or new; unbinding releases them.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import ssl
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from sqlalchemy.orm import Session

from audit.events import Actor, ActorKind
from core.clock import Clock
from core.errors import ConflictError, InvalidInputError, NotFoundError
from core.logging import get_logger
from identity import repository, scopes, tokens
from identity.config import IdentityConfig
from identity.errors import ClientCertificateError, InvalidClientError, InvalidTokenError, OAuthError
from identity.events import EventQueue
from identity.models import AccessToken, ApiClient, ClientSecret
from identity.principal import Principal

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._\-]{0,99}$")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_PEM_CERTIFICATE = re.compile(rb"-----BEGIN CERTIFICATE-----\r?\n.+?\r?\n-----END CERTIFICATE-----", re.DOTALL)
log = get_logger(__name__)


def certificate_der(data: bytes) -> bytes:
    """The DER bytes of the X.509 certificate in ``data``: PEM (the first certificate) or DER.

    Raises :class:`InvalidInputError` for anything else (a private key, a CSR, garbage).
    """
    match = _PEM_CERTIFICATE.search(data)
    if match is not None:
        try:
            der = ssl.PEM_cert_to_DER_cert(match.group(0).decode("ascii"))
        except (ValueError, UnicodeDecodeError):
            raise InvalidInputError("the PEM certificate is not valid base64") from None
    elif b"-----BEGIN" in data:
        raise InvalidInputError("no certificate found: expected a PEM block -----BEGIN CERTIFICATE-----")
    else:
        der = data
    try:
        x509.load_der_x509_certificate(der)
    except ValueError:
        raise InvalidInputError("not an X.509 certificate (PEM or DER)") from None
    return der


def certificate_sha256(der: bytes) -> str:
    """The binding of a certificate: lowercase hex SHA-256 of its DER bytes (RFC 8705 ``x5t#S256``, in hex)."""
    return hashlib.sha256(der).hexdigest()


def parse_networks(values: Iterable[str] | None) -> tuple[Network, ...] | None:
    if values is None:
        return None
    out: list[Network] = []
    for value in (s for v in values for s in v.replace(",", " ").split()):
        try:
            out.append(ipaddress.ip_network(value, strict=False))
        except ValueError:
            raise InvalidInputError(f"{value!r} is not an IP network (CIDR, e.g. 10.0.0.0/8)") from None
    return tuple(out)


def ip_allowed(networks: Iterable[Network] | None, source_ip: str | None) -> bool:
    """True without an allow-list; with one, only for an address inside one of its networks."""
    if networks is None:
        return True
    if source_ip is None:
        return False
    try:
        address = ipaddress.ip_address(source_ip)
    except ValueError:
        return False
    return any(address in net for net in networks)


@dataclass(frozen=True)
class ClientInfo:
    id: str
    name: str
    scopes: frozenset[str]
    purposes: frozenset[str] | None
    ip_allowlist: tuple[str, ...] | None
    created_at: datetime
    revoked_at: datetime | None
    live_secrets: int
    cert_sha256: str | None = None  # the TLS client certificate the client is bound to

    def to_json(self) -> dict[str, Any]:
        return {
            "client_id": self.id, "name": self.name, "scopes": sorted(self.scopes),
            "purposes": None if self.purposes is None else sorted(self.purposes),
            "ip_allowlist": None if self.ip_allowlist is None else list(self.ip_allowlist),
            "created_at": self.created_at.isoformat(), "revoked": self.revoked_at is not None,
            "live_secrets": self.live_secrets, "cert_sha256": self.cert_sha256,
        }


@dataclass(frozen=True)
class IssuedSecret:
    """A client's new secret, returned once."""

    client: ClientInfo
    secret: str = field(repr=False)
    previous_secrets_expire_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        out = self.client.to_json()
        out["client_secret"] = self.secret
        out["previous_secrets_expire_at"] = (self.previous_secrets_expire_at.isoformat()
                                             if self.previous_secrets_expire_at else None)
        return out


@dataclass(frozen=True)
class IssuedAccessToken:
    token: str = field(repr=False)
    expires_in: int
    scopes: frozenset[str]

    def to_json(self) -> dict[str, Any]:
        """RFC 6749 section 5.1 token response."""
        return {"access_token": self.token, "token_type": "Bearer", "expires_in": self.expires_in,
                "scope": scopes.join(self.scopes)}


def _networks_of(client: ApiClient) -> tuple[Network, ...] | None:
    return None if client.ip_allowlist is None else parse_networks([client.ip_allowlist])


class ClientService:
    def __init__(self, session: Session, *, clock: Clock, events: EventQueue, config: IdentityConfig) -> None:
        self.session = session
        self.clock = clock
        self.events = events
        self.config = config

    def _info(self, client: ApiClient) -> ClientInfo:
        live = len(repository.live_client_secrets(self.session, client.id, self.clock.now()))
        return ClientInfo(client.id, client.name, scopes.parse_scopes(client.scopes),
                          None if client.purposes is None else frozenset(client.purposes.split()),
                          None if client.ip_allowlist is None else tuple(client.ip_allowlist.split()),
                          client.created_at, client.revoked_at, live if client.revoked_at is None else 0,
                          client.cert_sha256)

    def get(self, client_id: str) -> ApiClient:
        client = repository.client_by_id(self.session, client_id)
        if client is None:
            raise NotFoundError("no such client", client_id=client_id)
        return client

    def _new_secret(self, client_id: str) -> str:
        secret = tokens.new_token(tokens.SECRET_PREFIX)
        self.session.add(ClientSecret(id=str(uuid.uuid4()), client_id=client_id,
                                      secret_hash=tokens.token_hash(secret), created_at=self.clock.now()))
        return secret

    def create(self, name: str, client_scopes: Iterable[str], *, purposes: Iterable[str] | None = None,
               ip_allowlist: Iterable[str] | None = None, certificate: bytes | None = None,
               actor: Actor) -> IssuedSecret:
        """A new client and its first secret; ``certificate`` (PEM or DER) binds it to that TLS certificate."""
        name = name.strip()
        if not NAME_PATTERN.match(name):
            raise InvalidInputError("a client name is 1-100 characters: letters, digits, space, '.', '_' or '-'")
        granted = scopes.parse_scopes(list(client_scopes))
        allowed_purposes = scopes.parse_purposes(purposes)
        networks = parse_networks(ip_allowlist)
        bound = None if certificate is None else certificate_sha256(certificate_der(certificate))
        client = ApiClient(
            id=tokens.new_client_id(), name=name, scopes=scopes.join(granted),
            purposes=None if allowed_purposes is None else scopes.join(allowed_purposes),
            ip_allowlist=None if networks is None else " ".join(str(n) for n in networks),
            cert_sha256=bound, created_at=self.clock.now(),
        )
        self.session.add(client)
        self.session.flush()
        secret = self._new_secret(client.id)
        self.session.flush()
        self.events.add("identity.client_created", actor, client_id=client.id,
                        reason="scopes:" + ",".join(sorted(granted)) + (" certificate_bound" if bound else ""))
        if bound:
            log.info("client_certificate_bound", client_id=client.id, cert_sha256=bound)
        return IssuedSecret(self._info(client), secret)

    def bind_certificate(self, client_id: str, certificate: bytes | None, *, actor: Actor) -> ClientInfo:
        """Bind the client to a TLS client certificate (PEM or DER), replacing any earlier one; None unbinds.

        Recorded as ``identity.client_rotated`` with reason ``certificate_bound`` or
        ``certificate_unbound`` (a change of the client's credentials).
        """
        client = self.get(client_id)
        if client.revoked_at is not None:
            raise ConflictError("the client is revoked; create a new one")
        bound = None if certificate is None else certificate_sha256(certificate_der(certificate))
        if bound != client.cert_sha256:
            client.cert_sha256 = bound
            self.session.flush()
            reason = "certificate_bound" if bound else "certificate_unbound"
            self.events.add("identity.client_rotated", actor, client_id=client.id, reason=reason)
            log.info("client_" + reason, client_id=client.id, cert_sha256=bound)
        return self._info(client)

    def list(self) -> list[ClientInfo]:
        return [self._info(c) for c in repository.list_clients(self.session)]

    def rotate(self, client_id: str, *, overlap: timedelta | None = None, actor: Actor) -> IssuedSecret:
        """Issue a new secret; every older live secret stops working after ``overlap`` (default 24 h)."""
        overlap = self.config.default_rotation_overlap if overlap is None else overlap
        if overlap < timedelta(0) or overlap > self.config.max_rotation_overlap:
            raise InvalidInputError(f"the overlap must be between 0 and {self.config.max_rotation_overlap}")
        client = self.get(client_id)
        if client.revoked_at is not None:
            raise ConflictError("the client is revoked; create a new one")
        now = self.clock.now()
        ends = now + overlap
        for old in repository.live_client_secrets(self.session, client.id, now):
            if old.expires_at is None or old.expires_at > ends:
                old.expires_at = ends
        secret = self._new_secret(client.id)
        self.session.flush()
        self.events.add("identity.client_rotated", actor, client_id=client.id,
                        reason=f"overlap_seconds:{int(overlap.total_seconds())}")
        return IssuedSecret(self._info(client), secret, ends)

    def revoke(self, client_id: str, *, actor: Actor) -> ClientInfo:
        """Revoke the client: its secrets and every access token stop working at once."""
        client = self.get(client_id)
        if client.revoked_at is None:
            now = self.clock.now()
            client.revoked_at = now
            repository.revoke_client_tokens(self.session, client.id, now)
            self.events.add("identity.client_revoked", actor, client_id=client.id)
        self.session.flush()
        return self._info(client)

    # -- OAuth 2.0 client credentials -------------------------------------------------------------------

    def authenticate(self, client_id: str, client_secret: str, *, source_ip: str | None) -> ApiClient:
        """The client whose live secret this is; :class:`InvalidClientError` (audited if the client exists)."""
        client = repository.client_by_id(self.session, client_id) if len(client_id) <= 40 else None
        if client is None:
            tokens.hash_matches("0" * 64, client_secret)  # same work as a real comparison
            raise InvalidClientError()
        reason: str | None = None
        if client.revoked_at is not None:
            reason = "revoked"
        else:
            # compare with every live secret (no early exit), so timing does not tell which one matched
            live = repository.live_client_secrets(self.session, client.id, self.clock.now())
            if sum(tokens.hash_matches(s.secret_hash, client_secret) for s in live) == 0:
                reason = "secret"
        if reason is None and not ip_allowed(_networks_of(client), source_ip):
            reason = "ip_not_allowed"
        if reason is not None:
            self.events.add("identity.login_failed", Actor(id=client.id, kind=ActorKind.CLIENT), client_id=client.id,
                            reason=reason, source_ip=source_ip)
            raise InvalidClientError()
        return client

    def issue_token(self, client_id: str, client_secret: str, *, scope: str | None = None,
                    source_ip: str | None = None) -> IssuedAccessToken:
        client = self.authenticate(client_id, client_secret, source_ip=source_ip)
        held = scopes.parse_scopes(client.scopes)
        try:
            requested = held if not scope else scopes.parse_scopes(scope)
        except InvalidInputError:
            raise OAuthError("invalid_scope", "unknown scope requested") from None
        if not requested <= held:
            raise OAuthError("invalid_scope", "the client does not hold every requested scope")
        now = self.clock.now()
        token = tokens.new_token(tokens.ACCESS_PREFIX)
        self.session.add(AccessToken(id=str(uuid.uuid4()), token_hash=tokens.token_hash(token), client_id=client.id,
                                     scopes=scopes.join(requested), issued_at=now,
                                     expires_at=now + self.config.access_token_lifetime))
        self.session.flush()
        self.events.add("identity.login_succeeded", Actor(id=client.id, kind=ActorKind.CLIENT), client_id=client.id,
                        reason="client_credentials", source_ip=source_ip)
        return IssuedAccessToken(token, int(self.config.access_token_lifetime.total_seconds()), requested)

    def resolve(self, token: str, *, source_ip: str | None, client_cert_sha256: str | None = None) -> Principal:
        """The principal of a live access token from an allowed address; :class:`InvalidTokenError` otherwise.

        ``client_cert_sha256`` is the certificate the connection presented (mutual TLS), if any;
        a client bound to a certificate is refused with :class:`ClientCertificateError`, and
        the refusal audited, unless it is that certificate.
        """
        if not token.startswith(tokens.ACCESS_PREFIX):
            raise InvalidTokenError()
        row = repository.access_token_by_hash(self.session, tokens.token_hash(token))
        if row is None or not tokens.hash_matches(row.token_hash, token):
            raise InvalidTokenError()
        client = repository.client_by_id(self.session, row.client_id)
        now = self.clock.now()
        if (client is None or client.revoked_at is not None or row.revoked_at is not None
                or now >= row.expires_at or not ip_allowed(_networks_of(client), source_ip)):
            raise InvalidTokenError()
        if client.cert_sha256 is not None and (
                client_cert_sha256 is None or not hmac.compare_digest(client.cert_sha256, client_cert_sha256)):
            reason = "certificate_missing" if client_cert_sha256 is None else "certificate_mismatch"
            self.events.add("identity.login_failed", Actor(id=client.id, kind=ActorKind.CLIENT), client_id=client.id,
                            reason=reason, source_ip=source_ip)
            log.warning("client_certificate_refused", client_id=client.id, reason=reason, presented=client_cert_sha256)
            raise ClientCertificateError()
        return Principal(id=client.id, kind=ActorKind.CLIENT, scopes=frozenset(row.scopes.split()),
                         allowed_purposes=None if client.purposes is None else frozenset(client.purposes.split()),
                         session_id=row.id)

    def revoke_token(self, principal: Principal) -> None:
        """End the access token a client principal came with (its "logout")."""
        if principal.kind is not ActorKind.CLIENT or principal.session_id is None:
            raise InvalidTokenError()
        row = self.session.get(AccessToken, principal.session_id)
        if row is not None and row.revoked_at is None:
            row.revoked_at = self.clock.now()
            self.events.add("identity.logout", principal.actor, client_id=principal.id)
