"""A stand-in for an asyncio transport, for tests that feed a server connection by hand.

It records what the connection writes and the protocol it hands the transport
to (a WebSocket after the upgrade), and answers the questions the built-in
server asks of a transport.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Transport"]


class Transport:
    """Records every write (one entry per write) and the protocol it is handed to."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.protocol: Any = None
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def set_protocol(self, protocol: Any) -> None:
        self.protocol = protocol

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    abort = close

    def get_write_buffer_size(self) -> int:
        return 0

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass
