"""Every HTTP operation this client calls, in one table.

The client calls the server only through these :class:`Operation` values, and
``tests/client/test_openapi_contract.py`` checks each against the server's OpenAPI document:
the method and path exist, the success status is documented, the query parameters are known,
the request model's fields and required fields are the request schema's, and the answer
model's fields are in the response schema where the server declares one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from tarcza_client import models as m

Media = Literal["json", "text", "binary"]


@dataclass(frozen=True)
class Operation:
    """One (method, path) of the API as this client uses it.

    ``creates``: sends an ``Idempotency-Key`` (generated when the caller gives none), so it is
    retried on any network failure, 429 and 503. ``idempotent``: repeating it has the same
    effect as doing it once (reads, closing a case), retried alike. Any other operation (a
    reveal or a search, each of which the server logs as an access) is retried only when the
    server surely did not see it: a refused connection, 429, 503.
    """

    name: str
    method: Literal["GET", "POST", "PUT", "DELETE"]
    path: str
    status: int = 200
    request: type[m.RequestModel] | None = None
    answer: type[m.AnswerModel] | None = None
    query: tuple[str, ...] = ()
    creates: bool = False
    idempotent: bool = False
    auth: bool = True
    body: Literal["json", "form", "binary", "none"] = "none"
    media: Media = "json"
    omitted: tuple[str, ...] = ()  # request-schema fields this client sends elsewhere (credentials: a header)

    @property
    def retry_any_failure(self) -> bool:
        return self.method in ("GET", "PUT", "DELETE") or self.creates or self.idempotent


TOKEN: Final = Operation("token", "POST", "/v1/oauth/token", request=m.TokenRequest, answer=m.AccessToken,
                         auth=False, body="form", idempotent=True, omitted=("client_id", "client_secret"))
REVOKE_TOKEN: Final = Operation("revoke_token", "POST", "/v1/auth/logout", status=204, idempotent=True,
                                media="binary")
HEALTH: Final = Operation("health", "GET", "/healthz", answer=m.Health, auth=False)

CHECK_CONTACT: Final = Operation("check_contact", "POST", "/v1/contacts/check", request=m.Contact, answer=m.Verdict,
                                 body="json", idempotent=True)
RECORD_CONTACT: Final = Operation("record_contact", "POST", "/v1/contacts", status=201, request=m.Contact,
                                  answer=m.ContactReceipt, body="json", creates=True)
RECORD_CONTACTS: Final = Operation("record_contacts", "POST", "/v1/contacts/batch", request=m.ContactBatch,
                                   answer=m.BatchResults, body="json", creates=True)
GET_CONTACT: Final = Operation("get_contact", "GET", "/v1/contacts/{event_id}", answer=m.ContactView,
                               query=("view", "purpose"))
CONTACT_HISTORY: Final = Operation("contact_history", "GET", "/v1/subjects/{token}/contacts", answer=m.ContactPage,
                                   query=("cursor", "limit"))

ADD_DEBT: Final = Operation("add_debt", "POST", "/v1/debts", status=201, request=m.Debt, answer=m.DebtInfo,
                            body="json", creates=True)
GET_DEBT: Final = Operation("get_debt", "GET", "/v1/debts/{debt_id}", answer=m.DebtInfo)
SET_DEBT_STATUS: Final = Operation("set_debt_status", "POST", "/v1/debts/{debt_id}/status",
                                   request=m.DebtStatusChange, answer=m.DebtInfo, body="json", idempotent=True)
SUBJECT_DEBTS: Final = Operation("subject_debts", "GET", "/v1/subjects/{token}/debts", answer=m.DebtList)
OPEN_CASE: Final = Operation("open_case", "POST", "/v1/cases", status=201, request=m.Case, answer=m.CaseInfo,
                             body="json", creates=True)
CLOSE_CASE: Final = Operation("close_case", "POST", "/v1/cases/{case_id}/close", answer=m.CaseInfo, idempotent=True)
SUBJECT_CASES: Final = Operation("subject_cases", "GET", "/v1/subjects/{token}/cases", answer=m.CaseList)

CREATE_SUBJECT: Final = Operation("create_subject", "POST", "/v1/subjects", status=201, request=m.NewSubject,
                                  answer=m.SubjectCreated, body="json", creates=True)
MASKED_VIEW: Final = Operation("masked_view", "GET", "/v1/subjects/{token}", answer=m.SubjectFields,
                               query=("fields", "purpose"))
REVEAL: Final = Operation("reveal", "POST", "/v1/subjects/{token}/reveal", request=m.RevealRequest,
                          answer=m.SubjectFields, body="json")
SEARCH: Final = Operation("search", "POST", "/v1/subjects/search", request=m.SearchRequest, answer=m.SearchResult,
                          body="json")
UPLOAD_RECORDING: Final = Operation("upload_recording", "POST", "/v1/subjects/{token}/recordings", status=201,
                                    answer=m.RecordingInfo, query=("announced", "duration_ms"), body="binary",
                                    creates=True)
DOWNLOAD_RECORDING: Final = Operation("download_recording", "GET", "/v1/subjects/{token}/recordings/{recording_id}",
                                      query=("purpose",), media="binary")

AUDIT_EVENTS: Final = Operation("audit_events", "GET", "/v1/audit/events", answer=m.AuditPage, query=(
    "subject", "type", "actor", "since", "until", "from_index", "to_index", "cursor", "limit"))
AUDIT_EVENT: Final = Operation("audit_event", "GET", "/v1/audit/events/{index}", answer=m.AuditEntry)
ISSUE_CHECKPOINT: Final = Operation("issue_checkpoint", "POST", "/v1/audit/checkpoints", status=201,
                                    answer=m.Checkpoint, idempotent=True)
LATEST_CHECKPOINT: Final = Operation("latest_checkpoint", "GET", "/v1/audit/checkpoint", media="text")
INCLUSION_PROOF: Final = Operation("inclusion_proof", "GET", "/v1/audit/proofs/inclusion", answer=m.InclusionProof,
                                   query=("index", "size"))

CREATE_GDPR_REQUEST: Final = Operation("create_gdpr_request", "POST", "/v1/gdpr/requests", status=201,
                                       request=m.NewGdprRequest, answer=m.GdprRequest, body="json", creates=True)
VERIFY_GDPR_REQUEST: Final = Operation("verify_gdpr_request", "POST", "/v1/gdpr/requests/{request_id}/verify",
                                       request=m.GdprVerification, answer=m.GdprRequest, body="json")
GDPR_REQUEST: Final = Operation("gdpr_request", "GET", "/v1/gdpr/requests/{request_id}", answer=m.GdprRequest)
GDPR_REQUESTS: Final = Operation("gdpr_requests", "GET", "/v1/gdpr/requests", answer=m.GdprRequestPage,
                                 query=("view", "subject", "cursor", "limit"))
EXPORT_GDPR_REQUEST: Final = Operation("export_gdpr_request", "POST", "/v1/gdpr/requests/{request_id}/export",
                                       query=("recordings",), media="binary", creates=True)

OPERATIONS: Final[tuple[Operation, ...]] = tuple(
    value for value in list(globals().values()) if isinstance(value, Operation))
