"""tarcza_verify.merkle: the proof lengths the verifier expects are the lengths the log generates."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from audit import merkle
from tarcza_verify import merkle as verify_merkle

PROPERTY = settings(max_examples=500, deadline=None, database=None)


class TestProofLengths:
    @PROPERTY
    @given(st.integers(1, 2**40).flatmap(lambda size: st.tuples(st.just(size), st.integers(0, size - 1))))
    def test_inclusion_length_is_the_generated_length(self, case: tuple[int, int]) -> None:
        """The verifier's inclusion proof length is the number of hashes the log's generator names."""
        size, index = case
        assert verify_merkle.inclusion_proof_length(index, size) == len(merkle._inclusion_ranges(index, size))

    @PROPERTY
    @given(st.integers(2, 2**40).flatmap(lambda size: st.tuples(st.integers(1, size - 1), st.just(size))))
    def test_consistency_length_is_the_generated_length(self, sizes: tuple[int, int]) -> None:
        """The verifier's consistency proof length is the number of hashes the log's generator names."""
        size1, size2 = sizes
        assert verify_merkle.consistency_proof_length(size1, size2) == len(merkle._consistency_ranges(size1, size2))

    def test_range_keys_of_a_prefix_are_the_roots_pieces(self) -> None:
        """Tiling [0, n) gives the pieces whose fold is the root of n leaves, largest first."""
        for size in range(300):
            assert verify_merkle.range_keys(0, size) == merkle.root_keys(size)
