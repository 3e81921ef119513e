"""``Idempotency-Key`` on the POSTs that create something: a retried request has the first one's
effect and answer (docs/adr/0010-http-idempotency.md).

A route opts in by taking an :data:`Idempotent` parameter (or :data:`IdempotentByService`,
:data:`IdempotentUpload`); its router uses :class:`ApiRoute`. Without the header nothing
here touches the database. With it, the key is scoped to the authenticated principal and
the request's fingerprint is SHA-256 over (method, path and query, SHA-256 of the body):

- the first request claims the key (a row with no answer yet), runs, and its answer
  (status, a few headers, body) is stored sealed; a retry with the same fingerprint gets
  that answer replayed with ``Idempotent-Replayed: true`` and has no second effect;
- the same key with another fingerprint is a 422 ``idempotency-key-reuse``; a retry while
  the first still runs is a 409 ``idempotency-in-progress`` with ``Retry-After``;
- a 5xx answer is not kept (the claim is released, a retry runs again); a 4xx is kept;
- answers expire after :data:`ANSWER_TTL`; expired rows are deleted as claims go by.

*By service* (``POST /v1/contacts``, ``/v1/contacts/batch``, ``/v1/subjects``,
``/v1/audit/events``): the service deduplicates by the key itself, in the same transaction
as the effect, so it survives a crash between the log append and the HTTP answer. Here the
row holds the fingerprint only (one INSERT per keyed request), refuses a key reused for
another request, and the replay is the service's own answer (marked duplicate), whichever
layer sees the retry first.

*Uploads* stream their body, so the fingerprint is known only when it has been read: the
claim is taken first, the body hashed as it streams, and an answer given before the body
was read to its end is not kept.

Stored answers can carry a secret (a client secret, a TOTP enrolment secret) or personal
data (an export archive), so they are sealed with the sealing recipe (``vault/aead.py``,
purpose ``stored answer``) under a key derived from the identity key of the data
directory, bound to the principal and the key. Invariant: no answer is ever stored in clear.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import inspect
import json
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Final, cast

import anyio
from fastapi import Depends, Header, Request, Response
from fastapi.dependencies.utils import get_typed_signature
from fastapi.params import Depends as DependsParam
from fastapi.routing import APIRoute
from sqlalchemy import Connection, DateTime, Engine, Integer, LargeBinary, String, Table, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, mapped_column
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import FileResponse
from starlette.types import Message, Receive

from api.auth import PrincipalDep
from api.errors import UnsupportedMediaTypeError, http_problem, tarcza_problem
from core.clock import Clock
from core.db import Base, is_sqlite, write_connection
from core.errors import ConfigurationError, ConflictError, InvalidInputError, TarczaError
from core.files import read_private_file
from core.logging import get_logger
from identity.principal import Principal
from vault import aead
from vault.errors import VaultDecryptError

log = get_logger(__name__)

ANSWER_TTL: Final = timedelta(hours=24)
"""How long a key's answer is replayed; a retry later than this runs again."""
IN_PROGRESS_LEASE: Final = timedelta(minutes=10)
"""A claim without an answer this old is taken to belong to a process that stopped; a retry takes it over."""
MAX_STORED_ANSWER: Final = 16 * 1024 * 1024
"""Larger answers (an export with its recordings) are not kept: the claim is released."""
MAX_KEY_LENGTH: Final = 128
"""Room for the services' own prefixes (``contact:<principal>:<key>#<i>``) in their 200-character columns."""
PURGE_EVERY: Final = timedelta(minutes=1)
RETRY_AFTER_SECONDS: Final = 2
REPLAYED_HEADER: Final = "Idempotent-Replayed"
KEPT_HEADERS: Final = frozenset({"content-type", "location", "cache-control", "pragma", "content-disposition",
                                 "content-range", "www-authenticate"})
_PENDING: Final = "pending"
_SCOPE_KEY: Final = "tarcza.idempotency"
_HASHER_KEY: Final = "tarcza.idempotency.hasher"
_MARKER: Final = "__tarcza_idempotency__"


class HttpIdempotency(Base):
    """A key's claim and, once answered, its sealed answer (migration ``0008_api_hardening``)."""

    __tablename__ = "http_idempotency"

    principal: Mapped[str] = mapped_column(String(128), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(300))
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(Integer)  # None while the first request runs
    response: Mapped[bytes | None] = mapped_column(LargeBinary)  # the sealed answer
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


TABLE: Final = cast(Table, HttpIdempotency.__table__)


class Mode(StrEnum):
    STORE = "store"  # the answer is kept here and replayed from here
    SERVICE = "service"  # the service deduplicates; only the fingerprint is kept here
    UPLOAD = "upload"  # like STORE, for a streamed body


class IdempotencyKeyReuseError(InvalidInputError):
    """The key was used by this principal for a different request."""

    code = "idempotency-key-reuse"
    title = "Idempotency key reused"


class IdempotencyInProgressError(ConflictError):
    """The first request with this key has not answered yet."""

    code = "idempotency-in-progress"
    title = "Request in progress"

    def __init__(self) -> None:
        super().__init__("the first request with this Idempotency-Key has not finished; retry shortly")
        self.headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}


class StoredAnswerError(ConfigurationError):
    """A stored answer that does not open (another identity key, or tampering); details in the log."""

    code = "idempotency-answer-unreadable"
    title = "Stored answer unreadable"


# -- sealing ---------------------------------------------------------------------------------------


class AnswerBox:
    """The sealing recipe's box for stored answers, under a key derived from the identity key.

    Answers stored before the recipe (``v1 || nonce || ciphertext || tag``) still open.
    """

    def __init__(self, master_key: bytes) -> None:
        self._box = aead.SubkeyBox(master_key, aead.STORED_ANSWER)

    def __repr__(self) -> str:
        return "AnswerBox(<key hidden>)"

    def seal(self, plaintext: bytes, *, principal: str, key: str) -> bytes:
        return self._box.seal(plaintext, principal, key)

    def open(self, sealed: bytes, *, principal: str, key: str) -> bytes:
        try:
            return self._box.open(sealed, principal, key)
        except VaultDecryptError:
            raise StoredAnswerError("a stored answer cannot be opened") from None


def load_answer_box(path: Path) -> AnswerBox:
    """The box keyed by the identity key file at ``path`` (``tarcza init`` creates it, mode 0600)."""
    from identity.secretbox import KEY_FILE_TAG, KEY_SIZE

    text = read_private_file(path, "identity key")
    try:
        if not text.startswith(KEY_FILE_TAG):
            raise ValueError
        master = base64.b64decode(text[len(KEY_FILE_TAG):], validate=True)
    except (binascii.Error, ValueError):
        raise ConfigurationError(f"identity key {path} is not a {KEY_FILE_TAG[:-1]} file") from None
    if len(master) != KEY_SIZE:
        raise ConfigurationError(f"identity key {path} must hold {KEY_SIZE} bytes")
    return AnswerBox(master)


def encode_answer(status: int, headers: list[tuple[str, str]], body: bytes) -> bytes:
    head = json.dumps({"status": status, "headers": headers}, separators=(",", ":")).encode()
    return head + b"\n" + body


def decode_answer(plain: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    head, _, body = plain.partition(b"\n")
    meta = json.loads(head)
    return int(meta["status"]), [(str(k), str(v)) for k, v in meta["headers"]], body


# -- storage ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredRow:
    fingerprint: str
    status_code: int | None
    response: bytes | None
    created_at: datetime


@contextmanager
def _unflushed_write(engine: Engine) -> Iterator[Connection]:
    """A write transaction whose commit does not wait for the disk: SQLite ``synchronous=NORMAL`` (in
    WAL mode a commit is then written but not flushed; the database stays consistent) for this one
    transaction, PostgreSQL ``synchronous_commit = off``. Only for rows that may be lost in a power cut."""
    with engine.connect() as conn:
        if not is_sqlite(engine):
            with conn.begin():
                conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
                yield conn
            return
        raw = conn.connection.dbapi_connection
        assert raw is not None  # noqa: S101 - a checked-out connection has its driver connection
        raw.execute("PRAGMA synchronous=NORMAL")
        try:
            with conn.execution_options(sqlite_begin="IMMEDIATE").begin():
                yield conn
        finally:
            raw.execute("PRAGMA synchronous=FULL")  # core.db's setting for every connection


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class IdempotencyStore:
    """The ``http_idempotency`` table: claims, answers, releases. Each call is one short transaction."""

    def __init__(self, engine: Engine, clock: Clock, box: Callable[[], AnswerBox]) -> None:
        self.engine = engine
        self.clock = clock
        self._box_loader = box
        self._box: AnswerBox | None = None
        self._last_purge: datetime | None = None

    @property
    def box(self) -> AnswerBox:
        if self._box is None:
            self._box = self._box_loader()
        return self._box

    def claim(self, principal: str, key: str, method: str, path: str, fingerprint: str, *,
              durable: bool = True) -> tuple[datetime, StoredRow | None]:
        """Insert a claim; ``(its created_at, None)`` if it is ours, else the live row that holds the key.

        ``durable=False`` for a row a power cut may lose (a fingerprint whose service deduplicates on
        its own): its commit waits for no disk flush.
        """
        now = _utc(self.clock.now())
        values = {"principal": principal, "key": key, "method": method, "path": path[:300],
                  "fingerprint": fingerprint, "status_code": None, "response": None,
                  "created_at": now, "expires_at": now + ANSWER_TTL}
        with (write_connection if durable else _unflushed_write)(self.engine) as conn:
            if self._last_purge is None or now - self._last_purge >= PURGE_EVERY:
                self._last_purge = now
                conn.execute(delete(TABLE).where(TABLE.c.expires_at <= now))
            insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
            stmt = (insert(TABLE).values(**values).on_conflict_do_nothing(index_elements=["principal", "key"])
                    .returning(TABLE.c.key))
            if conn.execute(stmt).first() is not None:
                return now, None
            row = conn.execute(select(TABLE.c.fingerprint, TABLE.c.status_code, TABLE.c.response,
                                      TABLE.c.created_at, TABLE.c.expires_at)
                               .where(TABLE.c.principal == principal, TABLE.c.key == key)).one_or_none()
            if row is None or _utc(row.expires_at) <= now:  # gone or expired: the key is free again
                conn.execute(delete(TABLE).where(TABLE.c.principal == principal, TABLE.c.key == key))
                conn.execute(stmt)
                return now, None
            return now, StoredRow(row.fingerprint, row.status_code, row.response, _utc(row.created_at))

    def take_over(self, principal: str, key: str, stale: StoredRow, fingerprint: str) -> datetime | None:
        """Claim a key whose first request stopped answering (older than the lease); None if another did."""
        now = _utc(self.clock.now())
        with write_connection(self.engine) as conn:
            taken = conn.execute(update(TABLE).where(
                TABLE.c.principal == principal, TABLE.c.key == key, TABLE.c.created_at == stale.created_at,
                TABLE.c.status_code.is_(None)).values(created_at=now, fingerprint=fingerprint)).rowcount
        return now if taken == 1 else None

    def answer(self, principal: str, key: str, claimed_at: datetime, fingerprint: str, status: int,
               plain: bytes) -> None:
        """Store the sealed answer of our claim."""
        sealed = self.box.seal(plain, principal=principal, key=key)
        with write_connection(self.engine) as conn:
            conn.execute(update(TABLE).where(
                TABLE.c.principal == principal, TABLE.c.key == key, TABLE.c.created_at == claimed_at,
                TABLE.c.status_code.is_(None)).values(status_code=status, response=sealed, fingerprint=fingerprint))

    def release(self, principal: str, key: str, claimed_at: datetime) -> None:
        """Give the key up: the request failed in a way a retry should run again (5xx, cut short)."""
        with write_connection(self.engine) as conn:
            conn.execute(delete(TABLE).where(
                TABLE.c.principal == principal, TABLE.c.key == key, TABLE.c.created_at == claimed_at,
                TABLE.c.status_code.is_(None)))

    def replay(self, principal: str, key: str, row: StoredRow) -> Response:
        """The stored answer as a response, marked replayed."""
        assert row.response is not None  # noqa: S101 - only answered rows are replayed
        status, headers, body = decode_answer(self.box.open(row.response, principal=principal, key=key))
        response = Response(content=body, status_code=status)
        for name, value in headers:
            response.headers[name] = value
        response.headers[REPLAYED_HEADER] = "true"
        return response


def store_of(request: Request) -> IdempotencyStore:
    """The app's store (one per app, made on first use)."""
    state = request.app.state
    store: IdempotencyStore | None = getattr(state, "idempotency_store", None)
    if store is None:
        from identity.secretbox import identity_key_path

        runtime = state.runtime
        path = identity_key_path(runtime.settings)
        store = IdempotencyStore(runtime.engine, runtime.clock, lambda: load_answer_box(path))
        state.idempotency_store = store
    return store


# -- one request -----------------------------------------------------------------------------------


def fingerprint_of(method: str, target: str, body_sha256: bytes) -> str:
    return hashlib.sha256(method.encode() + b"\0" + target.encode() + b"\0" + body_sha256).hexdigest()


class _BodyHasher:
    """An ASGI ``receive`` that hashes the body as the route reads it."""

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self.digest = hashlib.sha256()
        self.complete = False

    async def __call__(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request":
            self.digest.update(message.get("body", b""))
            if not message.get("more_body", False):
                self.complete = True
        return message


@dataclass
class Idempotency:
    """The ``Idempotency-Key`` of one request, as the route's dependency found it."""

    store: IdempotencyStore
    mode: Mode
    key: str
    principal: str
    request: Request
    claimed_at: datetime | None = None
    replayed: bool = False
    fingerprint: str = ""
    hasher: _BodyHasher | None = field(default=None, repr=False)

    @property
    def target(self) -> str:
        query = self.request.url.query
        return self.request.url.path + ("?" + query if query else "")

    async def digest_body(self) -> None:
        """The fingerprint of a body FastAPI has read (JSON, form) or that is empty."""
        if self.mode is not Mode.UPLOAD:
            body = await self.request.body()
            self.fingerprint = fingerprint_of(self.request.method, self.target, hashlib.sha256(body).digest())

    async def digest_upload(self) -> None:
        """Read the rest of a streamed body, only to hash it (a retry of an answered upload)."""
        async for _ in self.request.stream():
            pass
        assert self.hasher is not None  # noqa: S101 - installed for every upload with a key
        self.fingerprint = fingerprint_of(self.request.method, self.target, self.hasher.digest.digest())

    def begin(self) -> Response | StoredRow | None:
        """Claim the key. None: run the route. A response: the replay. A row: an answered upload whose
        body must be read before it can be compared (:meth:`compare`)."""
        claim_print = _PENDING if self.mode is Mode.UPLOAD else self.fingerprint
        now, row = self.store.claim(self.principal, self.key, self.request.method, self.request.url.path,
                                    claim_print, durable=self.mode is not Mode.SERVICE)
        if row is None:
            self.claimed_at = now
            return None
        if self.mode is Mode.SERVICE:
            if row.fingerprint != self.fingerprint:
                raise IdempotencyKeyReuseError("this Idempotency-Key was used for a different request")
            self.replayed = True
            return None
        if row.status_code is None:
            if row.fingerprint not in (claim_print, _PENDING):
                raise IdempotencyKeyReuseError("this Idempotency-Key was used for a different request")
            if now - row.created_at < IN_PROGRESS_LEASE:
                raise IdempotencyInProgressError()
            self.claimed_at = self.store.take_over(self.principal, self.key, row, claim_print)
            if self.claimed_at is None:
                raise IdempotencyInProgressError()
            log.warning("idempotency_claim_taken_over", path=self.request.url.path)
            return None
        if self.mode is Mode.UPLOAD:
            return row
        return self.compare(row)

    def compare(self, row: StoredRow) -> Response:
        if row.fingerprint != self.fingerprint:
            raise IdempotencyKeyReuseError("this Idempotency-Key was used for a different request")
        return self.store.replay(self.principal, self.key, row)

    async def finish(self, response: Response) -> None:
        """Keep the answer of our claim, or release the claim (5xx, unread upload, too large)."""
        if self.claimed_at is None or self.mode is Mode.SERVICE:
            return
        claimed_at = self.claimed_at
        self.claimed_at = None
        body = await _body_of(response)
        fingerprint = self.fingerprint
        if self.mode is Mode.UPLOAD:
            if self.hasher is None or not self.hasher.complete:
                body = None
            else:
                fingerprint = fingerprint_of(self.request.method, self.target, self.hasher.digest.digest())
        if response.status_code >= 500 or body is None:
            await run_in_threadpool(self.store.release, self.principal, self.key, claimed_at)
            return
        headers = [(k, v) for k, v in response.headers.items() if k.lower() in KEPT_HEADERS]
        try:
            await run_in_threadpool(self.store.answer, self.principal, self.key, claimed_at, fingerprint,
                                    response.status_code, encode_answer(response.status_code, headers, body))
        except Exception as exc:  # noqa: BLE001 - the answer stands; only keeping it failed
            log.error("idempotency_answer_not_kept", path=self.request.url.path, error=type(exc).__name__)
            await run_in_threadpool(self.store.release, self.principal, self.key, claimed_at)

    async def abandon(self) -> None:
        """Release the claim after an error no answer was made for (the request will be retried)."""
        if self.claimed_at is not None and self.mode is not Mode.SERVICE:
            claimed_at, self.claimed_at = self.claimed_at, None
            with anyio.CancelScope(shield=True):
                await run_in_threadpool(self.store.release, self.principal, self.key, claimed_at)


async def _body_of(response: Response) -> bytes | None:
    """The bytes of an answer, if it has them in memory or in a file of at most MAX_STORED_ANSWER."""
    if isinstance(response, FileResponse):
        path = Path(response.path)
        if path.stat().st_size > MAX_STORED_ANSWER:
            return None
        return await anyio.Path(path).read_bytes()
    body = getattr(response, "body", None)
    if not isinstance(body, bytes | memoryview) or len(body) > MAX_STORED_ANSWER:
        return None
    return bytes(body)


def principal_scope(principal: Principal) -> str:
    return f"{principal.kind.value}:{principal.id}"[:128]


def _dependency(mode: Mode) -> Callable[..., Awaitable[Idempotency | None]]:
    async def dependency(  # async: it does no I/O, so it takes no trip through the thread pool
        request: Request, principal: PrincipalDep,
        idempotency_key: Annotated[str | None, Header(
            alias="Idempotency-Key", min_length=1, max_length=MAX_KEY_LENGTH, pattern=r"^[\x21-\x7e]+$",
            description="A unique key (e.g. a UUID) per logical request: a retry with the same key and the "
                        "same request has the first one's effect and gets its answer "
                        "(Idempotent-Replayed: true); kept 24 hours")] = None,
    ) -> Idempotency | None:
        if idempotency_key is None:
            return None
        context = Idempotency(store_of(request), mode, idempotency_key, principal_scope(principal), request,
                              hasher=request.scope.get(_HASHER_KEY))
        request.scope[_SCOPE_KEY] = context
        return context

    dependency.__name__ = f"idempotency_{mode.value}"
    setattr(dependency, _MARKER, mode)
    return dependency


idempotency_context = _dependency(Mode.STORE)
service_idempotency_context = _dependency(Mode.SERVICE)
upload_idempotency_context = _dependency(Mode.UPLOAD)

Idempotent = Annotated[Idempotency | None, Depends(idempotency_context)]
"""A route parameter: the route's answer is kept and replayed for a retried ``Idempotency-Key``."""
IdempotentByService = Annotated[Idempotency | None, Depends(service_idempotency_context)]
"""A route parameter: the service deduplicates by ``idempotency.key``; only reuse is refused here."""
IdempotentUpload = Annotated[Idempotency | None, Depends(upload_idempotency_context)]
"""A route parameter for a streamed upload: the answer is kept once the whole body was read."""


def is_idempotency_dependency(call: Any) -> bool:
    return getattr(call, _MARKER, None) is not None


# -- the route class -------------------------------------------------------------------------------

_JSON: Final = ("application/json",)
_FORM: Final = ("application/x-www-form-urlencoded", "multipart/form-data")


def _idempotency_mode(endpoint: Callable[..., Any]) -> tuple[str, Mode] | None:
    """The name and mode of the endpoint's :data:`Idempotent` (or sibling) parameter, if it has one."""
    for name, parameter in get_typed_signature(endpoint).parameters.items():
        for meta in getattr(parameter.annotation, "__metadata__", ()):
            mode = getattr(getattr(meta, "dependency", None), _MARKER, None)
            if isinstance(meta, DependsParam) and mode is not None:
                return name, mode
    return None


def _claiming(endpoint: Callable[..., Any], name: str) -> Callable[..., Coroutine[Any, Any, Any]]:
    """The endpoint, run only once the key is claimed (after authentication, authorisation and validation)."""
    is_async = inspect.iscoroutinefunction(endpoint)

    def begin_then_run(context: Idempotency, kwargs: dict[str, Any]) -> Any:
        outcome = context.begin()
        return outcome if isinstance(outcome, Response) else endpoint(**kwargs)

    @functools.wraps(endpoint)
    async def claiming(**kwargs: Any) -> Any:
        context: Idempotency | None = kwargs.get(name)
        if context is None:
            return await endpoint(**kwargs) if is_async else await run_in_threadpool(endpoint, **kwargs)
        await context.digest_body()
        if not is_async:
            return await run_in_threadpool(begin_then_run, context, kwargs)
        outcome = await run_in_threadpool(context.begin)
        if isinstance(outcome, StoredRow):  # an answered upload: read this body, then compare
            await context.digest_upload()
            return await run_in_threadpool(context.compare, outcome)
        if isinstance(outcome, Response):
            return outcome
        return await endpoint(**kwargs)

    return claiming


class ApiRoute(APIRoute):
    """The routes of the API: a body only in the media type the route reads (else 415), and
    ``Idempotency-Key`` for routes that take an :data:`Idempotent` parameter (or a sibling)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        found = _idempotency_mode(endpoint)
        self.idempotency: Mode | None = None if found is None else found[1]
        if found is not None:
            endpoint = _claiming(endpoint, found[0])
        super().__init__(path, endpoint, **kwargs)

    @property
    def body_media(self) -> tuple[str, ...]:
        """The media types the route reads its body in (none: it reads no body, or streams its own)."""
        from fastapi import params

        body = self.body_field
        if body is None:
            return ()
        return _FORM if isinstance(body.field_info, params.Form | params.File) else _JSON

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        media, mode = self.body_media, self.idempotency

        async def route_handler(request: Request) -> Response:
            if media:
                _check_media_type(request, media)
            if mode is None or "idempotency-key" not in request.headers:
                return await handler(request)
            return await _run_idempotent(handler, request, mode)

        return route_handler


def _check_media_type(request: Request, accepted: tuple[str, ...]) -> None:
    """415 for a body the route cannot read: a JSON route given a form, a form route given JSON..."""
    headers = request.headers
    if headers.get("content-length", "0") == "0" and "transfer-encoding" not in headers:
        return
    media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media in accepted or (accepted == _JSON and media.startswith("application/") and media.endswith("+json")):
        return
    raise UnsupportedMediaTypeError(f"send the body as {' or '.join(accepted)}")


async def _run_idempotent(handler: Callable[[Request], Awaitable[Response]], request: Request,
                          mode: Mode) -> Response:
    """Run a keyed request: its answer kept (or the claim released), a replay marked."""
    if mode is Mode.UPLOAD:
        hasher = _BodyHasher(request.receive)
        request = Request(request.scope, hasher)
        request.scope[_HASHER_KEY] = hasher
    try:
        response = await handler(request)
    except TarczaError as exc:
        context = _claimed(request)
        if context is None:
            raise
        if exc.extra.get("duplicate") is True:
            context.replayed = True
        response = tarcza_problem(request, exc)
    except StarletteHTTPException as exc:
        context = _claimed(request)
        if context is None:
            raise
        response = http_problem(request, exc)
    except BaseException:
        context = _claimed(request)
        if context is not None:
            await context.abandon()
        raise
    context = request.scope.get(_SCOPE_KEY)
    if context is not None:
        if context.replayed:
            response.headers[REPLAYED_HEADER] = "true"
        await context.finish(response)
    return response


def _claimed(request: Request) -> Idempotency | None:
    """The request's key if this request claimed it (or is a retry the service answers)."""
    context: Idempotency | None = request.scope.get(_SCOPE_KEY)
    if context is None or (context.claimed_at is None and not context.replayed):
        return None
    return context
