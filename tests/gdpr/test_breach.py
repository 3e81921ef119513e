"""Tests of gdpr.breach: who a compromised principal exposed, read from a real audit log, and the Art. 33 clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from audit.checkpoint import Signer
from audit.events import (
    Actor,
    ActorKind,
    ContactPayload,
    DebtPayload,
    GdprPayload,
    Payload,
    RecordingAccessPayload,
    VaultAccessPayload,
    VaultSearchPayload,
    build_event,
)
from audit.service import AuditLog
from core import migrate
from core.db import make_engine
from core.errors import InvalidInputError
from gdpr.breach import BREACH_REPORT_FORMAT, BreachReport, breach_impact

THIEF = Actor(id="collector-17", kind=ActorKind.USER)
OTHER = Actor(id="cl_dialer", kind=ActorKind.CLIENT)
SINCE = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
UNTIL = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
AWARE = datetime(2026, 11, 21, 9, 30, tzinfo=UTC)
NOW = AWARE + timedelta(hours=5)
A, B, C, D = "sub_EXPOSED0000A", "sub_EXPOSED0000B", "sub_EXPOSED0000C", "sub_OUTSIDE0000D"


@pytest.fixture
def log(database_url: str) -> Iterator[AuditLog]:
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    audit = AuditLog(engine, Signer.generate("tarcza/test-breach"), checkpoint_every_entries=10_000)
    yield audit
    audit.close()
    engine.dispose()


def _at(minutes: float) -> datetime:
    return SINCE + timedelta(minutes=minutes)


def _add(log: AuditLog, event_type: str, payload: Payload, *, at: datetime, subject: str | None = None,
         actor: Actor = THIEF) -> None:
    log.append(build_event(event_type, actor=actor, time=at, payload=payload, subject=subject))


def _access(fields: list[str], *, view: str = "full", decision: str = "allow",
            action: str | None = None) -> VaultAccessPayload:
    return VaultAccessPayload.model_validate({
        "fields": fields, "purpose": "debt_collection", "decision": decision, "view": view,
        "action": action or ("reveal" if view == "full" else "read_masked"),
        "reason": None if decision == "allow" else "assignment"})


def _report(log: AuditLog, actor: str = THIEF.id, *, now: datetime = NOW, page_size: int = 1000) -> BreachReport:
    return breach_impact(log, actor, SINCE, UNTIL, aware_at=AWARE, now=now, page_size=page_size)


class TestBreachImpact:
    def test_reports_exactly_the_subjects_revealed_in_the_window(self, log: AuditLog) -> None:
        """Three subjects revealed inside the window are reported; one revealed before it and one at its end are not."""
        _add(log, "vault.access", _access(["phone"]), at=SINCE - timedelta(seconds=1), subject=D)
        for minutes, subject in ((0, A), (30, B), (60, C)):
            _add(log, "vault.access", _access(["phone"]), at=_at(minutes), subject=subject)
        _add(log, "vault.access", _access(["phone"]), at=UNTIL, subject=D)
        report = _report(log)
        assert [s.subject for s in report.subjects] == [A, B, C]
        assert report.totals.subjects == 3
        assert report.totals.accesses_full == 3
        assert report.subject(A).first_at == SINCE

    def test_window_given_in_local_time_is_the_same_window(self, log: AuditLog) -> None:
        """A window stated in Polish time (UTC+1 in November) selects the same entries as in UTC."""
        warsaw = ZoneInfo("Europe/Warsaw")
        _add(log, "vault.access", _access(["phone"]), at=SINCE - timedelta(minutes=1), subject=D)
        _add(log, "vault.access", _access(["phone"]), at=SINCE, subject=A)
        local = breach_impact(log, THIEF.id, SINCE.astimezone(warsaw), UNTIL.astimezone(warsaw),
                              aware_at=AWARE.astimezone(warsaw), now=NOW.astimezone(warsaw))
        assert [s.subject for s in local.subjects] == [A]
        assert local == _report(log)

    def test_masked_and_full_views_are_told_apart(self, log: AuditLog) -> None:
        """A full reveal and a masked read of the same field are listed as two exposures of their own."""
        _add(log, "vault.access", _access(["phone"]), at=_at(1), subject=A)
        _add(log, "vault.access", _access(["phone", "pesel"], view="masked"), at=_at(2), subject=A)
        exposure = _report(log).subject(A)
        assert [(f.field, f.view, f.count) for f in exposure.fields] == [
            ("pesel", "masked", 1), ("phone", "full", 1), ("phone", "masked", 1)]
        assert exposure.accesses == 2
        assert not exposure.high_risk  # a masked PESEL is not an identifier revealed

    def test_field_counts_and_first_and_last_times(self, log: AuditLog) -> None:
        """Repeated reveals of a field add up, with the time of the first and of the last."""
        for minutes in (5, 50, 500):
            _add(log, "vault.access", _access(["address"]), at=_at(minutes), subject=A)
        [address] = _report(log).subject(A).fields
        assert (address.count, address.first_at, address.last_at) == (3, _at(5), _at(500))

    def test_other_actors_entries_are_ignored(self, log: AuditLog) -> None:
        """What another principal revealed, searched or exported is not the compromised principal's exposure."""
        _add(log, "vault.access", _access(["pesel"]), at=_at(1), subject=B, actor=OTHER)
        _add(log, "vault.search", VaultSearchPayload(field="phone", matches=1, purpose="debt_collection",
                                                     subjects=[C]), at=_at(2), actor=OTHER)
        _add(log, "gdpr.export_created", GdprPayload(request_id="req_0001", status="exported"), at=_at(3),
             subject=C, actor=OTHER)
        _add(log, "vault.access", _access(["phone"]), at=_at(4), subject=A)
        report = _report(log)
        assert [s.subject for s in report.subjects] == [A]
        assert report.totals.entries_scanned == 1
        assert report.actor_kinds == ("user",)
        assert [s.subject for s in _report(log, OTHER.id).subjects] == [B, C]

    def test_denied_accesses_are_not_counted_as_exposure(self, log: AuditLog) -> None:
        """A refused reveal exposed nothing: the subject is absent and the refusal is only counted."""
        _add(log, "vault.access", _access(["pesel"], decision="deny"), at=_at(1), subject=A)
        _add(log, "vault.access", _access(["phone"], view="masked", decision="deny"), at=_at(2), subject=B)
        report = _report(log)
        assert report.subjects == ()
        assert report.totals.denied == 2
        assert report.totals.accesses_full == report.totals.accesses_masked == 0

    def test_searches_recordings_exports_and_notes_are_counted(self, log: AuditLog) -> None:
        """Searches that returned a subject, recordings played, exports and notes opened are each reported."""
        _add(log, "vault.search", VaultSearchPayload(field="phone", matches=2, purpose="debt_collection",
                                                     subjects=[A, B]), at=_at(1))
        for _ in range(2):
            _add(log, "recording.played", RecordingAccessPayload(recording_id="rec_CALL0001", purpose="audit"),
                 at=_at(2), subject=A)
        _add(log, "gdpr.export_created", GdprPayload(request_id="req_0002", status="exported"), at=_at(3), subject=B)
        _add(log, "vault.access", _access(["note"], view="masked"), at=_at(4), subject=A)
        _add(log, "vault.access", _access(["note", "gps"]), at=_at(5), subject=A)
        report = _report(log)
        a, b = report.subject(A), report.subject(B)
        assert (a.searches, a.searched_fields, a.recordings_played, a.recording_plays) == (1, ("phone",),
                                                                                          ("rec_CALL0001",), 2)
        assert (a.notes_opened, a.exports) == (2, 0)
        assert (b.searches, b.exports, b.accesses) == (1, 1, 0)
        totals = report.totals
        assert (totals.searches, totals.recording_plays, totals.exports, totals.notes_opened) == (1, 2, 1, 2)

    def test_identifiers_revealed_in_full_mark_high_risk(self, log: AuditLog) -> None:
        """A PESEL or IBAN revealed in full, or an export, marks the subject as likely high risk (Art. 34)."""
        _add(log, "vault.access", _access(["first_name", "pesel"]), at=_at(1), subject=A)
        _add(log, "vault.access", _access(["iban"], view="masked"), at=_at(2), subject=B)
        _add(log, "vault.access", _access(["iban", "passport"]), at=_at(3), subject=C)
        _add(log, "gdpr.export_created", GdprPayload(request_id="req_0003", status="exported"), at=_at(4), subject=D)
        report = _report(log)
        assert report.high_risk_subjects == (A, C, D)
        assert report.subject(A).high_risk_reasons == ("full:pesel",)
        assert report.subject(C).high_risk_reasons == ("full:iban", "full:passport")
        assert report.subject(D).high_risk_reasons == ("export",)
        assert report.totals.high_risk_subjects == 3

    def test_name_address_and_a_debt_together_are_high_risk(self, log: AuditLog) -> None:
        """GDPR Art. 34 (docs/legal/breach-register.md): a subject whose name and address were obtained and whom the
        log shows owing a debt is at high risk; the same fields of someone with no debt, or a name alone, are not."""
        _add(log, "debt.recorded", DebtPayload(debt_id="D-1", kind="business", status="open"), at=_at(-600),
             subject=A, actor=OTHER)
        _add(log, "debt.recorded", DebtPayload(debt_id="D-2", kind="business", status="open"), at=_at(-600),
             subject=C, actor=OTHER)
        _add(log, "vault.access", _access(["last_name", "address"], view="masked"), at=_at(1), subject=A)
        _add(log, "vault.access", _access(["first_name", "address"]), at=_at(2), subject=B)
        _add(log, "vault.access", _access(["last_name"]), at=_at(3), subject=C)
        report = _report(log)
        assert report.subject(A).high_risk_reasons == ("combination:name+address+debt",)
        assert not report.subject(B).high_risk
        assert not report.subject(C).high_risk
        assert report.high_risk_subjects == (A,)

    def test_a_bulk_reveal_is_recognised(self, log: AuditLog) -> None:
        """Reveal entries appended as one group are one bulk reveal; a later single reveal is not part of it."""
        events = [build_event("vault.access", actor=THIEF, time=_at(10), subject=subject,
                              payload=_access(["pesel"], decision=decision))
                  for subject, decision in ((A, "allow"), (B, "deny"), (C, "allow"))]
        log.append_many([(event, None) for event in events])
        _add(log, "vault.access", _access(["pesel"]), at=_at(20), subject=D)
        report = _report(log)
        assert (report.totals.bulk_reveals, report.totals.bulk_revealed_entries) == (1, 2)
        assert [(s.subject, s.bulk_reveals) for s in report.subjects] == [(A, 1), (C, 1), (D, 0)]

    def test_reveals_apart_in_time_are_not_a_bulk_reveal(self, log: AuditLog) -> None:
        """Two single reveals at consecutive indexes but minutes apart are two reveals, not a batch."""
        _add(log, "vault.access", _access(["phone"]), at=_at(1), subject=A)
        _add(log, "vault.access", _access(["phone"]), at=_at(4), subject=B)
        assert _report(log).totals.bulk_reveals == 0

    def test_reading_in_small_pages_gives_the_same_report(self, log: AuditLog) -> None:
        """The log is read page by page; the page size does not change the report."""
        for minutes, subject in enumerate((A, B, C, A, B)):
            _add(log, "vault.access", _access(["email"]), at=_at(minutes * 10), subject=subject)
            _add(log, "contact.attempted", ContactPayload(channel="sms", direction="outbound", agent_id=THIEF.id),
                 at=_at(minutes * 10 + 1), subject=subject)
        assert _report(log, page_size=2) == _report(log)
        assert _report(log, page_size=3).totals.entries_scanned == 10

    def test_json_document_holds_tokens_counts_and_times(self, log: AuditLog) -> None:
        """The document has its format, the window, the clock, totals and subjects in token order."""
        _add(log, "vault.access", _access(["pesel"]), at=_at(1), subject=B)
        _add(log, "vault.access", _access(["phone"], view="masked"), at=_at(2), subject=A)
        document = _report(log).to_json()
        assert document["format"] == BREACH_REPORT_FORMAT
        assert document["actor"] == {"id": THIEF.id, "kinds": ["user"]}
        assert document["window"] == {"since": "2026-11-20T08:00:00.000000Z", "until": "2026-11-21T08:00:00.000000Z"}
        assert [s["subject"] for s in document["subjects"]] == [A, B]
        assert document["high_risk_subjects"] == [B]
        assert document["subjects"][1]["fields"] == [{"field": "pesel", "view": "full", "count": 1,
                                                      "first_at": "2026-11-20T08:01:00.000000Z",
                                                      "last_at": "2026-11-20T08:01:00.000000Z"}]


class TestNotificationClock:
    def test_notify_by_is_72_hours_after_awareness(self, log: AuditLog) -> None:
        """The supervisory authority must be told 72 hours after awareness; five hours in, 67 are left."""
        report = _report(log)
        assert report.notify_by == AWARE + timedelta(hours=72)
        assert report.hours_left == pytest.approx(67.0)
        assert not report.overdue
        assert report.to_json()["notification"]["notify_by"] == "2026-11-24T09:30:00.000000Z"

    def test_overdue_once_past_notify_by(self, log: AuditLog) -> None:
        """One hour after the deadline the report is overdue with minus one hour left; at the deadline it is not."""
        late = _report(log, now=AWARE + timedelta(hours=73))
        assert late.overdue
        assert late.hours_left == pytest.approx(-1.0)
        assert not _report(log, now=AWARE + timedelta(hours=72)).overdue

    def test_naive_times_and_an_empty_window_are_refused(self, log: AuditLog) -> None:
        """Times must be timezone-aware, and the window must not be empty."""
        naive = datetime(2026, 11, 21, 9, 30)  # noqa: DTZ001 - naive on purpose
        with pytest.raises(InvalidInputError, match="aware_at"):
            breach_impact(log, THIEF.id, SINCE, UNTIL, aware_at=naive, now=NOW)
        with pytest.raises(InvalidInputError, match="empty"):
            breach_impact(log, THIEF.id, UNTIL, SINCE, aware_at=AWARE, now=NOW)
