"""The streaming Merkle tree equals the RFC 9162 recursive definition."""

from __future__ import annotations

import hashlib

from collector.seal.merkle import EMPTY_ROOT, MerkleTree


def _mth(leaves: list[bytes]) -> bytes:
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + _mth(leaves[:k]) + _mth(leaves[k:])).digest()


def test_streaming_root_equals_the_recursive_definition_for_every_size() -> None:
    """For 0..130 leaves the one-pass root equals MTH of RFC 9162 section 2.1.1."""
    leaves = [f"leaf {i}".encode() for i in range(131)]
    for n in range(len(leaves) + 1):
        tree = MerkleTree()
        for leaf in leaves[:n]:
            tree.add(leaf)
        assert tree.size == n
        assert tree.root() == _mth(leaves[:n]), n


def test_known_values() -> None:
    """The empty tree is SHA-256 of nothing; one empty leaf is SHA-256(0x00)."""
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    tree = MerkleTree()
    tree.add(b"")
    assert tree.root_hex() == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
