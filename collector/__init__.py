"""Evidence Collector: SOC 2 evidence collection, filing, digests and sealed snapshots."""

__all__ = ["__version__"]

__version__ = "0.1.0"
