"""tarcza_verify.trust: the known-logs file and which key an export is verified with."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tarcza_verify.errors import KeyTrustError, VerifyError
from tarcza_verify.trust import KnownLogs, decide, default_path, read_key_file

from .spec_signer import SpecSigner

ORIGIN = "tarcza.example.pl/audit"
REAL = SpecSigner.generate(ORIGIN).verifier()
FORGED = SpecSigner.generate(ORIGIN).verifier()


class TestKnownLogsFile:
    def test_pin_writes_a_private_file_that_loads_back(self, tmp_path: Path) -> None:
        """Pinning creates the file (0600, folder 0700) with a header; it loads back with the same key."""
        path = tmp_path / "cfg" / "tarcza" / "known_logs"
        known = KnownLogs.load(path)
        assert known.keys == {}
        known.pin(ORIGIN, REAL)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        text = path.read_text()
        assert text.startswith("# ")
        assert f"{ORIGIN} {REAL.to_string()}\n" in text
        assert KnownLogs.load(path).keys == {ORIGIN: REAL}

    def test_key_with_plus_signs_round_trips(self, tmp_path: Path) -> None:
        """A key whose base64 part holds '+' and '/' is kept and read back whole."""
        key = next(k for k in (SpecSigner.generate(ORIGIN).verifier() for _ in range(200))
                   if "+" in k.to_string().split("+", 2)[2])
        KnownLogs.load(tmp_path / "k").pin(ORIGIN, key)
        assert KnownLogs.load(tmp_path / "k").keys[ORIGIN] == key

    @pytest.mark.parametrize("line", ["tarcza.example.pl/audit not-a-key", "lonely", f"{ORIGIN}"])
    def test_malformed_line_is_named(self, tmp_path: Path, line: str) -> None:
        """A line that is not '<origin> <verifier key>' is refused with its number."""
        path = tmp_path / "known_logs"
        path.write_text(f"# comment\n\n{line}\n")
        with pytest.raises(VerifyError, match="line 3"):
            KnownLogs.load(path)

    def test_two_keys_for_one_log_are_refused(self, tmp_path: Path) -> None:
        """The file may not pin two different keys for one origin."""
        path = tmp_path / "known_logs"
        path.write_text(f"{ORIGIN} {REAL.to_string()}\n{ORIGIN} {FORGED.to_string()}\n")
        with pytest.raises(VerifyError, match="second, different key"):
            KnownLogs.load(path)

    def test_default_place(self, tmp_path: Path) -> None:
        """$TARCZA_KNOWN_LOGS wins, then $XDG_CONFIG_HOME/tarcza/known_logs, then ~/.config/tarcza/known_logs."""
        assert default_path({"TARCZA_KNOWN_LOGS": str(tmp_path / "x"), "XDG_CONFIG_HOME": "/y"}) == tmp_path / "x"
        assert default_path({"XDG_CONFIG_HOME": str(tmp_path)}) == tmp_path / "tarcza" / "known_logs"
        assert default_path({}) == Path.home() / ".config" / "tarcza" / "known_logs"

    def test_key_file(self, tmp_path: Path) -> None:
        """A key file is the one line `tarcza audit verifier-key` prints; anything else is refused, named."""
        good, bad = tmp_path / "log.pub", tmp_path / "bad.pub"
        good.write_text(REAL.to_string() + "\n")
        bad.write_text("PRIVATE+KEY+something\n")
        assert read_key_file(good) == REAL
        with pytest.raises(KeyTrustError, match=r"bad\.pub: not a verifier key"):
            read_key_file(bad)


class TestDecide:
    def test_given_key_is_used_and_nothing_written(self, tmp_path: Path) -> None:
        """A key given with --key is used (the export must carry it); the known-logs file is not written."""
        known = KnownLogs.load(tmp_path / "k")
        decision = decide(ORIGIN, REAL, known, REAL)
        assert (decision.key, decision.source, decision.pin, decision.flagged) == (REAL, "given", False, False)
        with pytest.raises(KeyTrustError, match="another key"):
            decide(ORIGIN, FORGED, known, REAL)

    def test_given_key_must_agree_with_the_pin(self, tmp_path: Path) -> None:
        """A key given for a log whose pinned key differs is refused, pointing at the file."""
        known = KnownLogs.load(tmp_path / "k").pin(ORIGIN, REAL)
        with pytest.raises(KeyTrustError, match="not the one pinned in"):
            decide(ORIGIN, FORGED, known, FORGED)

    def test_pinned_key_is_used_and_a_changed_key_refused(self, tmp_path: Path) -> None:
        """Without --key the pinned key is used; an export carrying another key is refused, the pin kept."""
        known = KnownLogs.load(tmp_path / "k").pin(ORIGIN, REAL)
        decision = decide(ORIGIN, REAL, known)
        assert (decision.source, decision.pin, decision.flagged) == ("pinned", False, False)
        with pytest.raises(KeyTrustError, match="re-signed by another installation"):
            decide(ORIGIN, FORGED, known)
        assert KnownLogs.load(tmp_path / "k").keys[ORIGIN] == REAL

    def test_first_use_is_flagged(self, tmp_path: Path) -> None:
        """Without --key and without a pin, the export's own key is used, flagged, and to be pinned."""
        decision = decide(ORIGIN, FORGED, KnownLogs.load(tmp_path / "k"))
        assert (decision.key, decision.source, decision.pin, decision.flagged) == (FORGED, "first-use", True, True)
        with pytest.raises(KeyTrustError, match="give one with --key"):
            decide(ORIGIN, None, KnownLogs.load(tmp_path / "k"))
