"""Engine.IO transport names (layer 0).

The names travel on the wire (the ``transport`` query parameter, the handshake's
``upgrades`` list) and are what ``socket.transport`` says on either side.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

__all__ = ["POLLING", "WEBSOCKET", "Transport"]


class Transport(StrEnum):
    """Engine.IO v4 transports (a ``str``: ``Transport.POLLING == "polling"``)."""

    POLLING = "polling"
    """HTTP long-polling: a parked ``GET`` for server packets, ``POST`` for client packets."""
    WEBSOCKET = "websocket"
    """One WebSocket; one Engine.IO packet per message."""


# Module-level names for the hot paths (a global lookup, not an attribute of the enum).
POLLING: Final = Transport.POLLING
WEBSOCKET: Final = Transport.WEBSOCKET
