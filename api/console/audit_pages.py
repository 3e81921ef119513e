"""The audit page: search the log, one entry with its inclusion proof, an export for an auditor,
and the verification of the whole stored log with its progress.

Proofs are checked on the server before they are shown as checked: the checkpoint's
signature against the log's own key (C2SP signed note), then the RFC 9162 inclusion proof
from the entry's leaf hash to that checkpoint's root. The page also shows every number
(leaf hash, proof hashes, root, tree size, the signed note), so an auditor can check the
same by hand or with any RFC 9162 implementation.

Verification runs in a background thread of the server (:mod:`api.console.state`); the
page polls ``/console/audit/verify/progress`` with a few lines of script, or reloads itself
every few seconds when script is off.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse

from api.console.state import current_verification, last_verification, start_verification
from api.console.web import (
    NO_STORE,
    PREFIX,
    ConsoleRoute,
    ConsoleUser,
    Form,
    FormErrors,
    PostedForm,
    User,
    parse_date,
    redirect,
    render,
)
from api.deps import RuntimeDep
from api.runtime import Runtime
from audit import merkle
from audit.checkpoint import open_checkpoint
from audit.errors import AuditError, ProofRangeError
from audit.events import CATALOGUE, SUBJECT_TOKEN_PATTERN
from audit.repository import EntryFilter
from core.errors import InvalidInputError, NotFoundError, PermissionDeniedError

router = APIRouter(route_class=ConsoleRoute)

PAGE: Final = 50
_TOKEN: Final = re.compile(SUBJECT_TOKEN_PATTERN)
_ACTOR: Final = re.compile(r"^[A-Za-z0-9_.:@\-]{1,128}$")


def _require(user: ConsoleUser, action: str) -> None:
    if not user.can(action):
        raise PermissionDeniedError(f"{action} refused", rule="role")


def _filters(source: Form | dict[str, str], errors: FormErrors) -> tuple[EntryFilter, dict[str, str]]:
    """An entry filter from the search (or export) form's fields; errors named per field."""
    values = {name: str(source.get(name, "")).strip()[:200] for name in
              ("subject", "actor", "type", "since", "until", "from_index", "to_index")}
    subject, actor, event_type = values["subject"] or None, values["actor"] or None, values["type"] or None
    if subject and not _TOKEN.fullmatch(subject):
        errors["subject"] = "subjects.token_format"
    if actor and not _ACTOR.fullmatch(actor):
        errors["actor"] = "audit.actor_format"
    if event_type and event_type not in CATALOGUE and not (
            event_type.endswith(".*") and any(t.startswith(event_type[:-1]) for t in CATALOGUE)):
        errors["type"] = "audit.type_unknown"
    since = until = None
    if values["since"]:
        day = parse_date(values["since"])
        since = None if day is None else datetime(day.year, day.month, day.day, tzinfo=UTC)
        if day is None:
            errors["since"] = "form.date_format"
    if values["until"]:
        day = parse_date(values["until"])
        until = None if day is None else datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
        if day is None:
            errors["until"] = "form.date_format"
    if since and until and until <= since:
        errors["until"] = "audit.until_before_since"
    start = end = None
    for name in ("from_index", "to_index"):
        if values[name] and not values[name].isdigit():
            errors[name] = "form.number_format"
    if values["from_index"].isdigit():
        start = int(values["from_index"])
    if values["to_index"].isdigit():
        end = int(values["to_index"]) + 1
    if start is not None and end is not None and end <= start:
        errors["to_index"] = "audit.to_before_from"
    return EntryFilter(subject=subject, event_type=event_type, actor=actor, since=since, until=until,
                       start=start, end=end), values


# -- search ---------------------------------------------------------------------------------------------


@router.get("/audit", response_class=HTMLResponse)
def search(request: Request, user: User, runtime: RuntimeDep) -> HTMLResponse:
    _require(user, "audit.read")
    errors = FormErrors()
    params = dict(request.query_params)
    flt, values = _filters(params, errors)
    searched = any(values.values())
    items: list[Any] = []
    next_cursor = None
    status = 200
    if errors:
        status = 422
    elif searched or "cursor" in params:
        try:
            page = runtime.audit.query(flt, cursor=params.get("cursor") or None, limit=PAGE)
        except InvalidInputError:
            errors["form"] = "audit.cursor_invalid"
            status = 422
        else:
            items, next_cursor = page.items, page.next_cursor
    query = urlencode({k: v for k, v in values.items() if v})
    return render(request, "audit.html", user=user, status=status, errors=errors, values=values, items=items,
                  searched=searched, next_cursor=next_cursor, query=query, types=sorted(CATALOGUE),
                  can_export=user.can("audit.export"), log_size=runtime.audit.size())


# -- one entry and its proof ------------------------------------------------------------------------------


def entry_context(runtime: Runtime, index: int) -> dict[str, Any]:
    """The entry, its inclusion proof against the newest checkpoint covering it, and what was checked."""
    entry = runtime.audit.get(index)
    context: dict[str, Any] = {"entry": entry, "event_json": json.dumps(entry.event, indent=2, ensure_ascii=False),
                               "leaf_hash": _b64(entry.leaf_hash), "proof": None}
    try:
        proof = runtime.audit.inclusion_proof(index)
    except ProofRangeError:
        return context
    context["proof"] = proof
    context["proof_hashes"] = [_b64(p) for p in proof.proof]
    context["root_hash"] = _b64(proof.root_hash)
    checks: dict[str, Any] = {"signature": None, "inclusion": None}
    if proof.checkpoint is not None:
        try:
            signed = open_checkpoint(proof.checkpoint, runtime.audit.verifier(), origin=runtime.audit.origin)
            checks["signature"] = signed.size == proof.tree_size and signed.root_hash == proof.root_hash
        except AuditError:
            checks["signature"] = False
    try:
        merkle.verify_inclusion(entry.leaf_hash, index, proof.tree_size, proof.proof, proof.root_hash)
        checks["inclusion"] = merkle.leaf_hash(_leaf_input(entry.event)) == entry.leaf_hash
    except AuditError:
        checks["inclusion"] = False
    context["checks"] = checks
    return context


def _leaf_input(event: dict[str, Any]) -> bytes:
    from audit.events import canonical_json

    return canonical_json(event)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@router.get("/audit/entries/{index}", response_class=HTMLResponse)
def entry(request: Request, index: int, user: User, runtime: RuntimeDep) -> HTMLResponse:
    _require(user, "audit.read")
    if not 0 <= index < 2**62:
        raise NotFoundError("no such entry")
    return render(request, "entry.html", user=user, can_checkpoint=user.can("audit.append"),
                  verifier_key=runtime.audit.verifier().to_string(), notice=request.query_params.get("notice"),
                  **entry_context(runtime, index))


@router.post("/audit/checkpoint")
def checkpoint(user: User, form: PostedForm, runtime: RuntimeDep) -> Response:
    """Sign the current tree head now, so that recent entries get a proof to a signed checkpoint."""
    _require(user, "audit.append")
    runtime.audit.issue_checkpoint()
    back = form.text("index")
    return redirect(f"{PREFIX}/audit/entries/{back}?notice=checkpoint" if back.isdigit() else f"{PREFIX}/audit")


# -- export for an auditor --------------------------------------------------------------------------------


def _export_page(request: Request, user: ConsoleUser, *, errors: FormErrors | None = None,
                 values: dict[str, str] | None = None, status: int = 200) -> HTMLResponse:
    return render(request, "audit_export.html", user=user, status=status, errors=errors or FormErrors(),
                  values=values or {}, types=sorted(CATALOGUE))


@router.get("/audit/export", response_class=HTMLResponse)
def export_form(request: Request, user: User) -> HTMLResponse:
    _require(user, "audit.export")
    return _export_page(request, user)


@router.post("/audit/export")
def export(request: Request, user: User, form: PostedForm, runtime: RuntimeDep) -> Response:
    """A range (or a subject, an actor, a time window) of the log as a ``.tar.gz`` that verifies offline."""
    _require(user, "audit.export")
    errors = FormErrors()
    flt, values = _filters(form, errors)
    if not errors and not any(values.values()):
        errors["from_index"] = "audit.export_needs_filter"
    if errors:
        return _export_page(request, user, errors=errors, values=values, status=422)
    from audit.export import export_archive

    try:
        buffer, name = export_archive(runtime.audit, flt)
    except (InvalidInputError, NotFoundError, AuditError) as exc:
        errors["form"] = "audit.export_failed"
        return _export_page(request, user, errors=errors, values={**values, "detail": exc.detail}, status=422)
    return StreamingResponse(buffer, media_type="application/gzip",
                             headers={**NO_STORE, "Content-Disposition": f'attachment; filename="{name}"'})


# -- verification of the stored log -----------------------------------------------------------------------


@router.get("/audit/verify", response_class=HTMLResponse)
def verify_page(request: Request, user: User, runtime: RuntimeDep) -> HTMLResponse:
    _require(user, "audit.read")
    current = current_verification(runtime)
    return render(request, "verify.html", user=user, current=current, last=last_verification(runtime),
                  log_size=runtime.audit.size())


@router.post("/audit/verify")
def verify(user: User, form: PostedForm, runtime: RuntimeDep) -> Response:  # noqa: ARG001
    _require(user, "audit.read")
    start_verification(runtime, user.principal.actor)
    return redirect(f"{PREFIX}/audit/verify")


@router.get("/audit/verify/progress")
def verify_progress(user: User, runtime: RuntimeDep) -> JSONResponse:
    _require(user, "audit.read")
    current = current_verification(runtime)
    body = {"running": False, "percent": 0} if current is None else current.to_json()
    return JSONResponse(body, headers=NO_STORE)
