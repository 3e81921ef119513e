"""The only place that queries the contacts tables.

Every function takes a SQLAlchemy ``Connection`` whose transaction belongs to the caller.
Rows go in and out as plain values: tokens, ids, dates, channel names, never personal data.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, and_, func, insert, or_, select, update

from contacts.models import Case, ContactEvent, Debt, DebtEvent, DebtParty, Objection, SubjectRules

debts = cast(Table, Debt.__table__)
debt_events = cast(Table, DebtEvent.__table__)
debt_parties = cast(Table, DebtParty.__table__)
cases = cast(Table, Case.__table__)
subject_rules = cast(Table, SubjectRules.__table__)
objections = cast(Table, Objection.__table__)
events = cast(Table, ContactEvent.__table__)


def utc(value: datetime) -> datetime:
    """A time as stored: in UTC (SQLite keeps no offset, so every stored time is UTC)."""
    if value.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return value.astimezone(UTC)


def _split(text: str) -> frozenset[str]:
    return frozenset(part for part in text.split(",") if part)


def join_names(names: Iterable[str]) -> str:
    return ",".join(sorted(set(names)))


# -- debts and cases ---------------------------------------------------------------------------

def _chunks(items: Sequence[str], size: int = 400) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start:start + size])


def insert_debt(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(insert(debts), [row])


def get_debt(conn: Connection, debt_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(debts).where(debts.c.id == debt_id)).mappings().first()
    return dict(row) if row is not None else None


def debts_by_id(conn: Connection, debt_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The debts of ``debt_ids`` that exist, by id."""
    out: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(debt_ids):
        out.update((r["id"], dict(r)) for r in conn.execute(select(debts).where(debts.c.id.in_(chunk))).mappings())
    return out


def debts_of(conn: Connection, subject: str) -> list[dict[str, Any]]:
    rows = conn.execute(select(debts).where(debts.c.subject_token == subject).order_by(debts.c.due_date, debts.c.id))
    return [dict(r) for r in rows.mappings()]


def update_debt(conn: Connection, debt_id: str, values: dict[str, Any]) -> int:
    return conn.execute(update(debts).where(debts.c.id == debt_id).values(**values)).rowcount


def debts_as_party(conn: Connection, subject: str) -> list[tuple[dict[str, Any], str]]:
    """The debts on which ``subject`` is a guarantor or co-debtor, with the role, by due date."""
    rows = conn.execute(select(debts, debt_parties.c.role).join(debt_parties, debt_parties.c.debt_id == debts.c.id)
                        .where(debt_parties.c.subject_token == subject).order_by(debts.c.due_date, debts.c.id))
    return [({k: v for k, v in r.items() if k != "role"}, r["role"]) for r in rows.mappings()]


def events_of_debts(conn: Connection, debt_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """The legal history of each debt of ``debt_ids``, in the order recorded; every id present."""
    out: dict[str, list[dict[str, Any]]] = {d: [] for d in debt_ids}
    for chunk in _chunks(list(dict.fromkeys(debt_ids))):
        rows = conn.execute(select(debt_events).where(debt_events.c.debt_id.in_(chunk))
                            .order_by(debt_events.c.debt_id, debt_events.c.seq))
        for row in rows.mappings():
            out[row["debt_id"]].append(dict(row))
    return out


def parties_of_debts(conn: Connection, debt_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """The guarantors and co-debtors of each debt of ``debt_ids``, oldest first; every id present."""
    out: dict[str, list[dict[str, Any]]] = {d: [] for d in debt_ids}
    for chunk in _chunks(list(dict.fromkeys(debt_ids))):
        rows = conn.execute(select(debt_parties).where(debt_parties.c.debt_id.in_(chunk))
                            .order_by(debt_parties.c.debt_id, debt_parties.c.recorded_at, debt_parties.c.subject_token))
        for row in rows.mappings():
            out[row["debt_id"]].append(dict(row))
    return out


def next_event_seq(conn: Connection, debt_id: str) -> int:
    """The number the debt's next event takes (1 for the first)."""
    return int(conn.execute(select(func.coalesce(func.max(debt_events.c.seq), 0))
                            .where(debt_events.c.debt_id == debt_id)).scalar_one()) + 1


def insert_debt_event(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(insert(debt_events), [row])


def insert_party(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(insert(debt_parties), [row])


def insert_case(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(insert(cases), [row])


def get_case(conn: Connection, case_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(cases).where(cases.c.id == case_id)).mappings().first()
    return dict(row) if row is not None else None


def cases_of(conn: Connection, subject: str) -> list[dict[str, Any]]:
    rows = conn.execute(select(cases).where(cases.c.subject_token == subject).order_by(cases.c.opened_at))
    return [dict(r) for r in rows.mappings()]


def case_ids_of(conn: Connection, subjects: Sequence[str]) -> dict[str, frozenset[str]]:
    """The ids of every case (open or closed) of each subject."""
    out: dict[str, set[str]] = {s: set() for s in subjects}
    for start in range(0, len(subjects), 400):
        chunk = list(subjects[start:start + 400])
        for token, case_id in conn.execute(
                select(cases.c.subject_token, cases.c.id).where(cases.c.subject_token.in_(chunk))):
            out[token].add(case_id)
    return {s: frozenset(ids) for s, ids in out.items()}


def close_case(conn: Connection, case_id: str, at: datetime) -> int:
    return conn.execute(update(cases).where(cases.c.id == case_id, cases.c.status == "open")
                        .values(status="closed", closed_at=at)).rowcount


# -- a subject's contact rules -----------------------------------------------------------------

def get_subject_rules(conn: Connection, subject: str) -> dict[str, Any] | None:
    return subject_rules_of(conn, [subject]).get(subject)


def subject_rules_of(conn: Connection, subjects: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The contact rules of those ``subjects`` that have a row, by token."""
    out: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(subjects):
        for row in conn.execute(select(subject_rules).where(subject_rules.c.subject_token.in_(chunk))).mappings():
            rules = dict(row)
            rules["opted_out_channels"] = _split(rules["opted_out_channels"])
            rules["weekend_channels"] = _split(rules["weekend_channels"])
            out[rules["subject_token"]] = rules
    return out


def restricted_subjects(conn: Connection, subjects: Sequence[str]) -> set[str]:
    out: set[str] = set()
    for start in range(0, len(subjects), 400):
        chunk = list(subjects[start:start + 400])
        out.update(conn.execute(select(subject_rules.c.subject_token).where(
            subject_rules.c.subject_token.in_(chunk), subject_rules.c.restricted_since.is_not(None))).scalars())
    return out


def upsert_subject_rules(conn: Connection, subject: str, values: dict[str, Any], *, defaults: dict[str, Any]) -> None:
    """Set some of a subject's contact rules; a subject without a row gets ``defaults`` for the rest."""
    stored = {k: (join_names(v) if k in ("opted_out_channels", "weekend_channels") else v) for k, v in values.items()}
    changed = conn.execute(update(subject_rules).where(subject_rules.c.subject_token == subject)
                           .values(**stored)).rowcount
    if not changed:
        row = {**{k: (join_names(v) if k in ("opted_out_channels", "weekend_channels") else v)
                  for k, v in defaults.items()}, **stored, "subject_token": subject}
        conn.execute(insert(subject_rules), [row])


def insert_objection(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(insert(objections), [row])


def active_objections(conn: Connection, subject: str) -> list[tuple[str, str | None]]:
    return active_objections_of(conn, [subject])[subject]


def active_objections_of(conn: Connection, subjects: Sequence[str]) -> dict[str, list[tuple[str, str | None]]]:
    """The (purpose, channel) of each subject's objections not withdrawn, oldest first; every subject present."""
    out: dict[str, list[tuple[str, str | None]]] = {s: [] for s in subjects}
    for chunk in _chunks(subjects):
        rows = conn.execute(select(objections.c.subject_token, objections.c.purpose, objections.c.channel).where(
            objections.c.subject_token.in_(chunk), objections.c.withdrawn_at.is_(None)).order_by(objections.c.id))
        for token, purpose, channel in rows:
            out[token].append((purpose, channel))
    return out


def withdraw_objections(conn: Connection, subject: str, purpose: str, channel: str | None, at: datetime) -> int:
    condition = objections.c.channel.is_(None) if channel is None else objections.c.channel == channel
    return conn.execute(update(objections).where(
        objections.c.subject_token == subject, objections.c.purpose == purpose, condition,
        objections.c.withdrawn_at.is_(None)).values(withdrawn_at=at)).rowcount


# -- contact events ----------------------------------------------------------------------------

def insert_event(conn: Connection, row: dict[str, Any]) -> bool:
    """Insert one contact event row; False if a row with its id is already there (a retried request)."""
    if conn.execute(select(events.c.id).where(events.c.id == row["id"])).first() is not None:
        return False
    conn.execute(insert(events), [{**row, "occurred_at": utc(row["occurred_at"]),
                                   "recorded_at": utc(row["recorded_at"])}])
    return True


def get_event(conn: Connection, event_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(events).where(events.c.id == event_id)).mappings().first()
    return dict(row) if row is not None else None


def subject_heads(conn: Connection, tokens: Sequence[str]) -> dict[str, int]:
    """Each subject's highest contact number (``subject_seq``), 0 for none: its next contact takes the next."""
    out = dict.fromkeys(tokens, 0)
    for chunk in _chunks(list(tokens)):
        rows = conn.execute(select(events.c.subject_token, func.max(events.c.subject_seq))
                            .where(events.c.subject_token.in_(chunk)).group_by(events.c.subject_token))
        for token, head in rows:
            out[str(token)] = int(head or 0)
    return out


def recent_events_of(conn: Connection, since: dict[str, datetime]) -> dict[str, list[dict[str, Any]]]:
    """:func:`recent_events` of many subjects at once (each from its own ``since``), by token."""
    out: dict[str, list[dict[str, Any]]] = {s: [] for s in since}
    for chunk in _chunks(list(since)):
        earliest = min(since[s] for s in chunk)
        rows = conn.execute(select(events.c.subject_token, events.c.channel, events.c.debt_id, events.c.occurred_at,
                                   events.c.conversation, events.c.direction)
                            .where(events.c.subject_token.in_(chunk), events.c.occurred_at >= utc(earliest),
                                   events.c.decision != "refuse")
                            .order_by(events.c.occurred_at))
        for row in rows.mappings():
            token = row["subject_token"]
            at = row["occurred_at"]
            if (at if at.tzinfo is not None else at.replace(tzinfo=UTC)) >= since[token]:
                out[token].append({k: row[k] for k in ("channel", "debt_id", "occurred_at", "conversation",
                                                       "direction")})
    return out


def recent_events(conn: Connection, subject: str, since: datetime) -> list[dict[str, Any]]:
    """The subject's recorded (not refused) contacts that took place from ``since`` on."""
    rows = conn.execute(select(events.c.channel, events.c.debt_id, events.c.occurred_at, events.c.conversation,
                               events.c.direction)
                        .where(events.c.subject_token == subject, events.c.occurred_at >= utc(since),
                               events.c.decision != "refuse")
                        .order_by(events.c.occurred_at))
    return [dict(r) for r in rows.mappings()]


def events_of(conn: Connection, subject: str, *, before: tuple[datetime, str] | None,
              limit: int) -> list[dict[str, Any]]:
    """A page of the subject's contact events, newest first, before the cursor ``(occurred_at, id)``."""
    query = select(events).where(events.c.subject_token == subject)
    if before is not None:
        at, event_id = before
        at = utc(at)
        query = query.where(or_(events.c.occurred_at < at, and_(events.c.occurred_at == at, events.c.id < event_id)))
    rows = conn.execute(query.order_by(events.c.occurred_at.desc(), events.c.id.desc()).limit(limit))
    return [dict(r) for r in rows.mappings()]


def decisions_since(conn: Connection, since: datetime, decisions: Sequence[str], *,
                    limit: int) -> list[dict[str, Any]]:
    rows = conn.execute(select(events).where(events.c.recorded_at >= utc(since), events.c.decision.in_(list(decisions)))
                        .order_by(events.c.recorded_at.desc(), events.c.id.desc()).limit(limit))
    return [dict(r) for r in rows.mappings()]


def counts_by_channel_and_day(conn: Connection, since: datetime) -> list[tuple[str, date, int]]:
    """Recorded contacts per channel per day (UTC) from ``since``: the console's chart."""
    day = func.date(events.c.occurred_at)
    rows = conn.execute(select(events.c.channel, day, func.count()).where(
        events.c.occurred_at >= utc(since), events.c.decision != "refuse").group_by(events.c.channel, day)
        .order_by(day, events.c.channel))
    return [(channel, d if isinstance(d, date) else date.fromisoformat(str(d)), int(n)) for channel, d, n in rows]


# -- facts of a range of subjects, for jobs (retention) ------------------------------------------
# A job walks subjects in token order; each reads the facts of the tokens first..last (inclusive)
# with one range scan of the subject_token index, not an IN list of hundreds of parameters.

def debts_in_range(conn: Connection, first: str, last: str) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    rows = conn.execute(select(debts).where(debts.c.subject_token >= first, debts.c.subject_token <= last)
                        .order_by(debts.c.subject_token, debts.c.due_date, debts.c.id))
    for row in rows.mappings():
        out.setdefault(row["subject_token"], []).append(dict(row))
    return out


def party_debts_in_range(conn: Connection, first: str, last: str) -> dict[str, list[tuple[dict[str, Any], str]]]:
    """For each subject first..last that is a guarantor or co-debtor: those debts, with the role."""
    out: dict[str, list[tuple[dict[str, Any], str]]] = {}
    rows = conn.execute(select(debts, debt_parties.c.role, debt_parties.c.subject_token.label("party"))
                        .join(debt_parties, debt_parties.c.debt_id == debts.c.id)
                        .where(debt_parties.c.subject_token >= first, debt_parties.c.subject_token <= last)
                        .order_by(debt_parties.c.subject_token, debts.c.due_date, debts.c.id))
    for row in rows.mappings():
        debt = {k: v for k, v in row.items() if k not in ("role", "party")}
        out.setdefault(row["party"], []).append((debt, row["role"]))
    return out


def case_closure_in_range(conn: Connection, first: str, last: str) -> dict[str, datetime | None]:
    """For each subject with cases: when the last was closed, or None while any is open. Absent: no cases."""
    out: dict[str, datetime | None] = {}
    rows = conn.execute(select(cases.c.subject_token, cases.c.status, cases.c.closed_at)
                        .where(cases.c.subject_token >= first, cases.c.subject_token <= last))
    for token, status, closed_at in rows:
        if status == "open" or closed_at is None:
            out[token] = None
        elif token not in out or (out[token] is not None and closed_at > out[token]):
            out[token] = closed_at
    return out


def last_contact_in_range(conn: Connection, first: str, last: str) -> dict[str, datetime]:
    """The time of each subject's latest recorded (not refused) contact; absent if none."""
    rows = conn.execute(select(events.c.subject_token, func.max(events.c.occurred_at))
                        .where(events.c.subject_token >= first, events.c.subject_token <= last,
                               events.c.decision != "refuse").group_by(events.c.subject_token))
    return {token: at for token, at in rows if at is not None}
