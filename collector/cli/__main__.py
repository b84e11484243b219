"""`python -m collector.cli`: the same as the `collector` console script."""

from collector.cli import entry

entry()
