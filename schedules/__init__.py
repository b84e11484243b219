"""The daemon: scheduled collection, digests and sealing."""

__all__: list[str] = []
