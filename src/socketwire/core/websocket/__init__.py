"""WebSocket, sans-I/O (layer 0): the opening handshake, framing, and the protocol of either side (RFC 6455)."""

__all__: list[str] = []
