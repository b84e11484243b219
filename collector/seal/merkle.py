"""RFC 9162 Merkle tree hash, computed in one pass with O(log n) memory."""

from __future__ import annotations

import hashlib

__all__ = ["EMPTY_ROOT", "MerkleTree", "leaf_hash", "node_hash"]

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 || data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


class MerkleTree:
    """Appends leaves and yields the RFC 9162 tree head without keeping the leaves.

    The stack holds one hash per set bit of the leaf count: the roots of the perfect
    subtrees that make up the tree so far, largest first. Folding them right to left gives
    MTH(D[n]) exactly as RFC 9162 section 2.1.1 splits at the largest power of two below n.
    """

    __slots__ = ("_stack", "size")

    def __init__(self) -> None:
        self._stack: list[bytes] = []
        self.size = 0

    def add(self, data: bytes) -> None:
        """Append the leaf whose data is ``data``."""
        self.add_hash(leaf_hash(data))

    def add_hash(self, leaf: bytes) -> None:
        """Append a leaf given its leaf hash."""
        stack = self._stack
        stack.append(leaf)
        n = self.size
        while n & 1:
            right = stack.pop()
            stack[-1] = node_hash(stack[-1], right)
            n >>= 1
        self.size += 1

    def root(self) -> bytes:
        """MTH of the leaves appended so far (SHA-256 of the empty string for none)."""
        if not self._stack:
            return EMPTY_ROOT
        acc = self._stack[-1]
        for left in reversed(self._stack[:-1]):
            acc = node_hash(left, acc)
        return acc

    def root_hex(self) -> str:
        """The root as lower-case hex."""
        return self.root().hex()
