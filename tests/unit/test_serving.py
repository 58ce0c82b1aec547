"""Process-level serving policy (restock/server.py)."""

from __future__ import annotations

import subprocess
import sys

_PROBE = """
import gc
from restock.server import freeze_startup_heap

class Node:
    pass

def cycle():
    a, b = Node(), Node()
    a.other, b.other = b, a

cycle()  # garbage from before serving: collected, not frozen
freeze_startup_heap()
frozen = gc.get_freeze_count()
cycle()  # garbage made while serving: still collected
print(frozen, gc.collect(), gc.isenabled())
"""


def test_the_startup_heap_is_frozen_and_later_garbage_still_collected() -> None:
    """Startup objects leave the full passes; the collector still runs for the rest."""
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True
    ).stdout.split()
    frozen, collected, enabled = int(out[0]), int(out[1]), out[2]
    assert frozen > 10_000  # restock's modules and their tables
    assert collected >= 2  # the two nodes of the cycle made after freezing
    assert enabled == "True"
