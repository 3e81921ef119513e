"""A third verifier, written from the README's "Export format" text alone (hashlib, base64, json and an
Ed25519 check), accepts the exports the log writes and refuses a changed one: the specification is enough."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from audit.export import export_log
from audit.repository import EntryFilter
from audit.service import AuditLog
from core.db import make_engine

from .conftest import Sample, build_sample


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def spec_verify(directory: Path, key_line: str) -> int:
    """Verify an export following the README step by step; the number of entries, or AssertionError."""
    # Verifier key: split at the first two '+'; key data is 0x01 || 32-byte Ed25519 key; key ID checks out.
    name, key_id, data = key_line.strip().split("+", 2)
    raw = base64.b64decode(data, validate=True)
    assert raw[0] == 1
    assert len(raw) == 33
    assert sha256(name.encode() + b"\n" + raw)[:4].hex() == key_id
    public = Ed25519PublicKey.from_public_bytes(raw[1:])
    assert (directory / "verifier.key").read_text().strip() == key_line.strip()

    def open_note(note: str) -> str:
        split = note.rindex("\n\n")
        text, signatures = note[:split + 1], note[split + 2:]
        assert signatures.endswith("\n")
        good = 0
        for line in signatures[:-1].split("\n"):
            assert line.startswith("\u2014 ")
            signer, encoded = line[2:].split(" ")
            blob = base64.b64decode(encoded, validate=True)
            if signer == name and blob[:4].hex() == key_id:
                public.verify(blob[4:], text.encode())  # raises if it does not verify
                good += 1
        assert good >= 1
        return text

    manifest_bytes = (directory / "manifest.json").read_bytes()
    signed = open_note((directory / "manifest.sig").read_text())
    assert signed == f"tarcza-audit-export/v1\nmanifest sha256 {hashlib.sha256(manifest_bytes).hexdigest()}\n"
    manifest = json.loads(manifest_bytes)
    members = {"format", "hash_alg", "hash_encoding", "origin", "created_at", "tree_size", "root_hash", "entries",
               "layout", "filters", "files"} | ({"start", "end"} if manifest["layout"] == "range" else set())
    assert set(manifest) == members
    assert set(os.listdir(directory)) == set(manifest["files"]) | {"manifest.json", "manifest.sig"}
    for file, digest in manifest["files"].items():
        assert hashlib.sha256((directory / file).read_bytes()).hexdigest() == digest

    body = open_note((directory / "checkpoint.txt").read_text()).split("\n")
    origin, size, root = body[0], int(body[1]), base64.b64decode(body[2], validate=True)
    assert [line for line in body[3:-1] if line.startswith("time ")] != []  # Tarcza writes its time line
    assert (origin, size, body[2]) == (manifest["origin"], manifest["tree_size"], manifest["root_hash"])

    entries = (directory / "entries.jsonl").read_bytes()
    assert entries.endswith(b"\n") or not entries
    lines = entries.split(b"\n")[:-1]
    assert len(lines) == manifest["entries"]
    leaves = [sha256(b"\x00" + line) for line in lines]

    def node(left: bytes, right: bytes) -> bytes:
        return sha256(b"\x01" + left + right)

    def tiles(a: int, b: int) -> list[tuple[int, int]]:
        out, p = [], a
        while p < b:
            width = 1
            while (p == 0 or p % (width * 2) == 0) and p + width * 2 <= b:
                width *= 2
            out.append((p, width))
            p += width
        return out

    def mth(hashes: list[bytes]) -> bytes:
        if len(hashes) == 1:
            return hashes[0]
        k = 1
        while k * 2 < len(hashes):
            k *= 2
        return node(mth(hashes[:k]), mth(hashes[k:]))

    if manifest["layout"] == "range":
        start, end = manifest["start"], manifest["end"]
        assert (directory / "leaf_hashes.bin").read_bytes() == b"".join(leaves)
        boundary = json.loads((directory / "range.json").read_text())
        known: dict[tuple[int, int], bytes] = {}
        left, right = tiles(0, start), tiles(end, size)
        assert len(boundary["left"]) == len(left)
        assert len(boundary["right"]) == len(right)
        for tile, value in [*zip(left, boundary["left"], strict=True), *zip(right, boundary["right"], strict=True)]:
            known[tile] = base64.b64decode(value, validate=True)
        for p, width in tiles(start, end):
            known[(p, width)] = mth(leaves[p - start:p - start + width])

        def root_of(a: int, b: int) -> bytes:
            if (a, b - a) in known:
                return known[(a, b - a)]
            k = 1
            while k * 2 < b - a:
                k *= 2
            return node(root_of(a, a + k), root_of(a + k, b))

        assert root_of(0, size) == root
    else:
        proofs = (directory / "proofs.jsonl").read_bytes().split(b"\n")
        assert proofs[-1] == b""
        assert len(proofs) == len(lines) + 1
        last = -1
        for leaf, line in zip(leaves, proofs, strict=False):
            item = json.loads(line)
            index, path = item["index"], [base64.b64decode(p, validate=True) for p in item["proof"]]
            assert index > last
            last = index
            # RFC 9162 2.1.3.2, as its text says.
            fn, sn, r = index, size - 1, leaf
            for p in path:
                assert sn != 0
                if fn % 2 == 1 or fn == sn:
                    r = node(p, r)
                    while fn % 2 == 0 and fn != 0:
                        fn, sn = fn >> 1, sn >> 1
                else:
                    r = node(r, p)
                fn, sn = fn >> 1, sn >> 1
            assert sn == 0
            assert r == root
    return len(lines)


class TestThirdVerifier:
    def test_accepts_both_layouts(self, sample: Sample) -> None:
        """The spec-only verifier accepts a range export from index 0 and a one-subject proofs export."""
        key = sample.signer.verifier().to_string()
        assert spec_verify(sample.whole, key) == 40
        assert spec_verify(sample.subject, key) == 14

    def test_accepts_a_middle_range(self, tmp_path: Path) -> None:
        """A range export with boundary nodes on both sides verifies from the spec alone."""
        mid = build_sample(tmp_path)
        engine = make_engine(f"sqlite:///{tmp_path / 'sample.db'}")
        log = AuditLog(engine, mid.signer, checkpoint_every_entries=10_000)
        try:
            export_log(log, tmp_path / "mid", EntryFilter(start=13, end=29))
        finally:
            log.close()
            engine.dispose()
        assert spec_verify(tmp_path / "mid", mid.signer.verifier().to_string()) == 16

    def test_refuses_a_changed_entry(self, sample: Sample, tmp_path: Path) -> None:
        """A changed entry fails the spec-only verifier too (so its acceptance means something)."""
        out = tmp_path / "x"
        shutil.copytree(sample.subject, out)
        (out / "entries.jsonl").write_bytes((out / "entries.jsonl").read_bytes().replace(b'"sms"', b'"tel"', 1))
        with pytest.raises(AssertionError):
            spec_verify(out, sample.signer.verifier().to_string())
