"""Sealed, signed snapshots (chained windows, and Type 1 points in time): sealing, offline
verification, sampling and OSCAL.

The submodules are imported directly (``collector.seal.verify``, ``collector.seal.snapshot``)
so that verification never loads the store or the connectors.
"""

__all__: list[str] = []
