"""Local stand-ins for the vendor APIs, used by `collector demo` and the tests."""

__all__: list[str] = []
