"""Engine.IO error codes of a refused request (layer 0).

A server that refuses a request answers HTTP 400 (403 for ``FORBIDDEN``, 503 for
``SERVER_BUSY``) with the JSON object ``{"code": N, "message": "..."}``; the
codes and messages are Node's engine.io ``Server.errors``, which clients read.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["EngineErrorCode"]


class EngineErrorCode(IntEnum):
    """Why the Engine.IO server refused a request (an ``int`` on the wire)."""

    UNKNOWN_TRANSPORT = 0
    UNKNOWN_SID = 1
    BAD_HANDSHAKE_METHOD = 2
    BAD_REQUEST = 3
    FORBIDDEN = 4
    UNSUPPORTED_PROTOCOL_VERSION = 5
    # Not one of Node's codes: a handshake refused by max_connections or
    # max_handshake_rate.
    SERVER_BUSY = 6

    @property
    def message(self) -> str:
        """The message Node's engine.io sends with this code."""
        return _MESSAGES[self]

    @property
    def status(self) -> int:
        """The HTTP status of the refusal."""
        if self is EngineErrorCode.FORBIDDEN:
            return 403
        if self is EngineErrorCode.SERVER_BUSY:
            return 503
        return 400


_MESSAGES = {
    EngineErrorCode.UNKNOWN_TRANSPORT: "Transport unknown",
    EngineErrorCode.UNKNOWN_SID: "Session ID unknown",
    EngineErrorCode.BAD_HANDSHAKE_METHOD: "Bad handshake method",
    EngineErrorCode.BAD_REQUEST: "Bad request",
    EngineErrorCode.FORBIDDEN: "Forbidden",
    EngineErrorCode.UNSUPPORTED_PROTOCOL_VERSION: "Unsupported protocol version",
    EngineErrorCode.SERVER_BUSY: "Server busy",
}
