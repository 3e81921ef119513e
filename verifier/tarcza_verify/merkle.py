"""RFC 9162 Merkle tree hashing and proof verification, pure and I/O-free.

This is the one copy of the verifying half of the audit log's tree: the server
(``audit.merkle``, which adds storage and proof generation) imports it from here.

Invariants
----------
- A leaf hash is ``SHA-256(0x00 || data)``, an interior node is
  ``SHA-256(0x01 || left || right)``, the root of the empty tree is ``SHA-256()`` of
  nothing. Every hash is ``HASH_SIZE`` (32) bytes.
- The tree over ``D[0:n]`` is the RFC 9162 tree: ``MTH(D[0:n]) = node_hash(MTH(D[0:k]),
  MTH(D[k:n]))`` where ``k`` is the largest power of two smaller than ``n``.
- A node is keyed ``(level, index)``: the root of the perfect subtree over the leaves
  ``[index << level, (index + 1) << level)``; level 0 holds the leaf hashes.
- :func:`range_keys` tiles any leaf range ``[start, end)`` with the largest aligned perfect
  subtrees, left to right; ``range_keys(0, n)`` are the pieces whose fold is the root of
  the tree of ``n`` leaves (largest first).
- Verifiers follow RFC 9162 2.1.3.2 and 2.1.4.2 step by step, raise
  :class:`~tarcza_verify.errors.InclusionProofError` or
  :class:`~tarcza_verify.errors.ConsistencyProofError` with both sizes and the expected
  and computed roots, and return ``None``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Final, TypeAlias

from tarcza_verify.errors import ConsistencyProofError, InclusionProofError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "NodeKey",
    "consistency_proof_length",
    "empty_root",
    "inclusion_proof_length",
    "leaf_hash",
    "leaf_hashes_of",
    "node_hash",
    "range_keys",
    "range_nodes",
    "root_from_tiles",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE: Final = 32
EMPTY_ROOT: Final = hashlib.sha256(b"").digest()

NodeKey: TypeAlias = tuple[int, int]
"""``(level, index)``: the perfect subtree over ``[index << level, (index + 1) << level)``."""


def leaf_hash(data: bytes) -> bytes:
    """The hash of a leaf: ``SHA-256(0x00 || data)``."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an interior node: ``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def empty_root() -> bytes:
    """The root of the tree with no leaves: ``SHA-256`` of the empty string."""
    return EMPTY_ROOT


def leaf_hashes_of(leaf_inputs: Iterable[bytes]) -> list[bytes]:
    """``leaf_hash`` of each input, in one tight loop."""
    sha256 = hashlib.sha256
    return [sha256(b"\x00" + data).digest() for data in leaf_inputs]


# --- tiling a range of leaves ------------------------------------------------------------


def range_keys(start: int, end: int) -> list[NodeKey]:
    """The aligned perfect subtrees that exactly tile ``[start, end)``, left to right.

    Each piece is the largest perfect subtree that starts at the current position (so is
    aligned to its own width) and fits before ``end``. ``ValueError`` for a negative or
    reversed range.
    """
    if start < 0 or end < start:
        raise ValueError(f"[{start}, {end}) is not a range of leaves")
    keys: list[NodeKey] = []
    position = start
    while position < end:
        level = (position & -position).bit_length() - 1 if position else (end - position).bit_length()
        while (1 << level) > end - position:
            level -= 1
        keys.append((level, position >> level))
        position += 1 << level
    return keys


def _perfect_root(leaf_hashes: Sequence[bytes]) -> bytes:
    level = list(leaf_hashes)
    sha256 = hashlib.sha256
    while len(level) > 1:
        pairs = iter(level)
        level = [sha256(b"\x01" + left + right).digest() for left, right in zip(pairs, pairs, strict=True)]
    return level[0]


def range_nodes(start: int, leaf_hashes: Sequence[bytes]) -> dict[NodeKey, bytes]:
    """The hashes of ``range_keys(start, start + len(leaf_hashes))``, computed from the leaves."""
    nodes: dict[NodeKey, bytes] = {}
    offset = 0
    for level, index in range_keys(start, start + len(leaf_hashes)):
        width = 1 << level
        nodes[(level, index)] = _perfect_root(leaf_hashes[offset:offset + width])
        offset += width
    return nodes


def root_from_tiles(size: int, tiles: Mapping[NodeKey, bytes]) -> bytes:
    """The root of the tree of ``size`` leaves from perfect nodes that tile ``[0, size)``.

    Nodes above the tiles are computed as needed (O(number of tiles) hashes); a gap in the
    tiling raises :class:`ValueError`.
    """
    memo: dict[NodeKey, bytes] = dict(tiles)

    def get(level: int, index: int) -> bytes:
        found = memo.get((level, index))
        if found is not None:
            return found
        if level == 0:
            raise ValueError(f"the tiles do not cover leaf {index}")
        value = node_hash(get(level - 1, 2 * index), get(level - 1, 2 * index + 1))
        memo[(level, index)] = value
        return value

    keys = range_keys(0, size)
    if not keys:
        return EMPTY_ROOT
    value = get(*keys[-1])
    for key in reversed(keys[:-1]):
        value = node_hash(get(*key), value)
    return value


# --- proof lengths: the RFC loops run without hashing -------------------------------------


def inclusion_proof_length(index: int, size: int) -> int:
    """How many hashes the inclusion proof of leaf ``index`` in a tree of ``size`` holds."""
    if index < 0 or size <= index:
        raise ValueError(f"leaf index {index} is not in a tree of size {size}")
    fn, sn, count = index, size - 1, 0
    while sn:
        if fn & 1 or fn == sn:
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        fn >>= 1
        sn >>= 1
        count += 1
    return count


def consistency_proof_length(size1: int, size2: int) -> int:
    """How many hashes the consistency proof from ``size1`` to ``size2`` (``0 < size1 < size2``) holds."""
    if not 0 < size1 < size2:
        raise ValueError(f"no consistency proof of hashes from size {size1} to size {size2}")
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    count = 1  # the path's first element: the old root (perfect old tree) or the proof's first hash
    while sn:
        if fn & 1 or fn == sn:
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        fn >>= 1
        sn >>= 1
        count += 1
    return count - 1 if size1 & (size1 - 1) == 0 else count


# --- verification --------------------------------------------------------------------------


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> None:
    """Check that ``proof`` leads from the leaf hash at ``index`` to ``root`` (RFC 9162 2.1.3.2)."""

    def refuse(detail: str, got: bytes | None = None) -> InclusionProofError:
        return InclusionProofError(detail, index=index, size=size, expected=root.hex(),
                                   got=None if got is None else got.hex())

    if index < 0 or size <= index:
        raise refuse(f"leaf index {index} is outside a tree of size {size}")
    if len(leaf) != HASH_SIZE:
        raise refuse(f"leaf hash has {len(leaf)} bytes, expected {HASH_SIZE}")
    for position, element in enumerate(proof):
        if len(element) != HASH_SIZE:
            raise refuse(f"proof element {position} has {len(element)} bytes, expected {HASH_SIZE}")
    needed = inclusion_proof_length(index, size)
    if len(proof) != needed:
        raise refuse(f"proof has {len(proof)} elements, leaf {index} of {size} needs {needed}")
    fn, sn = index, size - 1
    computed = leaf
    for element in proof:
        if fn & 1 or fn == sn:
            computed = node_hash(element, computed)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            computed = node_hash(computed, element)
        fn >>= 1
        sn >>= 1
    if computed != root:
        raise refuse("inclusion proof leads to a different root", computed)


def verify_consistency(size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]) -> None:
    """Check that the tree ``(size1, root1)`` is a prefix of ``(size2, root2)`` (RFC 9162 2.1.4.2).

    Equal sizes need an empty proof and equal roots; a tree of size 0 has only the empty
    root; a proof from size 0 to a larger size is refused (it proves nothing).
    """

    def refuse(detail: str, expected: bytes | None = None, got: bytes | None = None) -> ConsistencyProofError:
        return ConsistencyProofError(detail, size1=size1, size2=size2,
                                     expected=None if expected is None else expected.hex(),
                                     got=None if got is None else got.hex())

    if size1 < 0 or size2 < 0:
        raise refuse(f"tree sizes must not be negative (size1={size1}, size2={size2})")
    if size1 > size2:
        raise refuse(f"size1 {size1} is greater than size2 {size2}")
    for position, element in enumerate(proof):
        if len(element) != HASH_SIZE:
            raise refuse(f"proof element {position} has {len(element)} bytes, expected {HASH_SIZE}")
    if size1 == size2:
        if proof:
            raise refuse(f"sizes are equal but the proof has {len(proof)} elements")
        if size1 == 0 and root1 != EMPTY_ROOT:
            raise refuse("a tree of size 0 has only the empty root", EMPTY_ROOT, root1)
        if root1 != root2:
            raise refuse("sizes are equal but the roots differ", root1, root2)
        return
    if size1 == 0:
        raise refuse("a consistency proof from the empty tree proves nothing and is refused")
    for what, value in (("root1", root1), ("root2", root2)):
        if len(value) != HASH_SIZE:
            raise refuse(f"{what} has {len(value)} bytes, expected {HASH_SIZE}")
    needed = consistency_proof_length(size1, size2)
    if len(proof) != needed:
        raise refuse(f"proof has {len(proof)} elements, sizes {size1} to {size2} need {needed}")
    path = list(proof)
    if size1 & (size1 - 1) == 0:  # the old tree is perfect: its root starts the path
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    old = new = path[0]
    for element in path[1:]:
        if fn & 1 or fn == sn:
            old = node_hash(element, old)
            new = node_hash(element, new)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            new = node_hash(new, element)
        fn >>= 1
        sn >>= 1
    if old != root1:
        raise refuse("proof does not lead to root1", root1, old)
    if new != root2:
        raise refuse("proof does not lead to root2", root2, new)
