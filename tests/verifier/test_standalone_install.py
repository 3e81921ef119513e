"""The standalone verifier installs into a fresh virtual environment with only `cryptography`, and verifies
the server's exports (audit export .tar.gz and subject archive .zip) there, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.runtime import Runtime
from tests.headers import client_headers

from .conftest import forge_export, server_archive

pytestmark = pytest.mark.slow
VERIFIER_SOURCE = Path(__file__).resolve().parents[2] / "verifier"
# What `pip install ./verifier` may bring: the package, cryptography and cryptography's own cffi
# dependencies; pip (and setuptools/wheel on older Pythons) come with every virtual environment.
ALLOWED = {"tarcza-verify", "cryptography", "cffi", "pycparser", "pip", "setuptools", "wheel"}


@pytest.fixture(scope="module")
def standalone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with `pip install ./verifier` (from a copy of the folder): its bin/."""
    base = tmp_path_factory.mktemp("standalone")
    source = base / "verifier"
    shutil.copytree(VERIFIER_SOURCE, source, ignore=shutil.ignore_patterns("*.egg-info", "build", "__pycache__"))
    subprocess.run([sys.executable, "-m", "venv", str(base / "venv")], check=True, timeout=300)
    python = base / "venv" / "bin" / "python"
    installed = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                                str(source)], cwd=base, capture_output=True, text=True, timeout=900, check=False)
    assert installed.returncode == 0, installed.stderr[-3000:]
    return base / "venv" / "bin"


def run(bin_dir: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TARCZA_", "PYTHON", "VIRTUAL_ENV"))}
    env["HOME"] = str(cwd)  # no pin ever lands in the user's own known-logs file
    return subprocess.run([str(bin_dir / "tarcza-verify"), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300, check=False)


class TestStandaloneInstall:
    def test_nothing_but_cryptography_is_installed(self, standalone: Path, tmp_path: Path) -> None:
        """`pip list` holds tarcza-verify, cryptography (and its cffi) and pip's own, nothing else; the
        installed package imports nothing outside the standard library and cryptography."""
        listed = subprocess.run([str(standalone / "python"), "-m", "pip", "list", "--format=json",
                                 "--disable-pip-version-check"], cwd=tmp_path, capture_output=True, text=True,
                                check=True, timeout=120)
        names = {item["name"].lower() for item in json.loads(listed.stdout)}
        assert {"tarcza-verify", "cryptography"} <= names
        assert names <= ALLOWED, names - ALLOWED
        probe = ("import sys, tarcza_verify.cli, tarcza_verify.run; "
                 "print(sorted({m.split('.')[0] for m in sys.modules} - set(sys.stdlib_module_names)))")
        loaded = subprocess.run([str(standalone / "python"), "-c", probe], cwd=tmp_path, capture_output=True,
                                text=True, check=True, timeout=120)
        # __main__ is the probe itself; _distutils_hack is setuptools' startup hook in every venv.
        assert set(json.loads(loaded.stdout.replace("'", '"'))) <= {
            "tarcza_verify", "cryptography", "_openssl", "cffi", "_cffi_backend", "__main__", "_distutils_hack"}
        no_tarcza = subprocess.run([str(standalone / "python"), "-c", "import audit"], cwd=tmp_path,
                                   capture_output=True, text=True, check=False, timeout=60)
        assert no_tarcza.returncode != 0
        assert run(standalone, "--version", cwd=tmp_path).stdout.startswith("tarcza-verify ")

    def test_verifies_the_servers_exports(self, standalone: Path, initialised_runtime: Runtime,
                                          tmp_path: Path) -> None:
        """An audit export (.tar.gz over HTTP) and a subject archive (.zip over HTTP) verify with the log's
        key; the JSON answer says so; a changed entry is refused with one `error:` line."""
        http = TestClient(create_app(runtime=initialised_runtime),
                          headers=client_headers(initialised_runtime, "audit:export"))
        archive = server_archive(initialised_runtime, tmp_path / "subject.zip")
        tarball = tmp_path / "audit-export.tar.gz"
        tarball.write_bytes(http.get("/v1/audit/export").content)
        key = tmp_path / "log.pub"
        key.write_text(initialised_runtime.audit.verifier().to_string() + "\n")
        known = tmp_path / "known_logs"

        for path, start in ((tarball, "OK: "), (archive, "OK: subject sub_")):
            done = run(standalone, str(path), "--key", str(key), "--known-logs", str(known), cwd=tmp_path)
            assert done.returncode == 0, done.stderr
            assert done.stdout.startswith(start)
            assert "checkpoint issued " in done.stdout
        as_json = run(standalone, str(tarball), "--json", "--key", str(key), "--known-logs", str(known), cwd=tmp_path)
        assert as_json.returncode == 0, as_json.stderr
        assert (json.loads(as_json.stdout)["ok"], json.loads(as_json.stdout)["key_source"]) == (True, "given")
        assert not known.exists()  # a command given its key writes no pin

        changed = tmp_path / "changed.tar.gz"
        with tarfile.open(tarball, "r:gz") as src, tarfile.open(changed, "w:gz") as dst:
            for member in src.getmembers():
                data = src.extractfile(member).read() if member.isfile() else None  # type: ignore[union-attr]
                if data is not None and member.name.endswith("entries.jsonl"):
                    data = data.replace(b'"system"', b'"user"', 1)
                    member.size = len(data)
                dst.addfile(member, io.BytesIO(data) if data is not None else None)
        refused = run(standalone, str(changed), "--key", str(key), "--known-logs", str(known), cwd=tmp_path)
        assert refused.returncode == 1
        assert refused.stderr.startswith("error: entry ")
        assert len(refused.stderr.strip().splitlines()) == 1

    def test_first_use_is_flagged_and_a_forged_export_refused(self, standalone: Path, initialised_runtime: Runtime,
                                                              tmp_path: Path) -> None:
        """Without --key: the first export pins its key (WARNING, exit 3), the next verifies (exit 0), and an
        export of a forged log under the same origin is refused as signed by another key (exit 1)."""
        http = TestClient(create_app(runtime=initialised_runtime),
                          headers=client_headers(initialised_runtime, "audit:export"))
        tarball = tmp_path / "audit-export.tar.gz"
        tarball.write_bytes(http.get("/v1/audit/export").content)
        known = tmp_path / "known_logs"
        first = run(standalone, str(tarball), "--known-logs", str(known), cwd=tmp_path)
        assert first.returncode == 3, first.stderr
        assert "WARNING: first use" in first.stderr
        assert "NOT YET TRUSTED" in first.stdout
        assert run(standalone, str(tarball), "--known-logs", str(known), cwd=tmp_path).returncode == 0
        forged = forge_export(initialised_runtime.audit.origin, tmp_path / "forged")
        refused = run(standalone, str(forged), "--known-logs", str(known), cwd=tmp_path)
        assert refused.returncode == 1
        assert "another key" in refused.stderr
