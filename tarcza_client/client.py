"""The synchronous Tarcza client for integrating systems (CRM, dialer, field-agent app).

It authenticates as an API client (OAuth 2.0 client credentials: the id and secret buy a
short-lived access token, renewed before it expires and once more if the server answers 401),
verifies TLS by default and can present a client certificate for mutual TLS.

Retries: every creating POST carries an ``Idempotency-Key`` (generated unless the caller gives
one; the same key on every attempt), so it is retried on connection failures, 429, 503 and a
409 ``idempotency-in-progress`` (the first attempt still runs), honouring ``Retry-After``, with
a bounded number of attempts and exponential backoff. Reads
are retried alike. Reveals and searches, which the server logs as accesses, are retried only
when the server surely did not see them (a refused connection, 429, 503).

Errors: problem details become :class:`~tarcza_client.errors.ProblemError` subclasses; a
network failure that outlived the retries becomes :class:`~tarcza_client.errors.TransportError`.
Neither carries the request.
"""

from __future__ import annotations

import base64
import email.utils
import random
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import IO, Any, Literal, TypeVar
from urllib.parse import quote

import httpx

from tarcza_client import models as m
from tarcza_client import operations as ops
from tarcza_client.errors import ProblemError, TransportError, UnexpectedResponseError, problem_error
from tarcza_client.operations import Operation

A = TypeVar("A", bound=m.AnswerModel)
Query = Mapping[str, str | int | bool | None]
_CONNECT_FAILURES = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry.

    ``attempts`` counts the first try. Without ``Retry-After`` the n-th wait is
    ``backoff * 2 ** (n - 1)`` capped at ``max_backoff``, with jitter (half to all of it). A
    ``Retry-After`` longer than ``max_retry_after`` is not waited for: the 429 or 503 is raised.
    """

    attempts: int = 4
    backoff: float = 0.25
    max_backoff: float = 8.0
    max_retry_after: float = 60.0

    def wait(self, attempt: int) -> float:
        full = min(self.max_backoff, self.backoff * 2.0 ** (attempt - 1))
        jitter: float = 0.5 + random.random() / 2  # noqa: S311 - jitter, not a secret
        return full * jitter


def _ssl_context(verify: bool | str | ssl.SSLContext, cert: str | tuple[str, str] | None) -> ssl.SSLContext:
    """TLS settings: verification on unless ``verify=False``; ``cert`` is a client certificate (mTLS)."""
    if isinstance(verify, ssl.SSLContext):
        if cert is not None:
            raise ValueError("with your own SSLContext, load the client certificate into it yourself")
        return verify
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context = ssl.create_default_context(cafile=verify if isinstance(verify, str) else None)
    if cert is not None:
        certfile, keyfile = (cert, None) if isinstance(cert, str) else cert
        context.load_cert_chain(certfile, keyfile)
    return context


def _retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date), or None."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _problem_code(response: httpx.Response) -> str | None:
    """The ``urn:tarcza:problem:<code>`` of a problem-details answer, or None."""
    if not response.headers.get("content-type", "").startswith("application/problem+json"):
        return None
    response.read()
    try:
        body = response.json()
    except ValueError:
        return None
    problem_type = body.get("type") if isinstance(body, dict) else None
    return problem_type.rsplit(":", 1)[-1] if isinstance(problem_type, str) else None


def _iso(value: datetime | date | None) -> str | None:
    return None if value is None else value.isoformat()


class TarczaClient:
    """A client of one Tarcza server, authenticated as one API client. Use it as a context manager.

    >>> with TarczaClient("https://tarcza.example", client_id, client_secret) as tarcza:
    ...     receipt = tarcza.record_contact(Contact(subject=token, channel="phone", agent_id="a-7",
    ...                                             started_at=datetime.now(UTC)))

    ``clock`` (monotonic seconds) and ``sleep`` are injectable for tests; ``renew_before`` is how
    long before its expiry the access token is renewed (at most half its lifetime).
    """

    def __init__(self, base_url: str, client_id: str, client_secret: str, *, scope: str | None = None,
                 verify: bool | str | ssl.SSLContext = True, cert: str | tuple[str, str] | None = None,
                 timeout: float = 30.0, retry: RetryPolicy | None = None, renew_before: float = 60.0,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 user_agent: str = "tarcza-client/1") -> None:
        self._client_id = client_id
        self._client_secret = client_secret
        self._scope = scope
        self.retry = retry or RetryPolicy()
        self._renew_before = renew_before
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._token: str | None = None
        self._renew_at = 0.0
        self._http = httpx.Client(base_url=base_url.rstrip("/"), verify=_ssl_context(verify, cert), timeout=timeout,
                                  headers={"User-Agent": user_agent}, follow_redirects=False)

    def __repr__(self) -> str:
        return f"TarczaClient({str(self._http.base_url)!r}, client_id={self._client_id!r})"

    def __enter__(self) -> TarczaClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections (the access token stays valid until it expires; see :meth:`revoke_token`)."""
        self._http.close()

    # -- authentication -------------------------------------------------------------------------------

    def _access_token(self) -> str:
        with self._lock:
            if self._token is None or self._clock() >= self._renew_at:
                started = self._clock()
                issued = self._fetch_token()
                margin = min(self._renew_before, issued.expires_in / 2)
                self._token, self._renew_at = issued.access_token, started + issued.expires_in - margin
            return self._token

    def _fetch_token(self) -> m.AccessToken:
        basic = base64.b64encode(f"{quote(self._client_id, safe='')}:{quote(self._client_secret, safe='')}"
                                 .encode()).decode("ascii")
        form = m.TokenRequest(scope=self._scope).model_dump(mode="json", exclude_none=True)
        response = self._send(ops.TOKEN, form=form, headers={"Authorization": f"Basic {basic}"})
        return self._answer(ops.TOKEN, response, m.AccessToken)

    def _forget_token(self, stale: str) -> None:
        with self._lock:
            if self._token == stale:
                self._token = None

    def revoke_token(self) -> None:
        """End the current access token on the server (its logout); the next call gets a new one."""
        with self._lock:
            token, self._token = self._token, None
        if token is not None:
            response = self._send(ops.REVOKE_TOKEN, token=token)
            self._check(ops.REVOKE_TOKEN, response)

    # -- the request loop -------------------------------------------------------------------------------

    def _url(self, op: Operation, path: Mapping[str, str | int]) -> str:
        return op.path.format(**{k: quote(str(v), safe="") for k, v in path.items()})

    def _send(self, op: Operation, *, path: Mapping[str, str | int] | None = None, query: Query | None = None,
              json: Any = None, form: Mapping[str, str] | None = None,
              body: Callable[[], bytes | Iterator[bytes]] | None = None, replayable: bool = True,
              headers: Mapping[str, str] | None = None, idempotency_key: str | None = None,
              stream: bool = False, token: str | None = None) -> httpx.Response:
        """Send ``op`` with retries; the final response, whatever its status (the caller decides)."""
        url = self._url(op, path or {})
        params = {k: ("true" if v is True else "false" if v is False else v) for k, v in (query or {}).items()
                  if v is not None}
        key = (idempotency_key or str(uuid.uuid4())) if op.creates else None
        attempt, renewed = 0, False
        while True:
            attempt += 1
            sent_headers = {"Accept": "application/json, application/problem+json" if op.media == "json" else "*/*",
                            **(headers or {})}
            if key is not None:
                sent_headers["Idempotency-Key"] = key
            bearer = token or (self._access_token() if op.auth else None)
            if bearer is not None:
                sent_headers["Authorization"] = f"Bearer {bearer}"
            request = self._http.build_request(op.method, url, params=params, json=json, data=form,
                                               content=body() if body is not None else None, headers=sent_headers)
            failure: str | None = None
            connect_failure = False
            try:
                response = self._http.send(request, stream=stream)
            except _CONNECT_FAILURES as exc:
                failure, connect_failure = type(exc).__name__, True
            except httpx.TransportError as exc:
                failure = type(exc).__name__
            del request
            may_retry = replayable and attempt < self.retry.attempts
            if failure is not None:
                if may_retry and (connect_failure or op.retry_any_failure):
                    self._sleep(self.retry.wait(attempt))
                    continue
                raise TransportError(op.method, op.path, failure, attempt)
            status = response.status_code
            if status == 401 and bearer is not None and token is None and not renewed and replayable:
                response.close()
                self._forget_token(bearer)  # revoked or expired early: renew once, not counted as an attempt
                renewed, attempt = True, attempt - 1
                continue
            in_progress = status == 409 and key is not None and _problem_code(response) == "idempotency-in-progress"
            if (status in (429, 503) or in_progress) and may_retry and (status != 503 or op.retry_any_failure):
                wait = _retry_after(response)
                if wait is None or wait <= self.retry.max_retry_after:
                    response.close()
                    self._sleep(self.retry.wait(attempt) if wait is None else wait)
                    continue
            return response

    def _check(self, op: Operation, response: httpx.Response) -> None:
        """Raise the problem (or an unexpected answer) unless ``response`` is a success."""
        if response.is_success:
            return
        if not response.is_closed:
            response.read()
        content_type = response.headers.get("content-type", "").split(";")[0].strip()
        body: Any = None
        if content_type in ("application/problem+json", "application/json"):
            try:
                body = response.json()
            except ValueError:
                body = None
        response.close()
        if not isinstance(body, dict) or "status" not in body:
            raise UnexpectedResponseError(op.method, op.path, response.status_code, content_type)
        raise problem_error(response.status_code, body, retry_after=_retry_after(response))

    def _answer(self, op: Operation, response: httpx.Response, model: type[A]) -> A:
        self._check(op, response)
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise UnexpectedResponseError(op.method, op.path, response.status_code,
                                          response.headers.get("content-type", ""))
        return model.model_validate(data)

    def _call(self, op: Operation, model: type[A], *, request: m.RequestModel | None = None,
              idempotency_key: str | None = None, **kwargs: Any) -> A:
        json = request.model_dump(mode="json", exclude_none=True) if request is not None else None
        return self._answer(op, self._send(op, json=json, idempotency_key=idempotency_key, **kwargs), model)

    def _download(self, op: Operation, out: IO[bytes], **kwargs: Any) -> int:
        """Stream a binary answer into ``out``; the number of bytes written."""
        response = self._send(op, stream=True, **kwargs)
        try:
            self._check(op, response)
            written = 0
            failure: str | None = None
            try:
                for chunk in response.iter_bytes(_CHUNK):
                    out.write(chunk)
                    written += len(chunk)
            except httpx.TransportError as exc:
                failure = type(exc).__name__
            if failure is not None:
                raise TransportError(op.method, op.path, f"{failure} after {written} bytes", 1)
            return written
        finally:
            response.close()

    # -- operations ---------------------------------------------------------------------------------------

    def health(self) -> m.Health:
        """``GET /healthz``: the server answers (no authentication)."""
        return self._call(ops.HEALTH, m.Health)

    def check_contact(self, contact: m.Contact) -> m.Verdict:
        """Ask the contact-policy firewall about a planned contact; nothing is recorded."""
        return self._call(ops.CHECK_CONTACT, m.Verdict, request=contact)

    def record_contact(self, contact: m.Contact, *, idempotency_key: str | None = None) -> m.ContactReceipt:
        """Record a contact; a refusal raises :class:`~tarcza_client.errors.ContactRefusedError`.

        Give your own ``idempotency_key`` (e.g. the dialer's call id) to make retries across
        restarts of your system safe too; a retry gets the first answer (``duplicate=True``).
        """
        return self._call(ops.RECORD_CONTACT, m.ContactReceipt, request=contact, idempotency_key=idempotency_key)

    def record_contacts(self, contacts: Sequence[m.Contact], *,
                        idempotency_key: str | None = None) -> list[m.BatchItem]:
        """Record up to 500 contacts in one call; one result each (a receipt or the problem that stopped it)."""
        batch = m.ContactBatch(contacts=list(contacts))
        return self._call(ops.RECORD_CONTACTS, m.BatchResults, request=batch, idempotency_key=idempotency_key).results

    def get_contact(self, event_id: str, *, view: Literal["masked", "full"] = "masked",
                    purpose: str | None = None) -> m.ContactView:
        """One contact; ``view="full"`` reveals the note as written (a logged access, with a purpose)."""
        return self._call(ops.GET_CONTACT, m.ContactView, path={"event_id": event_id},
                          query={"view": view, "purpose": purpose})

    def contact_history(self, subject: str, *, page_size: int = 50) -> Iterator[m.ContactSummary]:
        """The subject's contacts, newest first, following ``next_cursor`` page by page."""
        cursor: str | None = None
        while True:
            page = self._call(ops.CONTACT_HISTORY, m.ContactPage, path={"token": subject},
                              query={"cursor": cursor, "limit": page_size})
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def add_debt(self, debt: m.Debt, *, idempotency_key: str | None = None) -> m.DebtInfo:
        """Record a debt of a subject (idempotent by debt id); the answer has its limitation date."""
        return self._call(ops.ADD_DEBT, m.DebtInfo, request=debt, idempotency_key=idempotency_key)

    def get_debt(self, debt_id: str) -> m.DebtInfo:
        return self._call(ops.GET_DEBT, m.DebtInfo, path={"debt_id": debt_id})

    def set_debt_status(self, debt_id: str, change: m.DebtStatusChange) -> m.DebtInfo:
        return self._call(ops.SET_DEBT_STATUS, m.DebtInfo, path={"debt_id": debt_id}, request=change)

    def subject_debts(self, subject: str) -> list[m.DebtInfo]:
        return self._call(ops.SUBJECT_DEBTS, m.DebtList, path={"token": subject}).items

    def open_case(self, case: m.Case, *, idempotency_key: str | None = None) -> m.CaseInfo:
        return self._call(ops.OPEN_CASE, m.CaseInfo, request=case, idempotency_key=idempotency_key)

    def close_case(self, case_id: str) -> m.CaseInfo:
        return self._call(ops.CLOSE_CASE, m.CaseInfo, path={"case_id": case_id})

    def subject_cases(self, subject: str) -> list[m.CaseInfo]:
        return self._call(ops.SUBJECT_CASES, m.CaseList, path={"token": subject}).items

    def create_subject(self, subject: m.NewSubject, *, idempotency_key: str | None = None) -> str:
        """Seal a new subject's fields; its token (the same token again for a retry with the same key)."""
        return self._call(ops.CREATE_SUBJECT, m.SubjectCreated, request=subject,
                          idempotency_key=idempotency_key).token

    def masked_view(self, subject: str, fields: Sequence[str] | None = None, *,
                    purpose: str | None = None) -> m.SubjectFields:
        """The subject's fields as this client may see them without a reveal."""
        return self._call(ops.MASKED_VIEW, m.SubjectFields, path={"token": subject},
                          query={"fields": None if fields is None else ",".join(fields), "purpose": purpose})

    def reveal(self, subject: str, fields: Sequence[str], purpose: str, *,
               justification: str | None = None) -> m.SubjectFields:
        """Field values in clear, for a stated purpose; the server logs the access first."""
        request = m.RevealRequest(fields=list(fields), purpose=purpose, justification=justification)
        return self._call(ops.REVEAL, m.SubjectFields, path={"token": subject}, request=request)

    def search(self, field: str, value: str, purpose: str) -> list[str]:
        """Tokens of the subjects holding exactly ``value`` in ``field`` (blind index; the value stays in the body)."""
        request = m.SearchRequest(field=field, value=value, purpose=purpose)
        return self._call(ops.SEARCH, m.SearchResult, request=request).subjects

    def upload_recording(self, subject: str, data: bytes | IO[bytes], media_type: str, *, announced: bool,
                         duration_ms: int | None = None, idempotency_key: str | None = None) -> m.RecordingInfo:
        """Store a recording of the subject (streamed; encrypted by the server as it arrives).

        ``data`` is bytes or a binary file; a file is retried only if it is seekable.
        """
        if isinstance(data, bytes):
            payload = data

            def body() -> bytes | Iterator[bytes]:
                return payload
            replayable = True
        else:
            stream = data
            start = stream.tell() if stream.seekable() else None

            def body() -> bytes | Iterator[bytes]:
                if start is not None:
                    stream.seek(start)
                return iter(lambda: stream.read(_CHUNK), b"")
            replayable = start is not None
        return self._call(ops.UPLOAD_RECORDING, m.RecordingInfo, path={"token": subject}, body=body,
                          replayable=replayable, headers={"Content-Type": media_type},
                          query={"announced": announced, "duration_ms": duration_ms},
                          idempotency_key=idempotency_key)

    def download_recording(self, subject: str, recording_id: str, purpose: str, out: IO[bytes], *,
                           byte_range: tuple[int, int] | None = None) -> int:
        """Write the recording (or bytes ``start..end`` inclusive of it) into ``out``; the bytes written.

        Playing a recording is a logged access for ``purpose``.
        """
        headers = {"Range": f"bytes={byte_range[0]}-{byte_range[1]}"} if byte_range else None
        return self._download(ops.DOWNLOAD_RECORDING, out, path={"token": subject, "recording_id": recording_id},
                              query={"purpose": purpose}, headers=headers)

    def audit_events(self, *, subject: str | None = None, type: str | None = None,
                     actor: str | None = None, since: datetime | None = None, until: datetime | None = None,
                     from_index: int | None = None, to_index: int | None = None,
                     page_size: int = 100) -> Iterator[m.AuditEntry]:
        """Entries of the audit log, oldest first, following ``next_cursor`` page by page."""
        query: dict[str, str | int | bool | None] = {
            "subject": subject, "type": type, "actor": actor, "since": _iso(since), "until": _iso(until),
            "from_index": from_index, "to_index": to_index, "limit": page_size}
        while True:
            page = self._call(ops.AUDIT_EVENTS, m.AuditPage, query=query)
            yield from page.items
            if page.next_cursor is None:
                return
            query["cursor"] = page.next_cursor

    def audit_event(self, index: int) -> m.AuditEntry:
        return self._call(ops.AUDIT_EVENT, m.AuditEntry, path={"index": index})

    def issue_checkpoint(self) -> m.Checkpoint:
        """Have the server sign the current tree head now."""
        return self._call(ops.ISSUE_CHECKPOINT, m.Checkpoint)

    def latest_checkpoint(self) -> str:
        """The newest checkpoint as a C2SP signed note (text); keep it to check consistency later."""
        response = self._send(ops.LATEST_CHECKPOINT)
        self._check(ops.LATEST_CHECKPOINT, response)
        return response.text

    def inclusion_proof(self, index: int, size: int | None = None) -> m.InclusionProof:
        """An RFC 9162 proof that entry ``index`` is in the tree of ``size`` entries (default: the newest)."""
        return self._call(ops.INCLUSION_PROOF, m.InclusionProof, query={"index": index, "size": size})

    def create_gdpr_request(self, request: m.NewGdprRequest, *,
                            idempotency_key: str | None = None) -> m.GdprRequest:
        """Register a data subject request; the answer carries its deadline."""
        return self._call(ops.CREATE_GDPR_REQUEST, m.GdprRequest, request=request, idempotency_key=idempotency_key)

    def verify_gdpr_request(self, request_id: str, method: str, reference: str | None = None) -> m.GdprRequest:
        """Record how the requester's identity was verified (e.g. ``id_document``) and, with ``reference``, where the
        evidence is in the firm's files; needed before an export."""
        verification = m.GdprVerification.model_validate({"method": method, "reference": reference})
        return self._call(ops.VERIFY_GDPR_REQUEST, m.GdprRequest, path={"request_id": request_id},
                          request=verification)

    def gdpr_request(self, request_id: str) -> m.GdprRequest:
        return self._call(ops.GDPR_REQUEST, m.GdprRequest, path={"request_id": request_id})

    def gdpr_requests(self, *, view: Literal["open", "overdue", "due_soon", "closed", "all"] = "open",
                      subject: str | None = None, page_size: int = 100) -> Iterator[m.GdprRequest]:
        """Requests by deadline, following ``next_cursor`` page by page."""
        cursor: str | None = None
        while True:
            page = self._call(ops.GDPR_REQUESTS, m.GdprRequestPage,
                              query={"view": view, "subject": subject, "cursor": cursor, "limit": page_size})
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def export_gdpr_request(self, request_id: str, out: IO[bytes], *, recordings: bool = False,
                            idempotency_key: str | None = None) -> int:
        """Write the subject's archive (zip) for an access or portability request into ``out``; bytes written.

        The server closes the request when it produces the archive.
        """
        return self._download(ops.EXPORT_GDPR_REQUEST, out, path={"request_id": request_id},
                              query={"recordings": recordings}, idempotency_key=idempotency_key)


__all__ = ["ProblemError", "RetryPolicy", "TarczaClient", "TransportError"]
