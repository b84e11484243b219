"""Connectors to source systems, and the SDK they are written with."""

__all__: list[str] = []
