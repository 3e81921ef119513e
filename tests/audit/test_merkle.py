"""Tests of audit.merkle: RFC 9162 conformance vectors, a recursive oracle, and properties."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit import merkle
from audit.errors import ConsistencyProofError, InclusionProofError, ProofRangeError
from audit.merkle import (
    HASH_SIZE,
    MemoryTree,
    NodeKey,
    append_leaves,
    consistency_proof,
    consistency_proof_keys,
    empty_root,
    inclusion_proof,
    inclusion_proof_keys,
    leaf_hash,
    node_hash,
    perfect_keys,
    root_from_leaf_hashes,
    root_from_nodes,
    root_keys,
    subtree_hash,
    verify_consistency,
    verify_inclusion,
)

VECTORS_DIR = Path(__file__).resolve().parents[3] / "shared" / "vectors" / "rfc6962"
_VECTORS_ABSENT = f"conformance vectors not found at {VECTORS_DIR}"

if os.environ.get("CI") == "true" and not VECTORS_DIR.is_dir():
    pytest.fail(f"{_VECTORS_ABSENT}; CI must run the conformance tests", pytrace=False)

PROPERTY = settings(max_examples=200, deadline=None, database=None)

MAX_SIZE = 300
LEAVES = [leaf_hash(i.to_bytes(4, "big")) for i in range(MAX_SIZE)]
TREE = MemoryTree(LEAVES)


# --- helpers ---------------------------------------------------------------------------


def _b64(value: str) -> bytes:
    return base64.b64decode(value, validate=True)


def _vector_params(kind: str) -> list[Any]:
    """One pytest param per JSON case under ``kind``, id = its path relative to the vectors."""
    if not VECTORS_DIR.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason=_VECTORS_ABSENT), id=kind)]
    files = sorted((VECTORS_DIR / kind).rglob("*.json"))
    assert files, f"no {kind} vectors under {VECTORS_DIR}"
    return [pytest.param(path, id=path.relative_to(VECTORS_DIR).as_posix()) for path in files]


def _load(path: Path | None) -> dict[str, Any]:
    if path is None:  # vectors absent: the reference-tree tests skip here
        pytest.skip(_VECTORS_ABSENT)
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _flip(value: bytes, bit: int) -> bytes:
    flipped = bytearray(value)
    flipped[bit // 8] ^= 1 << (bit % 8)
    return bytes(flipped)


# An oracle written straight from the recursive definitions of RFC 9162 2.1.


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def _mth(leaves: list[bytes]) -> bytes:
    if not leaves:
        return empty_root()
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return node_hash(_mth(leaves[:k]), _mth(leaves[k:]))


def _path(m: int, leaves: list[bytes]) -> list[bytes]:
    if len(leaves) == 1:
        return []
    k = _split(len(leaves))
    if m < k:
        return [*_path(m, leaves[:k]), _mth(leaves[k:])]
    return [*_path(m - k, leaves[k:]), _mth(leaves[:k])]


def _subproof(m: int, leaves: list[bytes], whole: bool) -> list[bytes]:
    if m == len(leaves):
        return [] if whole else [_mth(leaves)]
    k = _split(len(leaves))
    if m <= k:
        return [*_subproof(m, leaves[:k], whole), _mth(leaves[k:])]
    return [*_subproof(m - k, leaves[k:], False), _mth(leaves[:k])]


@st.composite
def _size_and_index(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(st.integers(1, MAX_SIZE))
    return size, draw(st.integers(0, size - 1))


@st.composite
def _two_sizes(draw: st.DrawFn) -> tuple[int, int]:
    size2 = draw(st.integers(1, MAX_SIZE))
    return draw(st.integers(1, size2)), size2


# --- tests -----------------------------------------------------------------------------


class TestHashing:
    """leaf_hash, node_hash, empty_root."""

    def test_empty_root_is_sha256_of_nothing(self) -> None:
        """The empty tree's root is SHA-256 of the empty string."""
        assert empty_root().hex() == (
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        )

    def test_leaf_and_node_hashes_are_domain_separated(self) -> None:
        """A leaf and a node over the same bytes hash differently (0x00 vs 0x01 prefix)."""
        left, right = b"\x11" * HASH_SIZE, b"\x22" * HASH_SIZE
        assert leaf_hash(left + right) != node_hash(left, right)
        assert len(leaf_hash(b"")) == len(node_hash(left, right)) == HASH_SIZE


class TestRootFromLeafHashes:
    """root_from_leaf_hashes."""

    def test_reference_tree_roots(self) -> None:
        """Every prefix root of the reference tree matches the published root."""
        reference = _load(VECTORS_DIR / "reference_tree.json" if VECTORS_DIR.is_dir() else None)
        leaves = [leaf_hash(bytes.fromhex(data)) for data in reference["leaf_inputs_hex"]]
        for size, root_hex in enumerate(reference["roots_hex_by_size"]):
            assert root_from_leaf_hashes(leaves[:size]).hex() == root_hex

    def test_matches_recursive_definition(self) -> None:
        """The iterative root equals the recursive MTH for every size up to 130."""
        for size in range(131):
            assert root_from_leaf_hashes(LEAVES[:size]) == _mth(LEAVES[:size])

    def test_refuses_a_leaf_hash_of_the_wrong_length(self) -> None:
        """A leaf hash that is not 32 bytes is refused."""
        with pytest.raises(ValueError, match="leaf hash 1"):
            root_from_leaf_hashes([LEAVES[0], b"short"])


class TestPerfectKeys:
    """perfect_keys and root_keys."""

    def test_decomposes_largest_first(self) -> None:
        """A range splits into one perfect piece per set bit of its length, largest first."""
        assert root_keys(7) == [(2, 0), (1, 2), (0, 6)]
        assert perfect_keys(8, 13) == [(2, 2), (0, 12)]
        assert root_keys(8) == [(3, 0)]
        assert root_keys(0) == []

    def test_misaligned_range_is_refused(self) -> None:
        """A range whose start is not a multiple of its largest piece is refused."""
        with pytest.raises(ValueError, match="multiple"):
            perfect_keys(2, 6)

    def test_negative_or_reversed_range_is_refused(self) -> None:
        """A negative start or an end before the start is a range error."""
        with pytest.raises(ProofRangeError):
            perfect_keys(-1, 3)
        with pytest.raises(ProofRangeError):
            perfect_keys(4, 3)

    @PROPERTY
    @given(st.integers(0, 2**40))
    def test_root_keys_cover_every_leaf_once(self, size: int) -> None:
        """The pieces of root_keys(size) tile [0, size) left to right without gaps."""
        position = 0
        for level, index in root_keys(size):
            assert index << level == position
            position += 1 << level
        assert position == size


class TestSubtreeHash:
    """subtree_hash and root_from_nodes."""

    def test_matches_recursive_definition_for_every_prefix(self) -> None:
        """The root folded from stored nodes equals MTH for every size up to 300."""
        for size in range(MAX_SIZE + 1):
            assert root_from_nodes(size, TREE.nodes) == _mth(LEAVES[:size])

    def test_right_subtree_of_the_recursion(self) -> None:
        """An aligned inner range hashes like MTH of its leaves."""
        assert subtree_hash(256, 300, TREE.nodes) == _mth(LEAVES[256:300])

    def test_missing_node_is_a_key_error(self) -> None:
        """Folding without a needed node raises KeyError rather than guessing."""
        with pytest.raises(KeyError):
            subtree_hash(0, 3, {(1, 0): LEAVES[0]})


class TestInclusionProof:
    """inclusion_proof and inclusion_proof_keys."""

    def test_matches_recursive_path_for_small_trees(self) -> None:
        """For every index of every size up to 64 the proof is RFC 9162 PATH."""
        for size in range(1, 65):
            for index in range(size):
                assert inclusion_proof(index, size, TREE.nodes) == _path(index, LEAVES[:size])

    @pytest.mark.parametrize(("index", "size"), [(0, 0), (5, 5), (6, 5), (-1, 5), (0, -1)])
    def test_index_outside_the_tree_is_a_range_error(self, index: int, size: int) -> None:
        """An index not below the size, or a negative number, raises ProofRangeError."""
        with pytest.raises(ProofRangeError):
            inclusion_proof(index, size, TREE.nodes)
        with pytest.raises(ProofRangeError):
            inclusion_proof_keys(index, size)

    @PROPERTY
    @given(_size_and_index())
    def test_named_keys_are_all_it_reads(self, case: tuple[int, int]) -> None:
        """The proof built from only the nodes the keys name equals the full-store proof."""
        size, index = case
        only = {key: TREE.nodes[key] for key in inclusion_proof_keys(index, size)}
        assert inclusion_proof(index, size, only) == TREE.inclusion_proof(index, size)

    @PROPERTY
    @given(st.integers(2**19 + 1, 2**20).flatmap(
        lambda size: st.tuples(st.just(size), st.integers(0, size - 1))))
    def test_key_count_is_logarithmic(self, case: tuple[int, int]) -> None:
        """Around 2**20 leaves a proof reads at most 2 * 20 nodes."""
        size, index = case
        assert len(inclusion_proof_keys(index, size)) <= 2 * 20


class TestConsistencyProof:
    """consistency_proof and consistency_proof_keys."""

    def test_matches_recursive_proof_for_small_trees(self) -> None:
        """For every 0 < size1 <= size2 <= 64 the proof is RFC 9162 PROOF."""
        for size2 in range(1, 65):
            for size1 in range(1, size2 + 1):
                expected = _subproof(size1, LEAVES[:size2], True)
                assert consistency_proof(size1, size2, TREE.nodes) == expected

    def test_equal_sizes_give_an_empty_proof(self) -> None:
        """Equal sizes, including zero, need no proof."""
        assert consistency_proof(0, 0, TREE.nodes) == []
        assert consistency_proof(7, 7, TREE.nodes) == []

    @pytest.mark.parametrize(("size1", "size2"), [(2, 1), (-1, 3), (0, 3), (1, -1)])
    def test_impossible_sizes_are_a_range_error(self, size1: int, size2: int) -> None:
        """size1 > size2, negative sizes and proofs from the empty tree raise ProofRangeError."""
        with pytest.raises(ProofRangeError):
            consistency_proof(size1, size2, TREE.nodes)
        with pytest.raises(ProofRangeError):
            consistency_proof_keys(size1, size2)

    @PROPERTY
    @given(_two_sizes())
    def test_named_keys_are_all_it_reads(self, sizes: tuple[int, int]) -> None:
        """The proof built from only the nodes the keys name equals the full-store proof."""
        size1, size2 = sizes
        only = {key: TREE.nodes[key] for key in consistency_proof_keys(size1, size2)}
        assert consistency_proof(size1, size2, only) == TREE.consistency_proof(size1, size2)


class TestVerifyInclusion:
    """verify_inclusion."""

    @pytest.mark.parametrize("path", _vector_params("inclusion"))
    def test_conformance_vector(self, path: Path | None) -> None:
        """Each published inclusion case is accepted or refused as its wantErr says."""
        case = _load(path)
        args = (
            _b64(case["leafHash"]),
            case["leafIdx"],
            case["treeSize"],
            [_b64(element) for element in case["proof"] or []],
            _b64(case["root"]),
        )
        if case["wantErr"]:
            with pytest.raises(InclusionProofError):
                verify_inclusion(*args)
        else:
            verify_inclusion(*args)

    @PROPERTY
    @given(_size_and_index())
    def test_generated_proof_verifies(self, case: tuple[int, int]) -> None:
        """Every proof MemoryTree gives verifies against the root of that size."""
        size, index = case
        proof = TREE.inclusion_proof(index, size)
        verify_inclusion(LEAVES[index], index, size, proof, TREE.root(size))

    @PROPERTY
    @given(_size_and_index().filter(lambda case: case[0] > 1), st.data())
    def test_any_flipped_proof_bit_is_refused(
        self, case: tuple[int, int], data: st.DataObject
    ) -> None:
        """Flipping any single bit of any proof element makes the proof fail."""
        size, index = case
        proof = TREE.inclusion_proof(index, size)
        element = data.draw(st.integers(0, len(proof) - 1))
        bit = data.draw(st.integers(0, HASH_SIZE * 8 - 1))
        proof[element] = _flip(proof[element], bit)
        with pytest.raises(InclusionProofError):
            verify_inclusion(LEAVES[index], index, size, proof, TREE.root(size))

    @PROPERTY
    @given(_size_and_index(), st.integers(-1, MAX_SIZE))
    def test_wrong_index_is_refused(self, case: tuple[int, int], other: int) -> None:
        """The proof of one index does not verify for any other index."""
        size, index = case
        if other == index:
            other = index + 1
        proof = TREE.inclusion_proof(index, size)
        with pytest.raises(InclusionProofError):
            verify_inclusion(LEAVES[index], other, size, proof, TREE.root(size))

    @PROPERTY
    @given(_size_and_index(), st.integers(0, MAX_SIZE))
    def test_wrong_size_is_refused(self, case: tuple[int, int], other: int) -> None:
        """The proof for one tree size does not verify against another size and its root."""
        size, index = case
        if other == size:
            other = size + 1 if size < MAX_SIZE else size - 1
        proof = TREE.inclusion_proof(index, size)
        with pytest.raises(InclusionProofError):
            verify_inclusion(LEAVES[index], index, other, proof, TREE.root(other))

    def test_error_carries_the_numbers_that_disagree(self) -> None:
        """A mismatch reports the index, the size, the expected root and the computed one."""
        proof = TREE.inclusion_proof(3, 10)
        wrong_root = TREE.root(11)
        with pytest.raises(InclusionProofError) as caught:
            verify_inclusion(LEAVES[3], 3, 10, proof, wrong_root)
        error = caught.value
        assert (error.index, error.size) == (3, 10)
        assert error.expected == wrong_root.hex()
        assert error.got == TREE.root(10).hex()

    def test_extra_or_missing_element_is_refused(self) -> None:
        """A proof with one element too many or too few is refused by its length."""
        proof = TREE.inclusion_proof(5, 21)
        root = TREE.root(21)
        for bad in (proof[:-1], [*proof, proof[0]], [proof[0], *proof]):
            with pytest.raises(InclusionProofError, match="elements"):
                verify_inclusion(LEAVES[5], 5, 21, bad, root)


class TestVerifyConsistency:
    """verify_consistency."""

    @pytest.mark.parametrize("path", _vector_params("consistency"))
    def test_conformance_vector(self, path: Path | None) -> None:
        """Each published consistency case is accepted or refused as its wantErr says."""
        case = _load(path)
        args = (
            case["size1"],
            case["size2"],
            _b64(case["root1"]),
            _b64(case["root2"]),
            [_b64(element) for element in case["proof"] or []],
        )
        if case["wantErr"]:
            with pytest.raises(ConsistencyProofError):
                verify_consistency(*args)
        else:
            verify_consistency(*args)

    @PROPERTY
    @given(_two_sizes())
    def test_generated_proof_verifies(self, sizes: tuple[int, int]) -> None:
        """Every proof MemoryTree gives verifies between the roots of the two sizes."""
        size1, size2 = sizes
        proof = TREE.consistency_proof(size1, size2)
        verify_consistency(size1, size2, TREE.root(size1), TREE.root(size2), proof)

    @PROPERTY
    @given(_two_sizes().filter(lambda sizes: sizes[0] < sizes[1]), st.data())
    def test_any_flipped_proof_bit_is_refused(
        self, sizes: tuple[int, int], data: st.DataObject
    ) -> None:
        """Flipping any single bit of any proof element makes the proof fail."""
        size1, size2 = sizes
        proof = TREE.consistency_proof(size1, size2)
        element = data.draw(st.integers(0, len(proof) - 1))
        bit = data.draw(st.integers(0, HASH_SIZE * 8 - 1))
        proof[element] = _flip(proof[element], bit)
        with pytest.raises(ConsistencyProofError):
            verify_consistency(size1, size2, TREE.root(size1), TREE.root(size2), proof)

    @PROPERTY
    @given(_two_sizes().filter(lambda sizes: sizes[0] < sizes[1]), st.integers(1, MAX_SIZE),
           st.booleans())
    def test_wrong_size_is_refused(
        self, sizes: tuple[int, int], other: int, change_first: bool
    ) -> None:
        """The proof between two sizes does not verify for another size and its root."""
        size1, size2 = sizes
        proof = TREE.consistency_proof(size1, size2)
        if change_first:
            size1 = other if other != size1 else size1 + 1
        else:
            size2 = other if other != size2 else (size2 + 1 if size2 < MAX_SIZE else size2 - 1)
        with pytest.raises(ConsistencyProofError):
            verify_consistency(size1, size2, TREE.root(size1), TREE.root(size2),
                               proof)

    def test_equal_sizes_need_equal_roots_and_no_proof(self) -> None:
        """Equal sizes verify with an empty proof and equal roots, and fail otherwise."""
        root = TREE.root(9)
        verify_consistency(9, 9, root, root, [])
        verify_consistency(0, 0, empty_root(), empty_root(), [])
        with pytest.raises(ConsistencyProofError):
            verify_consistency(9, 9, root, TREE.root(8), [])
        with pytest.raises(ConsistencyProofError):
            verify_consistency(9, 9, root, root, [root])

    def test_error_carries_the_sizes_and_roots(self) -> None:
        """A mismatch reports both sizes, the expected root and the computed one."""
        proof = TREE.consistency_proof(6, 10)
        wrong = TREE.root(11)
        with pytest.raises(ConsistencyProofError) as caught:
            verify_consistency(6, 10, TREE.root(6), wrong, proof)
        error = caught.value
        assert (error.size1, error.size2) == (6, 10)
        assert (error.expected, error.got) == (wrong.hex(), TREE.root(10).hex())


class TestAppendLeaves:
    """append_leaves."""

    @PROPERTY
    @given(st.lists(st.integers(0, 40), max_size=12))
    def test_batches_equal_one_by_one(self, batch_sizes: list[int]) -> None:
        """Appending in any batch split creates exactly the nodes of one-by-one appends."""
        total = min(sum(batch_sizes), MAX_SIZE)
        nodes: dict[NodeKey, bytes] = {}
        size = 0
        for batch in batch_sizes:
            count = min(batch, total - size)
            frontier = {key: nodes[key] for key in root_keys(size)}
            created = append_leaves(size, frontier, LEAVES[size : size + count])
            assert not created.keys() & nodes.keys(), "a perfect node was written twice"
            nodes.update(created)
            size += count
        one_by_one = MemoryTree()
        for value in LEAVES[:total]:
            one_by_one.append(value)
        assert nodes == dict(one_by_one.nodes)

    def test_reads_only_the_frontier(self) -> None:
        """A frontier of only root_keys(size) is enough, however large the tree."""
        size = 2**40 - 1
        frontier = {key: bytes([key[0]]) * HASH_SIZE for key in root_keys(size)}
        created = append_leaves(size, frontier, [LEAVES[0]])
        assert set(created) == {(level, size >> level) for level in range(41)}

    def test_missing_frontier_node_is_refused(self) -> None:
        """A frontier lacking one of root_keys(size) is refused."""
        with pytest.raises(ValueError, match="frontier"):
            append_leaves(3, {(1, 0): LEAVES[0]}, [LEAVES[3]])

    def test_leaf_hash_of_wrong_length_is_refused(self) -> None:
        """A new leaf hash that is not 32 bytes is refused."""
        with pytest.raises(ValueError, match="leaf hash"):
            append_leaves(0, {}, [b"short"])


class TestMemoryTree:
    """MemoryTree."""

    def test_reference_tree_roots_from_nodes(self) -> None:
        """Every prefix root computed from the stored nodes matches the published root."""
        reference = _load(VECTORS_DIR / "reference_tree.json" if VECTORS_DIR.is_dir() else None)
        inputs = [bytes.fromhex(data) for data in reference["leaf_inputs_hex"]]
        tree = MemoryTree()
        for size, root_hex in enumerate(reference["roots_hex_by_size"]):
            assert tree.size == size
            assert tree.root().hex() == root_hex
            if size < len(inputs):
                assert tree.append(leaf_hash(inputs[size])) == size

    def test_size_beyond_the_tree_is_a_range_error(self) -> None:
        """Asking for a root or proof past the current size raises ProofRangeError."""
        tree = MemoryTree(LEAVES[:5])
        with pytest.raises(ProofRangeError):
            tree.root(6)
        with pytest.raises(ProofRangeError):
            tree.inclusion_proof(0, 6)
        with pytest.raises(ProofRangeError):
            tree.consistency_proof(1, 6)

    def test_nodes_are_read_only(self) -> None:
        """The node view cannot be written: stored perfect nodes are write-once."""
        tree = MemoryTree(LEAVES[:4])
        with pytest.raises(TypeError):
            tree.nodes[(0, 0)] = LEAVES[1]  # type: ignore[index]


class TestRanges:
    """Compact ranges: tiling a leaf range with aligned perfect subtrees, as export verification does."""

    @given(size=st.integers(1, 300), data=st.data())
    def test_range_with_boundaries_gives_the_root(self, size: int, data: st.DataObject) -> None:
        """Leaves [a, b) plus the stored nodes left of a and right of b recompute the root of any tree."""
        start = data.draw(st.integers(0, size - 1))
        end = data.draw(st.integers(start + 1, size))
        leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(size)]
        tree = merkle.MemoryTree(leaves)
        tiles = merkle.range_nodes(start, leaves[start:end])
        tiles.update({k: tree.nodes[k] for k in merkle.root_keys(start)})
        tiles.update({k: tree.nodes[k] for k in merkle.range_keys(end, size)})
        assert merkle.root_from_tiles(size, tiles) == tree.root()
        assert set(merkle.range_nodes(start, leaves[start:end])) <= set(tree.nodes)

    @given(start=st.integers(0, 10_000), length=st.integers(0, 5_000))
    def test_range_keys_tile_exactly(self, start: int, length: int) -> None:
        """range_keys covers [start, end) with aligned, adjacent perfect pieces, O(log n) of them."""
        keys = merkle.range_keys(start, start + length)
        position = start
        for level, index in keys:
            assert index << level == position
            position += 1 << level
        assert position == start + length
        assert len(keys) <= 2 * max(1, (start + length).bit_length())

    def test_missing_tile_is_refused(self) -> None:
        """A tiling with a gap raises instead of inventing a hash."""
        leaves = [merkle.leaf_hash(bytes([i])) for i in range(8)]
        tiles = merkle.range_nodes(0, leaves[:4])
        with pytest.raises(ValueError, match="do not cover"):
            merkle.root_from_tiles(8, tiles)

    def test_leaf_hashes_of_matches_leaf_hash(self) -> None:
        """The batch leaf hasher agrees with leaf_hash."""
        inputs = [bytes([i]) * i for i in range(20)]
        assert merkle.leaf_hashes_of(inputs) == [merkle.leaf_hash(x) for x in inputs]
