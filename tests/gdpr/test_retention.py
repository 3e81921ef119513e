"""Tests of gdpr.retention: what keeps a subject's data, the retention schedules, and the actions due."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from contacts.limitation import ClaimKind, time_barred_on
from contacts.models import DEBT_STATUSES as CONTACTS_DEBT_STATUSES
from core.errors import InvalidInputError
from gdpr.retention import (
    DATA_CATEGORIES,
    DEBT_STATUSES,
    DEFAULT_RETENTION_PATH,
    DebtFacts,
    DueAction,
    HoldFacts,
    Period,
    RecordingFacts,
    RetentionPolicy,
    RetentionPolicyError,
    SubjectFacts,
    accounting_erasable_from,
    accounting_retention_ends_on,
    accounting_retention_starts_on,
    closing_date,
    due_actions,
    erasure_assessment,
    erasure_possible_from,
    event_date,
    legal_claim_until,
    load_retention,
    retention_from_yaml,
)
from vault.fields import DataCategory

G, P, B, J = ClaimKind.GENERAL, ClaimKind.PERIODIC, ClaimKind.BUSINESS, ClaimKind.JUDGMENT
TODAY = date(2026, 11, 23)
SHRED_SCHEDULES = ("identification", "contact", "financial", "notes", "location")
PACKAGED_TEXT = DEFAULT_RETENTION_PATH.read_text(encoding="utf-8")


def _open(debt_id: str = "debt-1", kind: ClaimKind = G, due: date = date(2025, 6, 30),
          judgment: date | None = None, *, consumer: bool = True) -> DebtFacts:
    return DebtFacts(id=debt_id, kind=kind, consumer=consumer, due_date=due, judgment_date=judgment)


def _closed(debt_id: str = "debt-1", on: date = date(2019, 6, 10), status: str = "settled",
            kind: ClaimKind = G, due: date = date(2018, 9, 1)) -> DebtFacts:
    return DebtFacts(id=debt_id, kind=kind, consumer=True, due_date=due, status=status, settled_on=on)


def _document() -> dict[str, Any]:
    document = yaml.safe_load(PACKAGED_TEXT)
    assert isinstance(document, dict)
    return copy.deepcopy(document)


def _changed(change: Callable[[dict[str, Any]], None]) -> RetentionPolicy:
    document = _document()
    change(document)
    return retention_from_yaml(yaml.safe_dump(document), source="test.yaml")


def _refused(change: Callable[[dict[str, Any]], None]) -> RetentionPolicyError:
    with pytest.raises(RetentionPolicyError) as caught:
        _changed(change)
    return caught.value


@pytest.fixture(scope="module")
def policy() -> RetentionPolicy:
    return load_retention()


class TestAccountingRetention:
    @pytest.mark.parametrize(
        ("closed", "starts", "ends", "erasable"),
        [
            (date(2019, 6, 10), date(2020, 1, 1), date(2024, 12, 31), date(2025, 1, 1)),
            (date(2019, 1, 1), date(2020, 1, 1), date(2024, 12, 31), date(2025, 1, 1)),
            (date(2019, 12, 31), date(2020, 1, 1), date(2024, 12, 31), date(2025, 1, 1)),
            (date(2020, 1, 1), date(2021, 1, 1), date(2025, 12, 31), date(2026, 1, 1)),
            (date(2032, 1, 1), date(2033, 1, 1), date(2037, 12, 31), date(2038, 1, 1)),
        ],
    )
    def test_five_years_from_the_next_year(self, closed: date, starts: date, ends: date, erasable: date) -> None:
        """Evidence is kept five years from 1 January after the closing year; erasable the day after."""
        assert accounting_retention_starts_on(closed) == starts
        assert accounting_retention_ends_on(closed) == ends
        assert accounting_erasable_from(closed) == erasable

    def test_past_the_calendar(self) -> None:
        """A retention ending past the year 9999 is refused."""
        with pytest.raises(InvalidInputError, match="after the year"):
            accounting_erasable_from(date(9995, 1, 1))


class TestDebtFacts:
    def test_statuses_match_the_ledger(self) -> None:
        """The statuses are those of the contacts ledger."""
        assert DEBT_STATUSES == CONTACTS_DEBT_STATUSES

    @pytest.mark.parametrize(
        ("status", "settled_on", "message"),
        [
            ("paid", date(2020, 1, 1), "status must be one of"),
            ("open", date(2020, 1, 1), "an open debt has no settled_on"),
            ("settled", None, "needs its settled_on"),
            ("written_off", None, "needs its settled_on"),
        ],
    )
    def test_status_and_settled_on_agree(self, status: str, settled_on: date | None, message: str) -> None:
        """A status must be known, and settled_on is given exactly for a closed debt."""
        with pytest.raises(InvalidInputError, match=message):
            DebtFacts(id="d", kind=G, consumer=True, due_date=date(2019, 1, 1), status=status, settled_on=settled_on)

    def test_judgment_pairs_are_checked_early(self) -> None:
        """A judgment kind without its judgment date is refused when the facts are built."""
        with pytest.raises(InvalidInputError, match="judgment became final"):
            DebtFacts(id="d", kind=J, consumer=True, due_date=date(2019, 1, 1))


class TestHoldFacts:
    def test_end_before_start(self) -> None:
        """A hold ending before it starts is refused."""
        with pytest.raises(InvalidInputError, match="before starts_on"):
            HoldFacts(id="h", reason="dispute", starts_on=date(2026, 5, 1), ends_on=date(2026, 4, 30))

    def test_binds_through_its_last_day(self) -> None:
        """A hold binds before its start, through its last day, and not after; without an end, always."""
        hold = HoldFacts(id="h", reason="dispute", starts_on=date(2026, 5, 1), ends_on=date(2026, 6, 30))
        assert hold.binds_on(date(2026, 4, 1))
        assert hold.binds_on(date(2026, 6, 30))
        assert not hold.binds_on(date(2026, 7, 1))
        assert HoldFacts(id="h", reason="dispute", starts_on=date(2026, 5, 1)).binds_on(date(2099, 1, 1))


class TestClosingDate:
    def test_closed_debts_close_on_settled_on(self) -> None:
        """A settled or written-off debt closes on its settled_on date, even after limitation."""
        assert closing_date(_closed(on=date(2019, 6, 10))) == date(2019, 6, 10)
        late = _closed(on=date(2026, 3, 1), status="written_off", kind=P, due=date(2021, 6, 10))
        assert closing_date(late) == date(2026, 3, 1)

    def test_open_debts_close_when_time_barred(self) -> None:
        """An open debt closes on the first day it is time-barred."""
        assert closing_date(_open()) == date(2032, 1, 1)


class TestLegalClaimUntil:
    @pytest.mark.parametrize(
        ("kind", "due", "judgment", "until"),
        [
            (G, date(2025, 6, 30), None, date(2031, 12, 31)),  # six years, year end
            (P, date(2021, 6, 10), None, date(2024, 12, 31)),  # three years, year end
            (B, date(2022, 1, 1), None, date(2025, 12, 31)),
            (J, date(2019, 1, 10), date(2020, 5, 4), date(2026, 12, 31)),  # from the judgment
            (G, date(2012, 5, 10), None, date(2022, 5, 10)),  # transition: the old ten years end first
        ],
    )
    def test_open_claims_run_to_the_limitation_end(
        self, kind: ClaimKind, due: date, judgment: date | None, until: date
    ) -> None:
        """An open debt's data is needed through the last day of its limitation period."""
        assert legal_claim_until(_open(kind=kind, due=due, judgment=judgment)) == until

    def test_closed_debts_have_no_claim(self) -> None:
        """A settled or written-off debt keeps no claim horizon."""
        assert legal_claim_until(_closed()) is None
        assert legal_claim_until(_closed(status="written_off")) is None


DUES = st.dates(min_value=date(1990, 1, 1), max_value=date(2100, 12, 31))
SIMPLE_KINDS = st.sampled_from([G, P, B])


@st.composite
def debts(draw: st.DrawFn, debt_id: str = "debt") -> DebtFacts:
    kind, due = draw(SIMPLE_KINDS), draw(DUES)
    status = draw(st.sampled_from(DEBT_STATUSES))
    if status == "open":
        return DebtFacts(id=debt_id, kind=kind, consumer=draw(st.booleans()), due_date=due)
    settled = draw(st.dates(min_value=due, max_value=date(2110, 12, 31)))
    return DebtFacts(id=debt_id, kind=kind, consumer=draw(st.booleans()), due_date=due, status=status,
                     settled_on=settled)


class TestErasurePossibleFrom:
    @pytest.mark.parametrize(
        ("debt", "possible"),
        [
            (_open(), date(2038, 1, 1)),  # barred from 2032-01-01, accounting 2033-2037
            (_closed(on=date(2019, 6, 10)), date(2025, 1, 1)),
            (_open(kind=J, due=date(2019, 1, 10), judgment=date(2020, 5, 4)), date(2033, 1, 1)),
            (_open(kind=P, due=date(2021, 6, 10)), date(2031, 1, 1)),  # barred from 2025-01-01
            (_open(due=date(2012, 5, 10)), date(2028, 1, 1)),  # barred from 2022-05-11
            (_closed(on=date(2026, 3, 1), status="written_off", kind=P, due=date(2021, 6, 10)), date(2032, 1, 1)),
        ],
    )
    def test_worked_examples(self, debt: DebtFacts, possible: date) -> None:
        """The claim, then five years of accounting retention from the year after closing."""
        assert erasure_possible_from(debt) == possible

    @given(debt=debts())
    def test_a_first_of_january_after_every_duty(self, debt: DebtFacts) -> None:
        """The date is a 1 January, after the claim and after the accounting duty of the closing date."""
        possible = erasure_possible_from(debt)
        assert (possible.month, possible.day) == (1, 1)
        assert possible > accounting_retention_ends_on(closing_date(debt))
        claim = legal_claim_until(debt)
        if claim is not None:
            assert possible > time_barred_on(debt.kind, debt.due_date)
            assert possible > claim


class TestErasureAssessment:
    def test_open_debt_is_refused_until_the_date(self) -> None:
        """An open, not time-barred debt refuses erasure until its claim and accounting duty end."""
        assessment = erasure_assessment([_open()], [], TODAY)
        assert not assessment.allowed
        assert assessment.possible_from == date(2038, 1, 1)
        assert [(r.rule, r.ref, r.until) for r in assessment.reasons] == [
            ("legal_claim", "debt-1", date(2031, 12, 31)),
            ("accounting_retention", "debt-1", date(2037, 12, 31)),
        ]
        assert "time-barred from 2032-01-01" in assessment.reasons[0].detail
        assert "against a consumer" in assessment.reasons[0].detail
        assert "art. 74 ust. 2 pkt 4" in assessment.reasons[1].detail
        assert "will be time-barred from 2032-01-01" in assessment.reasons[1].detail

    def test_settled_old_debt_is_allowed(self) -> None:
        """A debt settled in 2019 no longer keeps the data in 2026: erasure is allowed today."""
        assessment = erasure_assessment([_closed(on=date(2019, 6, 10))], [], TODAY)
        assert assessment.allowed
        assert assessment.possible_from == TODAY
        assert assessment.reasons == ()

    def test_last_day_of_accounting_retention(self) -> None:
        """On 31 December 2024 the 2019 debt still keeps the data; on 1 January 2025 it does not."""
        debt = _closed(on=date(2019, 6, 10))
        kept = erasure_assessment([debt], [], date(2024, 12, 31))
        assert not kept.allowed
        assert kept.possible_from == date(2025, 1, 1)
        assert "was settled on 2019-06-10" in kept.reasons[0].detail
        assert erasure_assessment([debt], [], date(2025, 1, 1)).allowed

    def test_legal_hold_is_refused_with_no_date(self) -> None:
        """A hold with no end refuses erasure with no date, whatever the debts say."""
        hold = HoldFacts(id="hold-1", reason="complaint_kd_2026_17", starts_on=date(2026, 1, 5))
        assessment = erasure_assessment([_closed()], [hold], TODAY)
        assert not assessment.allowed
        assert assessment.possible_from is None
        assert [(r.rule, r.ref, r.until) for r in assessment.reasons] == [("legal_hold", "hold-1", None)]
        assert "complaint" not in assessment.reasons[0].detail

    def test_hold_with_an_end(self) -> None:
        """A hold ending on 1 March 2027 allows erasure from the next day."""
        hold = HoldFacts(id="hold-1", reason="dispute", starts_on=date(2026, 1, 5), ends_on=date(2027, 3, 1))
        assessment = erasure_assessment([_closed()], [hold], TODAY)
        assert assessment.possible_from == date(2027, 3, 2)
        assert assessment.reasons[0].until == date(2027, 3, 1)

    def test_ended_hold_is_ignored(self) -> None:
        """A hold that ended before today keeps nothing."""
        hold = HoldFacts(id="hold-1", reason="dispute", starts_on=date(2025, 1, 5), ends_on=date(2026, 6, 30))
        assert erasure_assessment([_closed()], [hold], TODAY).allowed

    def test_hold_starting_later_binds_already(self) -> None:
        """A recorded hold whose start is still ahead binds today (erasing first would defeat it)."""
        hold = HoldFacts(id="hold-1", reason="dispute", starts_on=date(2027, 1, 1), ends_on=date(2027, 6, 30))
        assessment = erasure_assessment([], [hold], TODAY)
        assert not assessment.allowed
        assert assessment.possible_from == date(2027, 7, 1)

    def test_two_debts_the_later_date_wins(self) -> None:
        """With two settled debts, the later accounting retention decides; the old one gives no reason."""
        assessment = erasure_assessment(
            [_closed("debt-1", date(2019, 6, 10)), _closed("debt-2", date(2023, 3, 1))], [], TODAY
        )
        assert assessment.possible_from == date(2029, 1, 1)
        assert [(r.rule, r.ref) for r in assessment.reasons] == [("accounting_retention", "debt-2")]

    def test_open_and_settled_debts(self) -> None:
        """An open debt outlasts a settled one, and both are listed while they keep the data."""
        assessment = erasure_assessment([_closed("debt-2", date(2024, 2, 1)), _open("debt-1")], [], TODAY)
        assert assessment.possible_from == date(2038, 1, 1)
        assert [r.ref for r in assessment.reasons] == ["debt-2", "debt-1", "debt-1"]

    def test_time_barred_open_debt_keeps_only_the_accounting_duty(self) -> None:
        """An open debt barred since 2022 needs no claim any more, but its accounting runs to 2027."""
        assessment = erasure_assessment([_open(due=date(2012, 5, 10), consumer=False)], [], TODAY)
        assert [(r.rule, r.until) for r in assessment.reasons] == [("accounting_retention", date(2027, 12, 31))]
        assert "is time-barred from 2022-05-11" in assessment.reasons[0].detail
        assert assessment.possible_from == date(2028, 1, 1)

    def test_judgment_claim_still_running(self) -> None:
        """A claim confirmed by a judgment final in 2020 runs through 31 December 2026."""
        debt = _open(kind=J, due=date(2019, 1, 10), judgment=date(2020, 5, 4), consumer=False)
        reasons = erasure_assessment([debt], [], TODAY).reasons
        assert reasons[0].until == date(2026, 12, 31)
        assert "judgment claim against a non-consumer" in reasons[0].detail

    def test_nothing_keeps_nothing(self) -> None:
        """A subject with no debts and no holds may be erased today."""
        assert erasure_assessment([], [], TODAY).allowed

    @given(
        first=debts("debt-1"),
        second=debts("debt-2"),
        ends=st.one_of(st.none(), st.dates(min_value=date(2000, 1, 1), max_value=date(2120, 1, 1))),
        today=st.dates(min_value=date(2000, 1, 1), max_value=date(2120, 1, 1)),
    )
    def test_consistent(self, first: DebtFacts, second: DebtFacts, ends: date | None, today: date) -> None:
        """Allowed exactly without reasons; otherwise the date is after every reason and every debt's own date."""
        hold = HoldFacts(id="hold-1", reason="dispute", starts_on=date(2000, 1, 1), ends_on=ends)
        assessment = erasure_assessment([first, second], [hold], today)
        assert assessment.allowed == (not assessment.reasons)
        if assessment.allowed:
            assert assessment.possible_from == today
            assert all(erasure_possible_from(debt) <= today for debt in (first, second))
        elif assessment.possible_from is None:
            assert any(r.until is None for r in assessment.reasons)
        else:
            assert assessment.possible_from > today
            assert all(r.until is not None and r.until < assessment.possible_from for r in assessment.reasons)
            assert all(erasure_possible_from(debt) <= assessment.possible_from for debt in (first, second))
            alone = erasure_assessment([first], [], today).possible_from
            assert alone is not None
            assert alone <= assessment.possible_from


class TestPeriod:
    @pytest.mark.parametrize(
        ("period", "start", "last_day", "words"),
        [
            (Period(days=0), date(2026, 3, 10), date(2026, 3, 10), "0 days"),
            (Period(years=2), date(2024, 1, 10), date(2026, 1, 10), "2 years"),
            (Period(years=2), date(2024, 2, 29), date(2026, 2, 28), "2 years"),
            (Period(years=1, months=6), date(2026, 8, 31), date(2028, 2, 29), "1 year 6 months"),
            (Period(months=1, days=3), date(2026, 1, 31), date(2026, 3, 3), "1 month 3 days"),
            (Period(days=1), date(2026, 12, 31), date(2027, 1, 1), "1 day"),
        ],
    )
    def test_counting(self, period: Period, start: date, last_day: date, words: str) -> None:
        """The event's day is not counted; the period ends on the same date later; due from the next day."""
        assert period.last_day(start) == last_day
        assert period.due_from(start) == last_day + timedelta(days=1)
        assert period.describe() == words

    def test_a_period_names_its_length(self) -> None:
        """An empty period is refused: say days: 0 for none."""
        with pytest.raises(ValidationError, match="names years, months or days"):
            Period()

    def test_past_the_calendar(self) -> None:
        """A period ending past the year 9999 is refused."""
        with pytest.raises(InvalidInputError, match="after the year"):
            Period(days=10).last_day(date(9999, 12, 30))


class TestPackagedPolicy:
    def test_every_data_category_has_a_schedule(self, policy: RetentionPolicy) -> None:
        """The schedules cover the vault's data categories, recordings and contact events, nothing else."""
        expected = {*get_args(DataCategory), "recordings", "contact_events"}
        assert set(DATA_CATEGORIES) == expected
        assert tuple(policy.schedules) == DATA_CATEGORIES

    def test_defaults(self, policy: RetentionPolicy) -> None:
        """Subject data is shredded after the case closes, recordings go after two years, the log stays."""
        for name in SHRED_SCHEDULES:
            schedule = policy.schedules[name]
            assert (schedule.action, schedule.starts_from, schedule.rule) == ("shred_subject", "case_closed",
                                                                              "0 days after case_closed")
        recordings = policy.schedules["recordings"]
        assert (recordings.action, recordings.rule) == ("delete_recordings", "2 years after contact_recorded")
        assert policy.schedules["contact_events"].action == "none"
        assert "art. 74 ust. 2 pkt 4" in policy.schedules["financial"].basis

    def test_fingerprint_is_sha256_of_the_file(self, policy: RetentionPolicy) -> None:
        """The loaded policy carries the SHA-256 of the file's bytes and names its source."""
        assert policy.sha256 == hashlib.sha256(DEFAULT_RETENTION_PATH.read_bytes()).hexdigest()
        assert policy.source == str(DEFAULT_RETENTION_PATH)
        assert policy.version == 1
        assert policy.sha256[:12] in repr(policy)

    def test_fingerprint_changes_with_the_text(self) -> None:
        """A changed comment is a different policy text, with a different fingerprint."""
        assert retention_from_yaml(PACKAGED_TEXT).sha256 != retention_from_yaml(PACKAGED_TEXT + "# edited\n").sha256

    def test_load_is_cached(self) -> None:
        """Loading the packaged policy twice gives the same object."""
        assert load_retention() is load_retention()

    def test_other_path(self, tmp_path: Path) -> None:
        """A policy can be loaded from another file; a missing or non-UTF-8 one is a RetentionPolicyError."""
        copy_path = tmp_path / "retention.yaml"
        copy_path.write_text(PACKAGED_TEXT, encoding="utf-8")
        assert load_retention(copy_path).document == load_retention().document
        with pytest.raises(RetentionPolicyError, match="cannot be read"):
            load_retention(tmp_path / "missing.yaml")
        latin = tmp_path / "latin.yaml"
        latin.write_bytes("# zażółć\n".encode("iso-8859-2"))
        with pytest.raises(RetentionPolicyError, match="not UTF-8"):
            load_retention(latin)


class TestPolicyValidation:
    def test_error_names_source_and_path(self) -> None:
        """An error is an InvalidInputError naming the source and the key path."""
        error = _refused(lambda d: d["schedules"]["notes"].update(action="burn"))
        assert isinstance(error, InvalidInputError)
        assert "test.yaml" in error.detail
        assert "schedules.notes.action" in error.detail
        assert error.extra["paths"] == ["schedules.notes.action"]

    @pytest.mark.parametrize(
        ("change", "path"),
        [
            (lambda d: d["schedules"].pop("recordings"), "schedules.recordings"),
            (lambda d: d["schedules"].update(biometrics=d["schedules"]["notes"]), "schedules.biometrics"),
            (lambda d: d["schedules"]["contact"].update(starts_from="case_opened"), "schedules.contact.starts_from"),
            (lambda d: d["schedules"]["recordings"]["period"].update(years=-1), "schedules.recordings.period.years"),
            (lambda d: d["schedules"]["recordings"]["period"].update(years=True), "schedules.recordings.period.years"),
            (lambda d: d["schedules"]["recordings"]["period"].update(weeks=2), "schedules.recordings.period.weeks"),
            (lambda d: d["schedules"]["recordings"].update(period="2 years"), "schedules.recordings.period"),
            (lambda d: d["schedules"]["location"].update(period={}), "schedules.location.period"),
            (lambda d: d["schedules"]["notes"].pop("basis"), "schedules.notes.basis"),
            (lambda d: d["schedules"]["notes"].update(basis=""), "schedules.notes.basis"),
            (lambda d: d["schedules"]["notes"].update(owner="dpo"), "schedules.notes.owner"),
            (lambda d: d.update(version=2), "version"),
            (lambda d: d.update(author="someone"), "author"),
        ],
    )
    def test_invalid_content_names_the_key_path(self, change: Callable[[dict[str, Any]], None], path: str) -> None:
        """Missing, unknown, mistyped or out-of-range content is refused, naming its key path."""
        assert f"{path}:" in _refused(change).detail

    @pytest.mark.parametrize(
        ("change", "message"),
        [
            (lambda d: d["schedules"]["identification"].update(action="delete_recordings"),
             r"schedules\.identification: .*recordings schedule only"),
            (lambda d: d["schedules"]["financial"].update(starts_from="contact_recorded"),
             r"schedules\.financial: .*recordings schedule only"),
            (lambda d: d["schedules"]["recordings"].update(action="shred_subject"),
             r"schedules\.recordings: .*recordings are deleted"),
        ],
    )
    def test_actions_fit_their_category(self, change: Callable[[dict[str, Any]], None], message: str) -> None:
        """Recordings alone are deleted on their own dates; shredding is for the subject's categories."""
        with pytest.raises(RetentionPolicyError, match=message):
            _changed(change)

    def test_duplicate_key(self) -> None:
        """A key repeated in a mapping is refused, naming its full path and line."""
        line = "    action: delete_recordings\n"
        text = PACKAGED_TEXT.replace(line, line + line)
        assert text != PACKAGED_TEXT
        with pytest.raises(RetentionPolicyError, match=r"duplicate key schedules\.recordings\.action \(line \d+\)"):
            retention_from_yaml(text, source="test.yaml")

    def test_duplicate_schedule(self) -> None:
        """A schedule declared twice is refused (YAML alone would keep the second silently)."""
        text = PACKAGED_TEXT + "  notes:\n    period: {days: 0}\n"
        with pytest.raises(RetentionPolicyError, match=r"duplicate key schedules\.notes"):
            retention_from_yaml(text, source="test.yaml")

    def test_not_yaml(self) -> None:
        """Text that is not YAML is refused."""
        with pytest.raises(RetentionPolicyError, match="not valid YAML"):
            retention_from_yaml("schedules: [unclosed", source="test.yaml")

    def test_empty_document(self) -> None:
        """An empty file is refused as a whole document."""
        with pytest.raises(RetentionPolicyError, match="<document>"):
            retention_from_yaml("", source="test.yaml")


class TestEventDate:
    def test_subject_dates(self) -> None:
        """Case closure, last contact and request completion are the subject's own dates."""
        subject = SubjectFacts(case_closed_on=date(2024, 1, 2), last_contact_on=date(2023, 5, 6),
                               request_completed_on=date(2025, 7, 8))
        assert event_date("case_closed", subject) == date(2024, 1, 2)
        assert event_date("last_contact", subject) == date(2023, 5, 6)
        assert event_date("request_completed", subject) == date(2025, 7, 8)
        assert event_date("contact_recorded", subject) is None

    def test_debt_settled_once_all_are_closed(self) -> None:
        """Debts are settled on the latest closing, once none is open; never without debts."""
        closed = (_closed("debt-1", date(2019, 6, 10)), _closed("debt-2", date(2020, 2, 1), status="written_off"))
        assert event_date("debt_settled", SubjectFacts(debts=closed)) == date(2020, 2, 1)
        assert event_date("debt_settled", SubjectFacts(debts=(*closed, _open("debt-3")))) is None
        assert event_date("debt_settled", SubjectFacts()) is None

    def test_limitation_end_is_the_latest(self) -> None:
        """The limitation end of a subject is the last day of its latest-ending claim."""
        subject = SubjectFacts(debts=(_open("debt-1"), _open("debt-2", kind=P, due=date(2021, 6, 10))))
        assert event_date("limitation_end", subject) == date(2031, 12, 31)
        assert event_date("limitation_end", SubjectFacts()) is None


def _old_subject(**changes: Any) -> SubjectFacts:
    facts: dict[str, Any] = {
        "debts": (_closed("debt-1", date(2019, 6, 10)),),
        "case_closed_on": date(2019, 7, 1),
        "recordings": (RecordingFacts(id="rec-1", recorded_on=date(2019, 5, 1), debt_id="debt-1"),),
    }
    facts.update(changes)
    return SubjectFacts(**facts)


class TestDueActions:
    def test_old_settled_subject(self, policy: RetentionPolicy) -> None:
        """Settled in 2019, case closed: shred due since 2025-01-01, the 2019 recording since 2021-05-02."""
        actions = due_actions(policy, _old_subject(), TODAY)
        shred = [a for a in actions if a.action == "shred_subject"]
        assert [a.schedule for a in shred] == list(SHRED_SCHEDULES)
        assert {a.since for a in shred} == {date(2025, 1, 1)}
        assert all(a.recording_id is None and a.basis for a in shred)
        assert actions[-1] == DueAction("delete_recordings", "recordings", "2 years after contact_recorded",
                                        policy.schedules["recordings"].basis, date(2021, 5, 2), recording_id="rec-1")

    def test_a_binding_hold_stops_everything(self, policy: RetentionPolicy) -> None:
        """While a legal hold binds, nothing is due, not even old recordings."""
        hold = HoldFacts(id="hold-1", reason="dispute", starts_on=date(2026, 1, 1))
        assert due_actions(policy, _old_subject(holds=(hold,)), TODAY) == []

    def test_an_ended_hold_moves_since(self, policy: RetentionPolicy) -> None:
        """After a hold ends, the actions are due again from the day after its end."""
        hold = HoldFacts(id="hold-1", reason="dispute", starts_on=date(2025, 1, 1), ends_on=date(2026, 6, 30))
        actions = due_actions(policy, _old_subject(holds=(hold,)), TODAY)
        assert len(actions) == len(SHRED_SCHEDULES) + 1
        assert {a.since for a in actions} == {date(2026, 7, 1)}

    def test_open_debt_keeps_the_subject_but_not_old_recordings(self, policy: RetentionPolicy) -> None:
        """An open debt blocks shredding; plain recordings go after two years, evidence stays with the claim."""
        subject = SubjectFacts(
            debts=(_open("debt-1"),),
            recordings=(
                RecordingFacts(id="rec-old", recorded_on=date(2024, 1, 10), debt_id="debt-1"),
                RecordingFacts(id="rec-new", recorded_on=date(2025, 12, 1), debt_id="debt-1"),
                RecordingFacts(id="rec-evidence", recorded_on=date(2024, 1, 10), debt_id="debt-1", evidence=True),
                RecordingFacts(id="rec-unlinked", recorded_on=date(2023, 1, 1), evidence=True),
            ),
        )
        actions = due_actions(policy, subject, TODAY)
        assert [(a.action, a.recording_id, a.since) for a in actions] == [
            ("delete_recordings", "rec-old", date(2026, 1, 11)),
        ]

    def test_evidence_goes_when_its_claim_is_barred(self, policy: RetentionPolicy) -> None:
        """An evidence recording of a claim barred from 2022-05-11 is due from that day."""
        subject = SubjectFacts(
            debts=(_open("debt-1", due=date(2012, 5, 10)), _open("debt-2")),
            recordings=(RecordingFacts(id="rec-1", recorded_on=date(2019, 1, 1), debt_id="debt-1", evidence=True),),
        )
        actions = due_actions(policy, subject, TODAY)
        assert [(a.recording_id, a.since) for a in actions] == [("rec-1", date(2022, 5, 11))]

    def test_accounting_duty_blocks_the_shred(self, policy: RetentionPolicy) -> None:
        """A debt settled in 2023 keeps the subject until 2029 even though the case is closed."""
        subject = _old_subject(debts=(_closed("debt-1", date(2023, 3, 1)),), recordings=())
        assert due_actions(policy, subject, TODAY) == []
        assert {a.since for a in due_actions(policy, subject, date(2029, 1, 1))} == {date(2029, 1, 1)}

    def test_open_case_blocks_the_shred(self, policy: RetentionPolicy) -> None:
        """Without a case closure, no shred is due, though old recordings still go."""
        actions = due_actions(policy, _old_subject(case_closed_on=None), TODAY)
        assert [a.action for a in actions] == ["delete_recordings"]

    def test_shred_is_all_or_none(self) -> None:
        """If one shred schedule's event has not happened, no shred is listed at all."""
        policy = _changed(lambda d: d["schedules"]["notes"].update(starts_from="last_contact"))
        assert [a.action for a in due_actions(policy, _old_subject(), TODAY)] == ["delete_recordings"]
        actions = due_actions(policy, _old_subject(last_contact_on=date(2019, 5, 1)), TODAY)
        assert [a.schedule for a in actions if a.action == "shred_subject"] == list(SHRED_SCHEDULES)

    def test_schedule_later_than_the_retention_rules(self) -> None:
        """A schedule running past the accounting duty decides when the shred is due."""
        policy = _changed(lambda d: d["schedules"]["identification"].update(
            period={"years": 1}, starts_from="debt_settled"))
        subject = _old_subject(debts=(_closed("debt-1", date(2019, 6, 10)), _closed("debt-2", date(2025, 12, 1))),
                               recordings=())
        assert due_actions(policy, subject, TODAY) == []  # accounting duty of debt-2 runs to 2030
        assert {a.since for a in due_actions(policy, subject, date(2031, 6, 1))} == {date(2031, 1, 1)}
        policy = _changed(lambda d: d["schedules"]["identification"].update(
            period={"years": 7}, starts_from="debt_settled"))
        assert {a.since for a in due_actions(policy, subject, date(2033, 1, 1))} == {date(2032, 12, 2)}

    def test_recordings_from_a_subject_event(self) -> None:
        """Recordings scheduled from the case closure all go together, and not before it."""
        policy = _changed(lambda d: d["schedules"]["recordings"].update(period={"years": 1}, starts_from="case_closed"))
        subject = _old_subject(recordings=(RecordingFacts(id="rec-1", recorded_on=date(2019, 5, 1)),
                                           RecordingFacts(id="rec-2", recorded_on=date(2025, 5, 1))))
        deletions = [a for a in due_actions(policy, subject, TODAY) if a.action == "delete_recordings"]
        assert [(a.recording_id, a.since, a.rule) for a in deletions] == [
            ("rec-1", date(2020, 7, 2), "1 year after case_closed"),
            ("rec-2", date(2020, 7, 2), "1 year after case_closed"),
        ]
        assert not [a for a in due_actions(policy, _old_subject(case_closed_on=None), TODAY)
                    if a.action == "delete_recordings"]

    def test_action_none_is_never_due(self) -> None:
        """Schedules with action none list nothing, recordings included."""
        policy = _changed(lambda d: d["schedules"]["recordings"].update(action="none"))
        actions = due_actions(policy, _old_subject(), TODAY)
        assert {a.schedule for a in actions} == set(SHRED_SCHEDULES)

    @given(
        debt=debts("debt-1"),
        closed=st.one_of(st.none(), st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1))),
        recorded=st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)),
        evidence=st.booleans(),
        today=st.dates(min_value=date(2000, 1, 1), max_value=date(2120, 1, 1)),
    )
    def test_never_due_early(
        self, debt: DebtFacts, closed: date | None, recorded: date, evidence: bool, today: date
    ) -> None:
        """Every action is due since a day not after today; a shred only when erasure is allowed."""
        subject = SubjectFacts(debts=(debt,), case_closed_on=closed,
                               recordings=(RecordingFacts(id="rec-1", recorded_on=recorded, debt_id="debt-1",
                                                          evidence=evidence),))
        actions = due_actions(load_retention(), subject, today)
        assert all(a.since <= today for a in actions)
        if any(a.action == "shred_subject" for a in actions):
            assert erasure_assessment([debt], [], today).allowed
            assert closed is not None
            assert all(a.since >= erasure_possible_from(debt) for a in actions if a.action == "shred_subject")
        for action in actions:
            if action.action == "delete_recordings":
                assert action.since > recorded + timedelta(days=365 * 2)
                claim = legal_claim_until(debt)
                if evidence and claim is not None:
                    assert action.since > claim

