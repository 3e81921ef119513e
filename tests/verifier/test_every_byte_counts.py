"""Random single-byte changes to one export: each one is refused by the verifier, with the key pinned."""

from __future__ import annotations

import random
import shutil
import zipfile
from pathlib import Path

from tarcza_verify.audit_export import verify_audit_export
from tarcza_verify.errors import VerifyError
from tarcza_verify.subject_archive import verify_subject_archive

from .conftest import ArchiveSample, Sample

CHANGES = 240


def _positions(directory: Path, count: int, rng: random.Random) -> list[tuple[str, int]]:
    """``count`` (file, byte position) pairs: every file of the export gets some, the rest by size."""
    files = sorted(p.name for p in directory.iterdir())
    sizes = {name: (directory / name).stat().st_size for name in files}
    chosen = [(name, rng.randrange(sizes[name])) for name in files for _ in range(4) if sizes[name]]
    total = sum(sizes.values())
    while len(chosen) < count:
        point = rng.randrange(total)
        for name in files:
            if point < sizes[name]:
                chosen.append((name, point))
                break
            point -= sizes[name]
    return chosen


def test_every_single_byte_change_to_an_export_is_refused(sample: Sample, tmp_path: Path) -> None:
    """240 random single-byte changes, spread over every file of a range export and of a proofs export,
    each make verification with the trusted key fail."""
    rng = random.Random(19)
    key = sample.signer.verifier()
    refused = 0
    for source in (sample.whole, sample.subject):
        for name, position in _positions(source, CHANGES // 2, rng):
            copy = tmp_path / "copy"
            shutil.copytree(source, copy)
            data = bytearray((copy / name).read_bytes())
            data[position] ^= rng.randrange(1, 256)
            (copy / name).write_bytes(bytes(data))
            try:
                verify_audit_export(copy, key, check_events=True)
            except VerifyError:
                refused += 1
            else:
                raise AssertionError(f"a changed byte {position} of {name} ({source.name}) was not noticed")
            shutil.rmtree(copy)
    assert refused >= CHANGES


def test_every_single_byte_change_to_an_archives_files_is_refused(server_exports: ArchiveSample,
                                                                  tmp_path: Path) -> None:
    """Random single-byte changes to the files inside a server's subject archive are each refused."""
    rng = random.Random(15)
    with zipfile.ZipFile(server_exports.archive) as zf:
        members = {info.filename: zf.read(info) for info in zf.infolist()}
    names = sorted(members)
    for round_ in range(60):
        name = names[round_ % len(names)]
        data = bytearray(members[name])
        data[rng.randrange(len(data))] ^= rng.randrange(1, 256)
        bad = tmp_path / f"bad-{round_}.zip"
        with zipfile.ZipFile(bad, "w", zipfile.ZIP_DEFLATED) as zout:
            for other, content in members.items():
                zout.writestr(other, bytes(data) if other == name else content)
        try:
            verify_subject_archive(bad, server_exports.key)
        except VerifyError:
            bad.unlink()
            continue
        raise AssertionError(f"a changed byte of {name} was not noticed")
