"""The order a chain must have (no gap, no window twice, amendments in turn), beyond its links.

The links (``previous``) stop anyone without the key; these rules stop the key holder from
signing a chain the sealer would never make: a month left out, a window sealed twice with
different contents, an amendment of a window that was never sealed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.seal.verify import VerificationError, Verified, _ChainOrder


def _v(window: str, seq: int = 0, sealed: str = "2026-11-01T00:00:00.000000Z") -> Verified:
    return Verified(path=Path(f"{window}.{seq}.tar"), window_id=window, seq=seq, records=0,
                    merkle_root="", sums_sha256="", signature="", key="", sealed_at=sealed,
                    previous=None, controls={}, timestamp=None, timezone="Europe/Berlin")


def _check(*chain: Verified) -> None:
    order = _ChainOrder()
    for v in chain:
        order.add(v)


def test_chains_the_sealer_makes_pass() -> None:
    _check(_v("2026-08"), _v("2026-09"), _v("2026-10"), _v("2026-09", 1), _v("2026-11"),
           _v("2026-09", 2))
    # Given from the middle: an amendment of a window sealed before the first one given.
    _check(_v("2026-10"), _v("2026-09", 3), _v("2026-11"))
    _check(_v("2026-09", 2), _v("2026-10"))


@pytest.mark.parametrize(("chain", "problem"), [
    ((_v("2026-09"), _v("2026-11")), "2026-10 comes between them: the chain has a gap"),
    ((_v("2026-09"), _v("2026-10"), _v("2026-10")), "window 2026-10 is sealed a second time"),
    ((_v("2026-09"), _v("2026-10"), _v("2026-11", 5)), "a window this chain never sealed"),
    ((_v("2026-09"), _v("2026-09", 2)), "amendment 2 of 2026-09 follows number 0"),
    ((_v("2026-09", sealed="2026-10-02T00:00:00.000000Z"),
      _v("2026-10", sealed="2026-10-01T00:00:00.000000Z")), "is before the snapshot it follows"),
])
def test_chains_the_sealer_never_makes_are_refused(chain: tuple[Verified, ...], problem: str) -> None:
    with pytest.raises(VerificationError, match=problem):
        _check(*chain)
