"""The clock every I/O edge takes as a parameter, so that tests hand in a fake one. Pure stages take `now`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

Clock = Callable[[], datetime]
