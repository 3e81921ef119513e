"""The log's side, piece by piece: the TARCZA_WITNESSES setting, one submission against a real witness
process (each outcome), the append-only cosignature table, and checkpoints carrying stored lines.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import DBAPIError

from audit.checkpoint import Signer, open_checkpoint
from audit.cosignature import Cosigner, CosignerKey, verify_cosignatures
from audit.cosignature_store import AuditCosignature, insert_cosignature
from audit.events import Actor, ActorKind
from audit.service import AuditLog
from audit.witness_client import WitnessEndpoint, configured_witnesses, format_add_checkpoint, submit
from core import migrate
from core.db import make_engine, write_connection
from core.errors import ConfigurationError
from core.settings import load_settings
from tests.serving import free_port

from .conftest import TreeLog, WitnessProcess, running

NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
AGENT = Actor(id="agent-1", kind=ActorKind.USER)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    migrate.upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def audit_log(engine: Engine) -> Iterator[AuditLog]:
    log = AuditLog(engine, Signer.generate("tarcza.example/log-side"), checkpoint_every_entries=10_000)
    yield log
    log.close()


def grow(log: AuditLog, count: int) -> None:
    for i in range(count):
        log.record("contact.attempted", actor=AGENT, subject="sub_LOGSIDE0000001",
                   payload={"channel": "sms", "direction": "outbound", "agent_id": f"agent-{i}"})


class TestSettings:
    def test_witness_entries_parse(self) -> None:
        """Entries split on commas or newlines into (URL without trailing slash, key)."""
        k1, k2 = (Cosigner.generate(f"w{i}.example/w").verifier().to_string() for i in (1, 2))
        settings = load_settings(witnesses=f"https://w1.example/ {k1},\n http://127.0.0.1:9 {k2}\n")
        assert settings.witness_list == [("https://w1.example", k1), ("http://127.0.0.1:9", k2)]
        assert [w.key.to_string() for w in configured_witnesses(settings.witness_list)] == [k1, k2]

    @pytest.mark.parametrize("value", ["https://w.example", "ftp://w.example a+b+c", "https://w.example nokey",
                                       "https://w.example a+b+c d"])
    def test_bad_entry_is_one_configuration_error(self, value: str) -> None:
        """A malformed entry is refused when the settings load, naming TARCZA_WITNESSES."""
        with pytest.raises(ConfigurationError, match="TARCZA_WITNESSES"):
            load_settings(witnesses=value)

    def test_key_that_is_not_a_cosigner_key_is_refused(self) -> None:
        """A log-type (0x01) key in TARCZA_WITNESSES is refused when the client is built."""
        log_key = Signer.generate("w.example/w").verifier().to_string()
        with pytest.raises(ConfigurationError, match="0x04"):
            configured_witnesses(load_settings(witnesses=f"https://w.example {log_key}").witness_list)


class TestSubmit:
    def test_each_outcome_of_a_submission(self, make_witness: Callable[[str], WitnessProcess]) -> None:
        """Against a real witness: cosigned, conflict with the witness's size, refused (422), unreachable."""
        log = TreeLog("tarcza.example/submit").grow(4)
        witness = make_witness("witness.example/submit")
        key = CosignerKey.from_string(witness.init().to_string())
        witness.add_log(log.signer.verifier().to_string())
        endpoint = WitnessEndpoint(witness.url, key)
        with running(witness):
            answer = submit(endpoint, 0, [], log.note(), timeout=30)
            assert answer.outcome == "cosigned"
            assert verify_cosignatures(log.note() + answer.body, [key])
            log.grow(3)
            conflict = submit(endpoint, 0, [], log.note(), timeout=30)
            assert (conflict.outcome, conflict.size) == ("conflict", 4)
            fork = log.fork(1).grow(6)
            refused = submit(endpoint, 4, fork.proof(4), fork.note(), timeout=30)
            assert (refused.outcome, refused.status) == ("refused", 422)
        down = submit(WitnessEndpoint(f"http://127.0.0.1:{free_port()}", key), 4, log.proof(4), log.note(), 5)
        assert down.outcome == "unreachable"

    def test_request_body_layout(self) -> None:
        """'old N', one base64 hash a line, a blank line, then the note (tlog-witness example layout)."""
        body = format_add_checkpoint(20852014, [b"\x00" * 32, b"\xff" * 32], "o\n1\nAA==\n\n\u2014 o c2ln\n")
        assert body == ("old 20852014\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
                        "//////////////////////////////////////////8=\n\no\n1\nAA==\n\n\u2014 o c2ln\n").encode()


class TestStoredCosignatures:
    def test_migration_matches_model(self, engine: Engine) -> None:
        """The migrated audit_cosignatures table has exactly the model's columns."""
        columns = {c["name"] for c in inspect(engine).get_columns("audit_cosignatures")}
        assert columns == set(AuditCosignature.__table__.columns.keys())

    def test_checkpoints_carry_their_cosignature_lines(self, audit_log: AuditLog) -> None:
        """Stored cosignatures follow the log's signature on the served note, which still opens and verifies."""
        grow(audit_log, 3)
        info = audit_log.issue_checkpoint()
        w1, w2 = Cosigner.generate("b.example/w"), Cosigner.generate("a.example/w")
        body = info.note.split("\n\n")[0] + "\n"
        for witness in (w1, w2):
            [cosig] = verify_cosignatures(info.note + witness.cosign(body, 1_800_000_000), [witness.verifier()])
            with write_connection(audit_log.engine) as conn:
                assert insert_cosignature(conn, info.tree_size, cosig, NOW)
                assert not insert_cosignature(conn, info.tree_size, cosig, NOW)  # stored once
        latest = audit_log.latest_checkpoint()
        assert latest is not None
        assert latest.note.startswith(info.note)
        assert [c.key.name for c in verify_cosignatures(latest.note, [w1.verifier(), w2.verifier()])] == \
            ["b.example/w", "a.example/w"]
        assert open_checkpoint(latest.note, audit_log.verifier()).size == info.tree_size
        assert audit_log.checkpoints()[-1].note == latest.note
        assert audit_log.verify_database().checkpoints == 1

    @pytest.mark.parametrize("statement", ["UPDATE audit_cosignatures SET timestamp = 1",
                                           "DELETE FROM audit_cosignatures"])
    def test_cosignatures_are_append_only(self, audit_log: AuditLog, statement: str) -> None:
        """UPDATE and DELETE on stored cosignatures fail in the database itself."""
        grow(audit_log, 1)
        info = audit_log.issue_checkpoint()
        witness = Cosigner.generate("w.example/w")
        body = info.note.split("\n\n")[0] + "\n"
        [cosig] = verify_cosignatures(info.note + witness.cosign(body, 1_800_000_000), [witness.verifier()])
        with write_connection(audit_log.engine) as conn:
            insert_cosignature(conn, info.tree_size, cosig, NOW)
        with pytest.raises(DBAPIError, match="append-only"), audit_log.engine.begin() as conn:
            conn.execute(text(statement))

    def test_empty_request_layout_round_trips_through_the_witness_parser(self) -> None:
        """What the log sends parses back, on the witness's side, to the same old size, proof and note."""
        from witness.protocol import parse_add_checkpoint

        log = TreeLog("tarcza.example/rt").grow(9)
        parsed = parse_add_checkpoint(format_add_checkpoint(5, log.proof(5), log.note()))
        assert (parsed.old_size, list(parsed.proof), parsed.note) == (5, log.proof(5), log.note())
