"""A slower machine, simulated: not part of the course, a way to show what a time budget does on a slower box.

    STARTER_CODE_STEP_DELAY=0.45 python -m starter_code train --experiment camvid_fast ...

makes every training step also wait 0.45 s. A camvid_fast step takes about that long on a quiet 2-core box, so this
run behaves as on a box twice as slow: a run with `budget_min` trains about half the epochs and still ends its
learning-rate schedule at eta_min. The tests use the same hook with a virtual clock.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable, Iterator
from typing import Any

ENV_VAR = "STARTER_CODE_STEP_DELAY"
sleep = time.sleep  # the tests swap in a virtual clock's sleep


def step_delay() -> float:
    """Seconds every training step waits, from the environment (0 when unset)."""
    text = os.environ.get(ENV_VAR, "").strip()
    if not text:
        return 0.0
    try:
        delay = float(text)
    except ValueError:
        delay = -1.0
    if not (math.isfinite(delay) and delay >= 0):
        raise ValueError(f"{ENV_VAR}={text!r}: expected seconds per training step (e.g. 0.45), or unset it")
    return delay


class SlowLoader:
    """A loader whose every batch arrives `delay` seconds late, so each training step takes that much longer."""

    def __init__(self, loader: Iterable[Any], delay: float) -> None:
        self.loader, self.delay = loader, delay

    def __len__(self) -> int:
        return len(self.loader)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[Any]:
        for batch in self.loader:
            sleep(self.delay)
            yield batch


def slowed(loader: Iterable[Any]) -> Iterable[Any]:
    """`loader` itself, or wrapped in a SlowLoader when STARTER_CODE_STEP_DELAY is set."""
    delay = step_delay()
    return SlowLoader(loader, delay) if delay > 0 else loader
