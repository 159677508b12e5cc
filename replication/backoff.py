"""Delays between sync attempts while the hub does not answer. No I/O here.

Exponential with "full jitter" (a random delay between 0 and the cap), so that
hundreds of kiosks whose link came back at the same moment do not all call the
hub at once (AWS Architecture Blog, "Exponential Backoff And Jitter").
"""

from __future__ import annotations

import random


def delay(attempt: int, base: float = 30.0, cap: float = 3600.0, rand: random.Random | None = None) -> float:
    """Seconds to wait before retry number ``attempt`` (1 for the first retry).

    :param base: the first cap; it doubles with every failed attempt up to ``cap``.
    """
    if attempt < 1:
        return 0.0
    ceiling = min(cap, base * 2 ** min(attempt - 1, 32))
    return (rand or random).uniform(ceiling / 2, ceiling)
