"""Merkle tree hashing and proofs of the audit log: RFC 9162 section 2.1, pure and I/O-free.

Invariants
----------
- A leaf hash is ``SHA-256(0x00 || data)``, an interior node is
  ``SHA-256(0x01 || left || right)``, the root of the empty tree is ``SHA-256()`` of
  nothing. Every hash is ``HASH_SIZE`` (32) bytes.
- The tree over the leaves ``D[0:n]`` is the RFC 9162 tree:
  ``MTH(D[0:n]) = node_hash(MTH(D[0:k]), MTH(D[k:n]))`` where ``k`` is the largest power
  of two smaller than ``n``.
- Only *perfect* nodes are ever stored. A perfect node is keyed ``(level, index)`` and is
  the root of the complete subtree over the leaves
  ``[index << level, (index + 1) << level)``; level 0 holds the leaf hashes. A perfect
  node is final as soon as its last leaf is appended, so storage is write-once and the
  log is append-only by construction.
- Every other hash (the root at any size, every proof element) is the hash of a leaf
  range whose perfect pieces :func:`perfect_keys` names (at most one per level) and
  :func:`subtree_hash` folds right to left.
- The proof generators read exactly the nodes that :func:`inclusion_proof_keys` and
  :func:`consistency_proof_keys` name: at most ``2 * ceil(log2(n))`` of them, so a store
  fetches them in one query. :func:`append_leaves` reads only the frontier
  (``root_keys(size)``), whatever the size of the tree.
- Verifiers raise :class:`InclusionProofError` or :class:`ConsistencyProofError` and
  return ``None``; they never return a bool to ignore. Generators raise
  :class:`ProofRangeError` for an index or size the tree does not have.
- Hashing, range tiling and the two verifiers are :mod:`tarcza_verify.merkle`'s, the
  standalone verifier's, re-exported here: the server and auditors run one copy of them
  (ADR 0019). This module adds what only the log needs: stored perfect nodes, proof
  generation and appending. The verifiers here raise :mod:`audit.errors`' classes.

Nothing here performs I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType

from audit.errors import ProofRangeError, from_verifier
from tarcza_verify import errors as _verify_errors
from tarcza_verify import merkle as _verify
from tarcza_verify.merkle import (
    HASH_SIZE,
    NodeKey,
    empty_root,
    leaf_hash,
    leaf_hashes_of,
    node_hash,
    range_keys,
    range_nodes,
    root_from_tiles,
)

__all__ = [
    "HASH_SIZE",
    "MemoryTree",
    "NodeKey",
    "append_leaves",
    "consistency_proof",
    "consistency_proof_keys",
    "empty_root",
    "inclusion_proof",
    "inclusion_proof_keys",
    "leaf_hash",
    "leaf_hashes_of",
    "node_hash",
    "perfect_keys",
    "range_keys",
    "range_nodes",
    "root_from_leaf_hashes",
    "root_from_nodes",
    "root_from_tiles",
    "root_keys",
    "subtree_hash",
    "verify_consistency",
    "verify_inclusion",
]

_LeafRange = tuple[int, int]


# --- hashing ---------------------------------------------------------------------------


def _require_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise ValueError(f"{what} has {len(value)} bytes, expected {HASH_SIZE}")


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_from_leaf_hashes(leaf_hashes: Sequence[bytes]) -> bytes:
    """``MTH`` of the given leaf hashes, level by level in O(n) time.

    Pairing each level from the left and carrying an unpaired last node up unchanged
    builds exactly the RFC 9162 tree (its right edge is the only ragged part).
    """
    level = list(leaf_hashes)
    if not level:
        return empty_root()
    for position, value in enumerate(level):
        _require_hash(value, f"leaf hash {position}")
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


# --- perfect nodes ---------------------------------------------------------------------


def perfect_keys(start: int, end: int) -> list[NodeKey]:
    """The perfect subtrees that make up the leaf range ``[start, end)``, largest first.

    The range has one piece per set bit of ``end - start``. ``start`` must be a multiple
    of the largest piece, as it always is for a range met in the RFC 9162 recursion,
    so that every piece is a stored perfect node; otherwise :class:`ValueError`.
    """
    if start < 0 or end < start:
        raise ProofRangeError(f"leaf range [{start}, {end}) is not a range of leaves")
    count = end - start
    if count == 0:
        return []
    top = count.bit_length() - 1
    if start % (1 << top):
        raise ValueError(f"leaf range [{start}, {end}) does not start at a multiple of {1 << top}")
    keys: list[NodeKey] = []
    position = start
    for level in range(top, -1, -1):
        if count >> level & 1:
            keys.append((level, position >> level))
            position += 1 << level
    return keys


def root_keys(size: int) -> list[NodeKey]:
    """The perfect nodes whose fold is the root of the tree of ``size`` leaves."""
    return perfect_keys(0, size)


def subtree_hash(start: int, end: int, nodes: Mapping[NodeKey, bytes]) -> bytes:
    """``MTH(D[start:end])`` from stored perfect nodes, folded right to left.

    Raises :class:`KeyError` if ``nodes`` lacks one of ``perfect_keys(start, end)``.
    """
    keys = perfect_keys(start, end)
    if not keys:
        return empty_root()
    value = nodes[keys[-1]]
    for key in reversed(keys[:-1]):
        value = node_hash(nodes[key], value)
    return value


def root_from_nodes(size: int, nodes: Mapping[NodeKey, bytes]) -> bytes:
    """The root of the tree of ``size`` leaves from stored perfect nodes."""
    return subtree_hash(0, size, nodes)


# --- proof shapes ----------------------------------------------------------------------


def _inclusion_ranges(index: int, size: int) -> list[_LeafRange]:
    """The leaf ranges whose hashes make ``PATH(index, D[0:size])``, leaf side first."""
    if index < 0 or size <= index:
        raise ProofRangeError(f"leaf index {index} is not in a tree of size {size}")
    ranges: list[_LeafRange] = []
    start, end = 0, size
    while end - start > 1:
        middle = start + _split(end - start)
        if index < middle:
            ranges.append((middle, end))
            end = middle
        else:
            ranges.append((start, middle))
            start = middle
    ranges.reverse()
    return ranges


def _consistency_ranges(size1: int, size2: int) -> list[_LeafRange]:
    """The leaf ranges whose hashes make ``PROOF(size1, D[0:size2])``, in proof order."""
    if size1 < 0 or size2 < size1:
        raise ProofRangeError(f"no consistency proof from size {size1} to size {size2}")
    if size1 == size2:
        return []
    if size1 == 0:
        raise ProofRangeError(
            f"no consistency proof from the empty tree to size {size2}: every tree extends it"
        )
    ranges: list[_LeafRange] = []
    start, end = 0, size2
    whole_old_tree = True  # the "b" flag of RFC 9162 SUBPROOF
    while end != size1:  # invariant: start < size1 <= end
        middle = start + _split(end - start)
        if size1 <= middle:
            ranges.append((middle, end))
            end = middle
        else:
            ranges.append((start, middle))
            start = middle
            whole_old_tree = False
    if not whole_old_tree:
        ranges.append((start, end))
    ranges.reverse()
    return ranges


def _keys_of(ranges: Iterable[_LeafRange]) -> set[NodeKey]:
    return {key for start, end in ranges for key in perfect_keys(start, end)}


def inclusion_proof_keys(index: int, size: int) -> set[NodeKey]:
    """Every perfect node :func:`inclusion_proof` reads: at most ``2 * ceil(log2(size))``."""
    return _keys_of(_inclusion_ranges(index, size))


def inclusion_proof(index: int, size: int, nodes: Mapping[NodeKey, bytes]) -> list[bytes]:
    """RFC 9162 2.1.3.1 ``PATH(index, D[0:size])``, the leaf's sibling first."""
    return [subtree_hash(start, end, nodes) for start, end in _inclusion_ranges(index, size)]


def consistency_proof_keys(size1: int, size2: int) -> set[NodeKey]:
    """Every perfect node :func:`consistency_proof` reads."""
    return _keys_of(_consistency_ranges(size1, size2))


def consistency_proof(size1: int, size2: int, nodes: Mapping[NodeKey, bytes]) -> list[bytes]:
    """RFC 9162 2.1.4.1 ``PROOF(size1, D[0:size2])``.

    Empty when the sizes are equal; :class:`ProofRangeError` when ``size1 > size2``, a
    size is negative, or ``size1 == 0 < size2`` (the verifier refuses that case).
    """
    return [subtree_hash(start, end, nodes) for start, end in _consistency_ranges(size1, size2)]


# --- verification (the standalone verifier's, with this package's errors) -----------------


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``proof`` leads from the leaf at ``index`` to ``root`` (RFC 9162 2.1.3.2).

    Raises :class:`~audit.errors.InclusionProofError` carrying the index, the size and,
    when a root was computed, the expected and the computed root in hex.
    """
    try:
        _verify.verify_inclusion(leaf_hash, index, size, proof, root)
    except _verify_errors.VerifyError as exc:
        raise from_verifier(exc) from None


def verify_consistency(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree ``(size1, root1)`` is a prefix of ``(size2, root2)`` (RFC 9162 2.1.4.2).

    Equal sizes need an empty proof and equal roots (compared as given), and a tree of
    size 0 has only the root ``empty_root()``. A proof from size 0 to a larger size is
    refused: the empty tree is a prefix of every tree, so there is nothing to prove.
    Raises :class:`~audit.errors.ConsistencyProofError` carrying both sizes and, when a
    root does not match, the expected and the computed root in hex.
    """
    try:
        _verify.verify_consistency(size1, size2, root1, root2, proof)
    except _verify_errors.VerifyError as exc:
        raise from_verifier(exc) from None


# --- appending -------------------------------------------------------------------------


def append_leaves(
    size: int, frontier: Mapping[NodeKey, bytes], new_leaf_hashes: Sequence[bytes]
) -> dict[NodeKey, bytes]:
    """Every perfect node that appending ``new_leaf_hashes`` to a tree of ``size`` creates.

    ``frontier`` holds the hashes of ``root_keys(size)`` and nothing else is read. The
    result holds the level-0 keys of the new leaves and every higher node they complete;
    the work is O(k + log n) for k new leaves.
    """
    if size < 0:
        raise ValueError(f"tree size {size} is negative")
    stack: list[tuple[int, int, bytes]] = []  # the current root_keys, largest first
    for level, index in root_keys(size):
        try:
            stack.append((level, index, frontier[(level, index)]))
        except KeyError:
            raise ValueError(
                f"frontier of size {size} lacks node {(level, index)}"
            ) from None
    created: dict[NodeKey, bytes] = {}
    position = size
    for new_leaf in new_leaf_hashes:
        _require_hash(new_leaf, f"leaf hash {position}")
        level, index, value = 0, position, new_leaf
        created[(level, index)] = value
        while stack and stack[-1][0] == level:
            _, _, left = stack.pop()
            value = node_hash(left, value)
            level, index = level + 1, index >> 1
            created[(level, index)] = value
        stack.append((level, index, value))
        position += 1
    return created


class MemoryTree:
    """An in-memory store of perfect nodes: the reference for tests and the offline verifier."""

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._size = 0
        self._nodes: dict[NodeKey, bytes] = {}
        self.extend(leaf_hashes)

    def __repr__(self) -> str:
        return f"MemoryTree(size={self._size})"

    @property
    def size(self) -> int:
        """The number of leaves appended so far."""
        return self._size

    @property
    def nodes(self) -> Mapping[NodeKey, bytes]:
        """Every perfect node, read-only: stored nodes are write-once."""
        return MappingProxyType(self._nodes)

    def append(self, leaf_hash: bytes) -> int:
        """Append one leaf hash and return its index."""
        index = self._size
        self.extend((leaf_hash,))
        return index

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Append leaf hashes in order."""
        batch = list(leaf_hashes)
        frontier = {key: self._nodes[key] for key in root_keys(self._size)}
        self._nodes.update(append_leaves(self._size, frontier, batch))
        self._size += len(batch)

    def _size_or_current(self, size: int | None) -> int:
        if size is None:
            return self._size
        if size < 0 or size > self._size:
            raise ProofRangeError(f"tree size {size} is not between 0 and {self._size}")
        return size

    def root(self, size: int | None = None) -> bytes:
        """The root at ``size`` leaves (default: the current size)."""
        return root_from_nodes(self._size_or_current(size), self._nodes)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """The inclusion proof of leaf ``index`` in the tree of ``size`` leaves."""
        return inclusion_proof(index, self._size_or_current(size), self._nodes)

    def consistency_proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        """The consistency proof from ``size1`` leaves to ``size2`` (default: current)."""
        size2 = self._size_or_current(size2)
        return consistency_proof(size1, size2, self._nodes)
