"""A typed Python client of the Tarcza HTTP API for integrating systems.

>>> from tarcza_client import TarczaClient, Contact
>>> with TarczaClient(url, client_id, client_secret) as tarcza:
...     receipt = tarcza.record_contact(Contact(...))

See ``examples/record_contact.py``. The models mirror the server's OpenAPI document (a test
keeps them in step); errors are :class:`ProblemError` subclasses or :class:`TransportError`.
"""

from __future__ import annotations

from tarcza_client.client import RetryPolicy, TarczaClient
from tarcza_client.errors import (
    BadRequestError,
    ConflictError,
    ContactRefusedError,
    ForbiddenError,
    GoneError,
    NotFoundError,
    ProblemError,
    RateLimitedError,
    ServerError,
    TarczaClientError,
    TransportError,
    UnauthorizedError,
    UnexpectedResponseError,
    UnprocessableError,
)
from tarcza_client.models import (
    AuditEntry,
    BatchItem,
    Case,
    CaseInfo,
    Checkpoint,
    Contact,
    ContactReceipt,
    ContactSummary,
    ContactView,
    Debt,
    DebtInfo,
    DebtStatusChange,
    GdprRequest,
    Gps,
    InclusionProof,
    NewGdprRequest,
    NewSubject,
    RecordingInfo,
    Signature,
    SubjectFields,
    Verdict,
)

__all__ = [
    "AuditEntry", "BadRequestError", "BatchItem", "Case", "CaseInfo", "Checkpoint", "ConflictError", "Contact",
    "ContactReceipt", "ContactRefusedError", "ContactSummary", "ContactView", "Debt", "DebtInfo", "DebtStatusChange",
    "ForbiddenError", "GdprRequest", "GoneError", "Gps", "InclusionProof", "NewGdprRequest", "NewSubject",
    "NotFoundError", "ProblemError", "RateLimitedError", "RecordingInfo", "RetryPolicy", "ServerError", "Signature",
    "SubjectFields", "TarczaClient", "TarczaClientError", "TransportError", "UnauthorizedError",
    "UnexpectedResponseError", "UnprocessableError", "Verdict",
]
