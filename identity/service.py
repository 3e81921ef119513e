"""The identity facade the edges use, and the transaction shape every identity operation has.

:class:`Identity` bundles the services over one ORM session. :func:`transaction` is how
an HTTP request or a CLI command runs them: commit, then append the queued audit events,
then answer. Failed authentication attempts are committed as well (their counters are
the throttle), so :class:`AuthenticationError` and :class:`RateLimitedError` commit
before they propagate; any other error rolls back and appends nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from audit.service import AuditLog
from core.clock import Clock
from core.db import is_sqlite
from core.errors import AuthenticationError, RateLimitedError
from identity import tokens
from identity.attempts import Attempts
from identity.clients import ClientService
from identity.config import DEFAULT_CONFIG, IdentityConfig
from identity.errors import InvalidTokenError
from identity.events import EventQueue
from identity.factors import SecondFactors
from identity.passwords import Passwords
from identity.principal import Principal
from identity.secretbox import SecretBox
from identity.sessions import Authenticator
from identity.users import UserService


@cache
def default_passwords() -> Passwords:
    return Passwords(min_length=DEFAULT_CONFIG.min_password_length)


class Identity:
    """Users, second factors, sessions and clients over one session; nothing here commits."""

    def __init__(self, session: Session, *, clock: Clock, box: Callable[[], SecretBox],
                 passwords: Passwords | None = None, config: IdentityConfig = DEFAULT_CONFIG) -> None:
        self.session = session
        self.clock = clock
        self.config = config
        self.events = EventQueue()
        passwords = passwords or default_passwords()
        attempts = Attempts(clock=clock, policy=config.throttle, events=self.events)
        self.users = UserService(session, clock=clock, passwords=passwords, events=self.events)
        self.factors = SecondFactors(session, clock=clock, box=box, events=self.events,
                                     recovery_codes=config.recovery_codes)
        self.auth = Authenticator(session, clock=clock, passwords=passwords, factors=self.factors,
                                  attempts=attempts, events=self.events, config=config)
        self.clients = ClientService(session, clock=clock, events=self.events, config=config)

    def resolve_bearer(self, token: str, *, source_ip: str | None, client_cert_sha256: str | None = None) -> Principal:
        """The principal of a session token or a client access token.

        ``client_cert_sha256``: the TLS client certificate of the connection, if any (see
        :meth:`identity.clients.ClientService.resolve`).
        """
        if token.startswith(tokens.SESSION_PREFIX):
            return self.auth.resolve(token)
        if token.startswith(tokens.ACCESS_PREFIX):
            return self.clients.resolve(token, source_ip=source_ip, client_cert_sha256=client_cert_sha256)
        raise InvalidTokenError()

    def revoke_bearer(self, principal: Principal) -> None:
        """Log out: end the session or access token the principal came with."""
        if principal.kind.value == "client":
            self.clients.revoke_token(principal)
        else:
            self.auth.logout(principal)


@contextmanager
def transaction(sessions: sessionmaker[Session], *, audit: Callable[[], AuditLog], clock: Clock,
                box: Callable[[], SecretBox], passwords: Passwords | None = None,
                config: IdentityConfig = DEFAULT_CONFIG, read_only: bool = False) -> Iterator[Identity]:
    """Run identity operations: commit, then append their audit events (see the module docstring).

    On SQLite the transaction takes the write lock up front (``BEGIN IMMEDIATE``): a deferred
    transaction that reads, then writes after another connection (the audit sequencer)
    committed, would fail at once instead of waiting its turn. ``read_only`` operations (they
    write no row; their audit events are appended after, by the log) skip that lock, so they
    do not queue behind every commit: resolving a client's access token on each request.
    """
    bind = sessions.kw.get("bind")
    connection = None
    if isinstance(bind, Engine) and is_sqlite(bind) and not read_only:
        connection = bind.connect().execution_options(sqlite_begin="IMMEDIATE")
    session = sessions(bind=connection) if connection is not None else sessions()
    identity = Identity(session, clock=clock, box=box, passwords=passwords, config=config)
    try:
        try:
            yield identity
        except (AuthenticationError, RateLimitedError):
            session.commit()
            _flush(identity, audit)
            raise
        except BaseException:
            session.rollback()
            raise
        session.commit()
        _flush(identity, audit)
    finally:
        session.close()
        if connection is not None:
            connection.close()


def _flush(identity: Identity, audit: Callable[[], AuditLog]) -> None:
    if identity.events.items:
        identity.events.flush(audit())
