"""Identifiers: run ids sort by creation time (48-bit milliseconds, then 80 random bits, like a ULID)."""

from __future__ import annotations

import os
import time
from typing import NewType

RunId = NewType("RunId", str)
StepId = NewType("StepId", str)


def new_run_id() -> RunId:
    """A time-sortable, collision-resistant id: 12 hex digits of milliseconds + 20 random hex digits."""
    return RunId(f"{int(time.time() * 1000):012x}{os.urandom(10).hex()}")
