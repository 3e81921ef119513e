"""The gate is the only way to plaintext, and the erasure decision the only way to shredding: an import scan.

Every Python module of Tarcza's packages is parsed (not imported) and searched for the names
that open sealed data, write ``vault.access`` entries, or shred. Each may appear only in the
modules listed here; anything else fails, naming the file, the line and the name. On the code
before issue 16 this failed: ``vault/service.py`` and ``vault/sealing.py`` opened fields, and
``api/routers/vault.py`` and ``api/console/subjects.py`` wrote ``vault.access`` themselves.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "audit", "identity", "policies", "vault", "contacts", "gdpr", "api", "bench", "tarcza_client")

OPENERS = frozenset({"open_field", "open_fields", "decrypt_stream", "open_rows"})
"""The primitives that turn ciphertext into plaintext (vault.envelope, vault.blobs) and the gate's own helper."""
GATE = "vault/access.py"
OPENER_HOMES = {"vault/envelope.py", "vault/blobs.py", GATE}

SHREDDERS = frozenset({"shred", "shred_many", "delete_recording"})
"""The vault's shredding methods (vault.shredding), reachable only with the erasure decision's clearance."""
SHRED_CALLERS = {"gdpr/erasure.py", "gdpr/retention_job.py", "vault/service.py", "vault/shredding.py"}
CLEARANCE_BUILDERS = {"gdpr/erasure.py"}
ACCESS_WRITERS = {GATE}
"""Modules that may build a ``vault.access`` event or its payload (besides the catalogue in audit/events.py)."""


def modules(root: Path = ROOT) -> Iterator[tuple[str, ast.Module]]:
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            yield path.relative_to(root).as_posix(), ast.parse(path.read_text(encoding="utf-8"), str(path))


def opener_uses(root: Path = ROOT) -> list[str]:
    """Every import or attribute use of an opening primitive outside the gate and the modules defining them."""
    out = []
    for name, tree in modules(root):
        if name in OPENER_HOMES:
            continue
        for node in ast.walk(tree):
            used: set[str] = set()
            if isinstance(node, ast.ImportFrom):
                used = {alias.name for alias in node.names} & OPENERS
            elif isinstance(node, ast.Attribute) and node.attr in OPENERS:
                used = {node.attr}
            elif isinstance(node, ast.Attribute) and node.attr == "open" and _is_sealer(node.value):
                used = {"FieldSealer.open"}
            out += [f"{name}:{node.lineno}: {u}" for u in sorted(used)]
    return out


def _is_sealer(node: ast.expr) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "sealer"


def access_writers(root: Path = ROOT) -> list[str]:
    """Every place outside the gate that builds a ``vault.access`` event or a VaultAccessPayload."""
    out = []
    for name, tree in modules(root):
        if name in ACCESS_WRITERS or name == "audit/events.py":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                    and node.args[0].value == "vault.access" and _callee(node) in {"record", "build_event",
                                                                                    "build_events", "append"}:
                out.append(f"{name}:{node.lineno}: {_callee(node)}('vault.access')")
            if isinstance(node, ast.ImportFrom) and any(a.name == "VaultAccessPayload" for a in node.names):
                out.append(f"{name}:{node.lineno}: imports VaultAccessPayload")
    return out


def shredding_calls(root: Path = ROOT) -> list[str]:
    """Calls of the vault's shredding outside the erasure decision (and its retention job), and clearances built
    anywhere but the erasure decision."""
    out = []
    for name, tree in modules(root):
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            callee = _callee(node)
            if callee in SHREDDERS and isinstance(node.func, ast.Attribute) and name not in SHRED_CALLERS:
                out.append(f"{name}:{node.lineno}: .{callee}(...)")
            if callee == "ErasureClearance" and name not in CLEARANCE_BUILDERS:
                out.append(f"{name}:{node.lineno}: ErasureClearance(...)")
    return out


def _callee(node: ast.Call) -> str:
    func = node.func
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


class TestOnlyTheGateOpens:
    def test_nothing_but_the_gate_imports_the_opening_functions(self) -> None:
        """open_field, open_fields, decrypt_stream (and FieldSealer.open, gone) appear only in vault/access.py."""
        assert opener_uses() == []

    def test_nothing_but_the_gate_writes_access_entries(self) -> None:
        """No router, page or service but the gate builds a vault.access entry or its payload."""
        assert access_writers() == []

    def test_nothing_but_the_erasure_decision_shreds(self) -> None:
        """Shredding is called only by the erasure decision (and the retention job with its clearance), and only
        the erasure decision builds a clearance."""
        assert shredding_calls() == []

    def test_the_scan_sees_what_it_looks_for(self, tmp_path: Path) -> None:
        """A module that imports open_field, writes a vault.access entry and shreds is reported three times."""
        bad = tmp_path / "api" / "sneaky.py"
        bad.parent.mkdir(parents=True)
        bad.write_text("from vault.envelope import open_field\n"
                       "def f(runtime, p, t):\n"
                       "    runtime.audit.record('vault.access', actor=p.actor, payload={})\n"
                       "    runtime.vault.shred(p, t, ErasureClearance(frozenset({t})))\n", encoding="utf-8")
        for package in PACKAGES:
            (tmp_path / package).mkdir(exist_ok=True)
        assert opener_uses(tmp_path) == ["api/sneaky.py:1: open_field"]
        assert access_writers(tmp_path) == ["api/sneaky.py:3: record('vault.access')"]
        assert sorted(shredding_calls(tmp_path)) == ["api/sneaky.py:4: .shred(...)",
                                                     "api/sneaky.py:4: ErasureClearance(...)"]


@pytest.mark.parametrize("package", PACKAGES)
def test_every_package_is_scanned(package: str) -> None:
    """Each package the scan names exists, so a renamed package cannot silently drop out of it."""
    assert (ROOT / package).is_dir()
