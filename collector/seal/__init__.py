"""Sealed, signed, chained window snapshots: sealing, offline verification, sampling and OSCAL.

The submodules are imported directly (``collector.seal.verify``, ``collector.seal.snapshot``)
so that verification never loads the store or the connectors.
"""

__all__: list[str] = []
