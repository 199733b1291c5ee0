"""For the benchmarks that read a simulated pool over XML-RPC, then work on what they read."""

from __future__ import annotations

import time
from typing import Any, Callable


def read_then_assess(read: Callable[[Any, str], Any], assess: Callable[[Any], Any],
                     url: str = "sim:large-pool") -> tuple[Any, Any, float, float]:
    """(what was read, what was made of it, seconds reading, seconds assessing).

    The simulator runs in-process (its start is not timed) and shares our CPU, so the reading
    time is pessimistic; it is stopped before the assessing starts.
    """
    from runbook_lib.xapi.connect import connect

    with connect(url) as session:
        start = time.perf_counter()
        data = read(session, url)
        read_s = time.perf_counter() - start
    start = time.perf_counter()
    result = assess(data)
    return data, result, read_s, time.perf_counter() - start
