"""Running a stream over accounts and regions: a part that fails is reported, the rest go on."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from connectors.aws._access import Target, as_connector_error
from connectors.sdk.base import StreamOutput
from connectors.sdk.errors import ConnectorError
from connectors.sdk.items import ItemFailure

__all__ = ["run_parts"]


def run_parts(parts: Iterable[tuple[Target, str]],
              read: Callable[[Target, str], Iterator[StreamOutput]]) -> Iterator[StreamOutput]:
    """Yield what ``read`` yields for each (account, region); a part that raises becomes an
    ``ItemFailure`` keyed ``aws:<account>:<region>`` (so the run is ``partial`` with its error).

    Failures are yielded after every part has run, so the cursor progress of healthy parts is
    offered before the pipeline freezes the cursor. When every part fails, the first error
    is raised: the run failed, it is not partial.
    """
    failures: list[ItemFailure] = []
    first: ConnectorError | None = None
    count = 0
    for target, region in parts:
        count += 1
        try:
            yield from read(target, region)
        except Exception as exc:
            error = as_connector_error(exc, f"{target.part(region)}")
            first = first or error
            failures.append(ItemFailure(target.part(region), str(error), type(error).__name__))
    if first is not None and len(failures) == count:
        raise first
    yield from failures
