"""The real `tarcza user`, `tarcza client` and `tarcza login` commands, run as subprocesses."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from api.runtime import Runtime
from audit.repository import EntryFilter
from tests.serving import free_port

TARCZA = [sys.executable, "-m", "api"]
PASSWORD = "correct horse battery staple"


def run(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TARCZA, *args], env={**env, "COLUMNS": "200"}, capture_output=True, text=True,
                          timeout=120, input=stdin, check=False)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr + result.stdout
    return result.stdout


def oath(oathtool: str, secret: str, when: datetime) -> str:
    return subprocess.run([oathtool, "--totp", "-b", "--now", when.strftime("%Y-%m-%d %H:%M:%S UTC"), secret],
                          capture_output=True, text=True, check=True, timeout=30).stdout.strip()


def enrol(env: dict[str, str], oathtool: str, username: str) -> str:
    """Enrol TOTP for ``username`` with the scripted two-step flow; return the secret."""
    started = ok(run(env, "user", "enroll-totp", username, "--start-only"))
    assert "█" in started  # the terminal QR code
    secret = next(line.split()[-1] for line in started.splitlines() if line.startswith("secret"))
    confirmed = ok(run(env, "user", "enroll-totp", username, "--code", oath(oathtool, secret, datetime.now(UTC))))
    assert confirmed.count("-") >= 30  # ten recovery codes
    return secret


class TestUserCommands:
    def test_add_enrol_list_reset_disable(self, cli_env: dict[str, str], oathtool: str, settings) -> None:  # type: ignore[no-untyped-def]
        """Operators add a user, enrol TOTP (terminal QR, --code), list, reset 2FA and disable, all audited."""
        ok(run(cli_env, "init"))
        assert "created user jan.nowak" in ok(run(cli_env, "user", "add", "jan.nowak", "-r", "dpo", "-r", "auditor",
                                                  "--password-stdin", stdin=PASSWORD + "\n"))
        enrol(cli_env, oathtool, "jan.nowak")
        users = json.loads(ok(run(cli_env, "user", "list", "--json")))
        assert users[0]["totp_enrolled"] is True
        assert users[0]["roles"] == ["auditor", "dpo"]
        ok(run(cli_env, "user", "assign", "jan.nowak", "SPR-7"))
        ok(run(cli_env, "user", "reset-2fa", "jan.nowak"))
        ok(run(cli_env, "user", "disable", "jan.nowak"))
        users = json.loads(ok(run(cli_env, "user", "list", "--json")))
        assert users[0]["totp_enrolled"] is False
        assert users[0]["disabled"] is True
        assert users[0]["assigned_cases"] == ["SPR-7"]
        rt = Runtime(settings)
        try:
            events = [e.event for e in rt.audit.query(EntryFilter(event_type="identity.*")).items]
        finally:
            rt.close()
        types = [e["type"] for e in events]
        assert types[:2] == ["identity.user_created", "identity.totp_enrolled"]
        assert "identity.totp_reset" in types
        assert "identity.user_disabled" in types
        assert events[0]["actor"] == {"id": events[0]["actor"]["id"], "kind": "system"}
        assert events[0]["actor"]["id"].startswith("operator:")

    def test_errors_are_one_line(self, cli_env: dict[str, str]) -> None:
        """A bad role, a weak password or an unknown user gives one `error:` line and exit 1."""
        ok(run(cli_env, "init"))
        for args, stdin in ((("user", "add", "ala.ma", "-r", "boss", "--password-stdin"), PASSWORD + "\n"),
                            (("user", "add", "ala.ma", "-r", "dpo", "--password-stdin"), "short\n"),
                            (("user", "disable", "nobody"), None),
                            (("user", "enroll-totp", "nobody", "--code", "123456"), None)):
            result = run(cli_env, *args, stdin=stdin)
            assert result.returncode == 1, result.stdout
            assert result.stderr.startswith("error: ")
            assert len(result.stderr.strip().splitlines()) == 1


class TestClientCommands:
    def test_add_list_rotate_revoke(self, cli_env: dict[str, str]) -> None:
        """A client's secret is printed once at creation and rotation; list never shows it; revoke ends it."""
        ok(run(cli_env, "init"))
        out = ok(run(cli_env, "client", "add", "dialer", "-s", "contacts:write", "-p", "debt_collection",
                     "--allow-ip", "10.0.0.0/8"))
        client_id = next(line.split()[-1] for line in out.splitlines() if line.startswith("client_id"))
        secret = next(line.split()[-1] for line in out.splitlines() if line.startswith("client_secret"))
        listed = ok(run(cli_env, "client", "list", "--json"))
        assert secret not in listed
        assert json.loads(listed)[0]["ip_allowlist"] == ["10.0.0.0/8"]
        rotated = ok(run(cli_env, "client", "rotate", client_id, "--overlap-hours", "1"))
        assert "older secrets stop working" in rotated
        assert secret not in rotated
        ok(run(cli_env, "client", "revoke", client_id))
        assert json.loads(ok(run(cli_env, "client", "list", "--json")))[0]["revoked"] is True
        bad = run(cli_env, "client", "add", "x", "-s", "audit:read", "-p", "fun")
        assert bad.returncode == 1
        assert "unknown purpose" in bad.stderr


class TestLogin:
    def test_login_stores_a_private_session_file(self, cli_env: dict[str, str], oathtool: str,
                                                 tmp_path: Path) -> None:
        """`tarcza login --server` with password and an oathtool code saves a working token in a 0600 file."""
        ok(run(cli_env, "init"))
        ok(run(cli_env, "user", "add", "ola.nowak", "-r", "compliance_officer", "--password-stdin",
               stdin=PASSWORD + "\n"))
        secret = enrol(cli_env, oathtool, "ola.nowak")
        port = free_port()
        server = subprocess.Popen([*TARCZA, "serve", "--port", str(port)], env=cli_env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            base = f"http://127.0.0.1:{port}"
            _wait_healthy(base, server)
            session_file = tmp_path / "cfg" / "session"
            env = {**cli_env, "TARCZA_SESSION_FILE": str(session_file)}
            code = oath(oathtool, secret, datetime.now(UTC) + timedelta(seconds=30))  # next step: not a replay
            out = ok(run(env, "login", "--server", base, "--username", "ola.nowak", "--password-stdin",
                         "--code", code, stdin=PASSWORD + "\n"))
            assert "second factor verified" in out
            assert session_file.stat().st_mode & 0o777 == 0o600
            saved = json.loads(session_file.read_text())
            assert saved["server"] == base
            assert saved["token"].startswith("tzs_")
            request = urllib.request.Request(base + "/v1/auth/me",  # noqa: S310 - local test server
                                             headers={"Authorization": f"Bearer {saved['token']}"})
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - local test server
                assert json.loads(response.read())["roles"] == ["compliance_officer"]
            wrong = run(env, "login", "--server", base, "--username", "ola.nowak", "--password-stdin",
                        "--code", "000000", stdin=PASSWORD + "\n")
            assert wrong.returncode == 1
            assert wrong.stderr.startswith("error: ")
        finally:
            server.terminate()
            server.wait(timeout=20)


def _wait_healthy(base: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=2) as response:  # noqa: S310 - local test server
                if response.status == 200:
                    return
        except OSError:
            if server.poll() is not None:
                pytest.fail("server exited: " + (server.stderr.read().decode() if server.stderr else ""))
            time.sleep(0.2)
    pytest.fail("server did not answer /healthz within 60 s")


@pytest.fixture(autouse=True)
def _no_home_session(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Never touch the real ~/.config/tarcza/session."""
    monkeypatch.setenv("HOME", str(tmp_path))
