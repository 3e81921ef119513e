"""The only place that queries the vault tables.

Every function takes a SQLAlchemy ``Connection`` whose transaction belongs to the caller
(the vault service opens one short transaction per operation). Rows go in and out as
plain values: ciphertext, keyed hashes, tokens, versions and times, never plaintext.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, DateTime, Table, delete, func, insert, select, update

from vault.models import (
    ACTIVE,
    COMPLETED,
    RUNNING,
    SHREDDED,
    VaultDataKey,
    VaultField,
    VaultKeyRotation,
    VaultRecording,
    VaultSubject,
)

subjects = cast(Table, VaultSubject.__table__)
data_keys = cast(Table, VaultDataKey.__table__)
fields = cast(Table, VaultField.__table__)
recordings = cast(Table, VaultRecording.__table__)
rotations = cast(Table, VaultKeyRotation.__table__)

_IN_CHUNK = 400


@dataclass(frozen=True)
class SubjectRow:
    token: str
    kind: str
    status: str
    dek_version: int
    request_hash: bytes | None

    @property
    def shredded(self) -> bool:
        return self.status == SHREDDED


@dataclass(frozen=True)
class DataKeyRow:
    subject_token: str
    dek_version: int
    kek_version: int
    wrapped: bytes


@dataclass(frozen=True)
class FieldRow:
    field: str
    seq: int
    envelope: bytes


@dataclass(frozen=True)
class RecordingRow:
    id: str
    subject_token: str
    media_type: str
    size: int
    sha256: str
    dek_version: int
    shredded: bool
    created_at: datetime | None = None


@dataclass(frozen=True)
class RotationRow:
    to_version: int
    from_version: int
    status: str
    rewrapped: int


def _subject(row: Any) -> SubjectRow:
    request_hash = None if row.request_hash is None else bytes(row.request_hash)
    return SubjectRow(str(row.token), str(row.kind), str(row.status), int(row.dek_version), request_hash)


# -- subjects ---------------------------------------------------------------------------------------


def _insert_many(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """INSERT ``rows`` (dicts with the same keys) with one driver-level executemany.

    The bulk paths write thousands of rows per transaction, and SQLAlchemy's per-row
    parameter processing cost more than the database itself. So values go to the driver
    as they are (bytes, text, integers), except times, which go through the column type's
    own bind processor (text on SQLite), once per distinct value: a batch shares one ``now``.
    """
    if not rows:
        return
    columns = list(rows[0])
    times = [isinstance(table.c[c].type, DateTime) for c in columns]
    time = _time_converter(conn)
    if time is None or not any(times):
        tuples = [tuple(row[c] for c in columns) for row in rows]
    else:
        pairs = list(zip(columns, times, strict=True))
        tuples = [tuple(time(row[c]) if is_time else row[c] for c, is_time in pairs) for row in rows]
    names = ", ".join(columns)
    conn.exec_driver_sql(f"INSERT INTO {table.name} ({names}) VALUES ({_marks(conn, len(columns))})",  # noqa: S608
                         tuples)  # model names and placeholders only


def _time_converter(conn: Connection) -> Callable[[datetime | None], Any] | None:
    """The column type's bind processing of times (text on SQLite), once per distinct value
    (a batch shares one ``now``); None where the driver takes datetimes as they are."""
    to_db = DateTime(timezone=True).dialect_impl(conn.dialect).bind_processor(conn.dialect)
    if to_db is None:
        return None
    seen: dict[datetime, Any] = {}

    def time(value: datetime | None) -> Any:
        if value is None:
            return None
        out = seen.get(value)
        if out is None:
            out = seen[value] = to_db(value)
        return out

    return time


def insert_subjects(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    _insert_many(conn, subjects, rows)


def get_subject(conn: Connection, token: str) -> SubjectRow | None:
    row = conn.execute(select(subjects).where(subjects.c.token == token)).first()
    return None if row is None else _subject(row)


def get_subjects(conn: Connection, tokens: Sequence[str]) -> dict[str, SubjectRow]:
    """The subjects of ``tokens`` that exist, by token (one query per 400 tokens)."""
    out: dict[str, SubjectRow] = {}
    for i in range(0, len(tokens), _IN_CHUNK):
        chunk = list(tokens[i:i + _IN_CHUNK])
        sql = ("SELECT token, kind, status, dek_version, request_hash FROM vault_subjects "  # noqa: S608
               f"WHERE token IN ({_marks(conn, len(chunk))})")  # constant text and placeholders only
        for token, kind, status, dek_version, request_hash in conn.exec_driver_sql(sql, tuple(chunk)):
            out[token] = SubjectRow(token, kind, status, dek_version,
                                    None if request_hash is None else bytes(request_hash))
    return out


def _marks(conn: Connection, count: int) -> str:
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    return ", ".join([mark] * count)


def subjects_by_idempotency(conn: Connection, hashes: Sequence[bytes]) -> dict[bytes, SubjectRow]:
    """Subjects created under these idempotency hashes, keyed by hash."""
    out: dict[bytes, SubjectRow] = {}
    for i in range(0, len(hashes), _IN_CHUNK):
        chunk = list(hashes[i:i + _IN_CHUNK])
        for row in conn.execute(select(subjects).where(subjects.c.idempotency_hash.in_(chunk))):
            out[bytes(row.idempotency_hash)] = _subject(row)
    return out


def touch_subject(conn: Connection, token: str, now: datetime) -> None:
    conn.execute(update(subjects).where(subjects.c.token == token).values(updated_at=now))


# -- data keys --------------------------------------------------------------------------------------


def insert_data_keys(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    _insert_many(conn, data_keys, rows)


def get_data_key(conn: Connection, token: str, dek_version: int) -> DataKeyRow | None:
    row = conn.execute(select(data_keys).where(data_keys.c.subject_token == token,
                                               data_keys.c.dek_version == dek_version)).first()
    if row is None:
        return None
    return DataKeyRow(str(row.subject_token), int(row.dek_version), int(row.kek_version), bytes(row.wrapped))


def get_data_keys(conn: Connection, wanted: Sequence[tuple[str, int]]) -> dict[tuple[str, int], DataKeyRow]:
    """The wrapped data keys ``(token, data-key version)`` that exist, keyed the same way."""
    out: dict[tuple[str, int], DataKeyRow] = {}
    tokens = sorted({token for token, _ in wanted})
    for i in range(0, len(tokens), _IN_CHUNK):
        chunk = tokens[i:i + _IN_CHUNK]
        sql = ("SELECT subject_token, dek_version, kek_version, wrapped FROM vault_data_keys "  # noqa: S608
               f"WHERE subject_token IN ({_marks(conn, len(chunk))})")  # constant text and placeholders only
        for token, dek_version, kek_version, wrapped in conn.exec_driver_sql(sql, tuple(chunk)):
            out[(token, dek_version)] = DataKeyRow(token, dek_version, kek_version, bytes(wrapped))
    return {key: out[key] for key in wanted if key in out}


def shred_subjects(conn: Connection, tokens: Sequence[str], now: datetime) -> int:
    """Destroy the data keys of ``tokens``, clear their blind indexes, mark their recordings and the
    active ones among them shredded: one statement per table per 400 subjects. Returns how many
    subjects went from active to shredded."""
    changed = 0
    for i in range(0, len(tokens), _IN_CHUNK):
        chunk = list(tokens[i:i + _IN_CHUNK])
        conn.execute(delete(data_keys).where(data_keys.c.subject_token.in_(chunk)))
        conn.execute(update(fields).where(fields.c.subject_token.in_(chunk), fields.c.blind_index.is_not(None))
                     .values(blind_index=None))
        conn.execute(update(recordings).where(recordings.c.subject_token.in_(chunk),
                                              recordings.c.shredded_at.is_(None)).values(shredded_at=now))
        changed += conn.execute(update(subjects).where(subjects.c.token.in_(chunk), subjects.c.status == ACTIVE)
                                .values(status=SHREDDED, shredded_at=now, updated_at=now)).rowcount
    return changed


def keys_not_at(conn: Connection, kek_version: int, limit: int) -> list[DataKeyRow]:
    """Up to ``limit`` data keys wrapped under another KEK version than ``kek_version``.

    In the order of ``ix_vault_data_keys_kek_version``, so older versions come first and a
    rotation's next batch is at the start of the index, whatever it has rewrapped already
    (ordered by token instead, every batch rescanned the keys done before it: quadratic).
    """
    stmt = (select(data_keys).where(data_keys.c.kek_version != kek_version)
            .order_by(data_keys.c.kek_version, data_keys.c.subject_token, data_keys.c.dek_version).limit(limit))
    return [DataKeyRow(str(r.subject_token), int(r.dek_version), int(r.kek_version), bytes(r.wrapped))
            for r in conn.execute(stmt)]


def count_keys_not_at(conn: Connection, kek_version: int) -> int:
    stmt = select(func.count()).select_from(data_keys).where(data_keys.c.kek_version != kek_version)
    return int(conn.execute(stmt).scalar_one())


def rewrap_keys(conn: Connection, rewrapped: Sequence[tuple[DataKeyRow, int, bytes]], now: datetime) -> int:
    """Store rewrapped keys ``(key as read, new KEK version, new wrapped bytes)`` in one executemany.

    A row is changed only if it still holds what was read (a concurrent shred or rotation
    wins); returns how many were stored.
    """
    if not rewrapped:
        return 0
    to_db = DateTime(timezone=True).dialect_impl(conn.dialect).bind_processor(conn.dialect)
    when = to_db(now) if to_db is not None else now
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    sql = (f"UPDATE {data_keys.name} SET kek_version = {mark}, wrapped = {mark}, rewrapped_at = {mark} "  # noqa: S608
           f"WHERE subject_token = {mark} AND dek_version = {mark} AND kek_version = {mark}")
    params = [(version, wrapped, when, key.subject_token, key.dek_version, key.kek_version)
              for key, version, wrapped in rewrapped]
    return int(conn.exec_driver_sql(sql, params).rowcount)


def kek_versions_in_use(conn: Connection) -> set[int]:
    return {int(v) for v in conn.execute(select(data_keys.c.kek_version).distinct()).scalars()}


def count_keys_by_kek_version(conn: Connection) -> dict[int, int]:
    """How many wrapped data keys each KEK version wraps."""
    stmt = select(data_keys.c.kek_version, func.count()).group_by(data_keys.c.kek_version)
    return {int(version): int(count) for version, count in conn.execute(stmt)}


# -- fields -----------------------------------------------------------------------------------------


FIELD_COLUMNS = ("subject_token", "field", "seq", "envelope", "blind_index", "created_at", "updated_at")
FieldRowValues = tuple[str, str, int, bytes, bytes | None, datetime, datetime]
"""A ``vault_fields`` row as :meth:`vault.sealing.FieldSealer.rows` makes it, in FIELD_COLUMNS order."""


def insert_fields(conn: Connection, rows: Sequence[FieldRowValues]) -> None:
    """Insert field rows with one driver-level executemany (times through the column type, once each)."""
    if not rows:
        return
    time = _time_converter(conn)
    tuples: Sequence[tuple[Any, ...]] = rows
    if time is not None:
        tuples = [(*r[:5], time(r[5]), time(r[6])) for r in rows]
    conn.exec_driver_sql(f"INSERT INTO vault_fields ({', '.join(FIELD_COLUMNS)}) "  # noqa: S608 - constants
                         f"VALUES ({_marks(conn, len(FIELD_COLUMNS))})", list(tuples))


def select_fields_of(conn: Connection, tokens: Sequence[str], names: Sequence[str]) -> dict[str, list[FieldRow]]:
    """The sealed values of ``names`` of many subjects, by token, each by field then seq."""
    out: dict[str, list[FieldRow]] = {token: [] for token in tokens}
    for i in range(0, len(tokens), _IN_CHUNK):
        chunk = list(tokens[i:i + _IN_CHUNK])
        # Constant text and placeholders only, straight to the driver: thousands of rows come back.
        sql = ("SELECT subject_token, field, seq, envelope FROM vault_fields "  # noqa: S608
               f"WHERE subject_token IN ({_marks(conn, len(chunk))}) "
               f"AND field IN ({_marks(conn, len(names))}) ORDER BY subject_token, field, seq")
        for token, name, seq, envelope in conn.exec_driver_sql(sql, (*chunk, *names)):
            out[token].append(FieldRow(name, seq, bytes(envelope)))
    return out


def select_fields(conn: Connection, token: str, names: Iterable[str] | None = None) -> list[FieldRow]:
    """The sealed values of a subject (of ``names`` only, if given), by field then seq."""
    stmt = select(fields.c.field, fields.c.seq, fields.c.envelope).where(fields.c.subject_token == token)
    if names is not None:
        stmt = stmt.where(fields.c.field.in_(list(names)))
    stmt = stmt.order_by(fields.c.field, fields.c.seq)
    return [FieldRow(str(r.field), int(r.seq), bytes(r.envelope)) for r in conn.execute(stmt)]


def field_names_of(conn: Connection, tokens: Sequence[str]) -> dict[str, list[str]]:
    """The field names each of ``tokens`` holds, sorted, by token (every token present)."""
    out: dict[str, set[str]] = {token: set() for token in tokens}
    for i in range(0, len(tokens), _IN_CHUNK):
        chunk = list(tokens[i:i + _IN_CHUNK])
        stmt = select(fields.c.subject_token, fields.c.field).where(fields.c.subject_token.in_(chunk)).distinct()
        for token, name in conn.execute(stmt):
            out[str(token)].add(str(name))
    return {token: sorted(names) for token, names in out.items()}


def field_created_at(conn: Connection, token: str, field: str) -> datetime | None:
    stmt = select(func.min(fields.c.created_at)).where(fields.c.subject_token == token, fields.c.field == field)
    value = conn.execute(stmt).scalar()
    return value if isinstance(value, datetime) else None


def delete_field(conn: Connection, token: str, field: str) -> int:
    return conn.execute(delete(fields).where(fields.c.subject_token == token, fields.c.field == field)).rowcount


def tokens_by_blind_index(conn: Connection, field: str, blind_index: bytes, limit: int) -> list[str]:
    """Tokens of active subjects with a value of ``field`` under this blind index.

    One probe of the (field, blind_index, subject_token) index and nothing else: shredding
    clears a subject's blind indexes in the transaction that marks it shredded, so no
    shredded subject can match and the subjects table need not be read.
    """
    mark = _marks(conn, 1)
    sql = (f"SELECT DISTINCT subject_token FROM vault_fields WHERE field = {mark} AND blind_index = {mark} "  # noqa: S608
           f"ORDER BY subject_token LIMIT {int(limit)}")  # constant text, placeholders and an int
    return [str(token) for token in conn.exec_driver_sql(sql, (field, blind_index)).scalars()]


# -- recordings -------------------------------------------------------------------------------------


def _recording(row: Any) -> RecordingRow:
    return RecordingRow(str(row.id), str(row.subject_token), str(row.media_type), int(row.size), str(row.sha256),
                        int(row.dek_version), row.shredded_at is not None, row.created_at)


def recordings_in_range(conn: Connection, first: str, last: str) -> dict[str, list[RecordingRow]]:
    """The recordings not yet shredded of the subjects first..last (token order; one range scan)."""
    out: dict[str, list[RecordingRow]] = {}
    stmt = (select(recordings).where(recordings.c.subject_token >= first, recordings.c.subject_token <= last,
                                     recordings.c.shredded_at.is_(None)).order_by(recordings.c.id))
    for row in conn.execute(stmt):
        out.setdefault(str(row.subject_token), []).append(_recording(row))
    return out


def mark_recording_shredded(conn: Connection, recording_id: str, now: datetime) -> bool:
    result = conn.execute(update(recordings).where(recordings.c.id == recording_id,
                                                   recordings.c.shredded_at.is_(None)).values(shredded_at=now))
    return result.rowcount == 1


def count_active(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(subjects).where(subjects.c.status == ACTIVE))
               .scalar_one())


def active_tokens(conn: Connection, after: str, limit: int) -> list[str]:
    """Tokens of active subjects after ``after``, in token order (a job walks the vault in pages)."""
    stmt = (select(subjects.c.token).where(subjects.c.status == ACTIVE, subjects.c.token > after)
            .order_by(subjects.c.token).limit(limit))
    return [str(t) for t in conn.execute(stmt).scalars()]


def insert_recording(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(insert(recordings), [row])


def get_recording(conn: Connection, recording_id: str) -> RecordingRow | None:
    row = conn.execute(select(recordings).where(recordings.c.id == recording_id)).first()
    return None if row is None else _recording(row)


def recording_ids_of(conn: Connection, tokens: Sequence[str]) -> dict[str, list[str]]:
    """The ids of the recordings (shredded or not) of each of ``tokens``, sorted, by token."""
    out: dict[str, list[str]] = {token: [] for token in tokens}
    for i in range(0, len(tokens), _IN_CHUNK):
        chunk = list(tokens[i:i + _IN_CHUNK])
        stmt = (select(recordings.c.subject_token, recordings.c.id).where(recordings.c.subject_token.in_(chunk))
                .order_by(recordings.c.id))
        for token, rec in conn.execute(stmt):
            out[str(token)].append(str(rec))
    return out


# -- key rotations ----------------------------------------------------------------------------------


def _rotation(row: Any) -> RotationRow:
    return RotationRow(int(row.to_version), int(row.from_version), str(row.status), int(row.rewrapped))


def running_rotation(conn: Connection) -> RotationRow | None:
    row = conn.execute(select(rotations).where(rotations.c.status == RUNNING)).first()
    return None if row is None else _rotation(row)


def get_rotation(conn: Connection, to_version: int) -> RotationRow:
    return _rotation(conn.execute(select(rotations).where(rotations.c.to_version == to_version)).one())


def newest_rotation_target(conn: Connection) -> int | None:
    value = conn.execute(select(func.max(rotations.c.to_version))).scalar()
    return None if value is None else int(value)


def insert_rotation(conn: Connection, *, to_version: int, from_version: int, now: datetime) -> None:
    conn.execute(insert(rotations), [{"to_version": to_version, "from_version": from_version, "status": RUNNING,
                                      "rewrapped": 0, "started_at": now, "finished_at": None}])


def count_rewrapped(conn: Connection, to_version: int, count: int) -> None:
    conn.execute(update(rotations).where(rotations.c.to_version == to_version)
                 .values(rewrapped=rotations.c.rewrapped + count))


def complete_rotation(conn: Connection, to_version: int, now: datetime) -> None:
    conn.execute(update(rotations).where(rotations.c.to_version == to_version)
                 .values(status=COMPLETED, finished_at=now))
