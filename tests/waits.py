"""The one bound of every wait in the tests.

Tests wait on events, never on time; ``WAIT`` only bounds how long a wait may
take before the test fails. On a slow or loaded machine, scale every bound at
once: ``SOCKETWIRE_TEST_WAIT_SCALE=3 scripts/test``.
"""

from __future__ import annotations

import os

__all__ = ["SCALE", "WAIT", "scaled"]

SCALE = float(os.environ.get("SOCKETWIRE_TEST_WAIT_SCALE", "1") or "1")

#: Seconds: the longest any single wait of a test may take.
WAIT = 5.0 * SCALE


def scaled(seconds: float) -> float:
    """A bound of its own (a Node script's whole run, a long soak step), scaled."""
    return seconds * SCALE
